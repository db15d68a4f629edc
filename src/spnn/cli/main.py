"""Entry point of the `spnn` command."""

from __future__ import annotations

import argparse
import sys

from spnn.errors import SPNNError

COMMAND_MODULES = ["network", "data", "train", "evaluator", "prior", "tasks", "demo", "emulator"]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="spnn", description="Surjective pseudo-invertible networks")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"spnn.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except SPNNError as e:
        print(f"spnn {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
