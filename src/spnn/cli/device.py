"""The `--cpu` option every command that runs networks shares: CUDA when present, unless asked not to."""

from __future__ import annotations

import argparse


def device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu", action="store_true", help="stay on the CPU even with CUDA")


def device_of(args: argparse.Namespace) -> str:
    """"cuda" when a GPU is visible and --cpu was not given, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() and not getattr(args, "cpu", False) else "cpu"
