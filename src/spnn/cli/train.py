"""`spnn train`: the two SPNN training phases on any dataset, 1 or N processes."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from spnn.cli.args import (
    check_output_dir,
    existing_path,
    float_in,
    int_in,
    nonnegative_int,
    positive_float,
    positive_int,
)
from spnn.cli.data import dataset_options, oversample_option, training_set
from spnn.cli.device import device_of, device_option
from spnn.errors import ConfigError
from spnn.training.loop import LoopConfig
from spnn.training.spnn import PHASE_DEFAULTS, SPNNTrainConfig


def _network(args, input_shape, n_out, names):
    from spnn.network import SPNN

    if args.init:
        net = SPNN.load(args.init)
        if net.input_shape != input_shape or net.output_shape != (n_out,):
            raise ConfigError(f"--init network is {net.input_shape}->{net.output_shape}, the data needs "
                              f"{input_shape}->({n_out},); pass a network for this data or leave out --init")
        return net
    return SPNN.build(input_shape, (n_out,), factor=args.factor, reduction=args.reduction,
                      hidden=args.hidden, mixing=args.mixing, subnet=args.subnet, depth=args.depth,
                      r_bound=args.r_bound, t_bound=args.t_bound, scale_bound=args.scale_bound,
                      attribute_names=names)


def _phase_config(args, phase: int, yaml_cfg: dict) -> SPNNTrainConfig:
    section = dict(yaml_cfg.get(f"phase{phase}", {}))
    loop = {"lr": PHASE_DEFAULTS[phase]["lr"], "epochs": PHASE_DEFAULTS[phase]["epochs"],
            **section.pop("loop", {})}
    for key in ("epochs", "batch_size", "lr", "seed", "max_steps", "ckpt_every", "log_every"):
        value = getattr(args, key)
        if value is not None and (phase == 1 or key not in ("epochs", "lr")):
            loop[key] = value
    if phase == 2 and args.epochs2 is not None:
        loop["epochs"] = args.epochs2
    if args.bf16:
        loop["bf16"] = True
    if args.adaptive_weights:
        section["adaptive_weights"] = True
    try:
        return SPNNTrainConfig(loop=LoopConfig.from_dict(loop), phase=phase, **section)
    except TypeError as e:
        raise ConfigError(f"--config: {e}; the sections phase1/phase2 take loop, weights and the options of "
                          "spnn.training.spnn.SPNNTrainConfig") from None


def run(args: argparse.Namespace) -> int:
    from spnn.data.common import parse_oversample
    from spnn.data.registry import open_dataset
    from spnn.training.distributed import init_from_env, is_main
    from spnn.training.spnn import train_spnn

    factors = parse_oversample(args.oversample or [])  # checked before the output folder and the data
    init_from_env()
    yaml_cfg = _read_config(args.config) if args.config else {}
    check_output_dir(args.out)
    for phase in (1, 2):  # refuse unknown options before any data is opened
        _phase_config(args, phase, yaml_cfg)
    torch.manual_seed(args.seed if args.seed is not None else 556)
    train_set = training_set(args, factors)
    val_set = open_dataset(args.data, "val", size=args.size, n=args.n)
    names = train_set.attribute_names
    out = Path(args.out)
    phases = [1, 2] if args.phase == "both" else [int(args.phase)]
    net = None
    for phase in phases:
        if net is None:
            if phase == 2 and not args.init and (out / "phase1.safetensors").exists():
                args.init = str(out / "phase1.safetensors")
            net = _network(args, train_set.image_shape, len(names), names)
        device = device_of(args)
        metrics = train_spnn(net, train_set, val_set, _phase_config(args, phase, yaml_cfg), out,
                             device=device, resume=not args.no_resume, progress=not args.quiet)
        if is_main():
            summary = {k: metrics[k] for k in ("phase", "steps", "total_steps", "finished")}
            summary["val_accuracy"] = metrics["val"]["accuracy"]
            summary["penrose_float32_max"] = max(v for k, v in metrics["penrose_float32"].items()
                                                 if "mean_square" not in k)
            print(json.dumps(summary))
        if not metrics["finished"]:
            break
    return 0


def _read_config(path: str) -> dict:
    """The training YAML: a mapping with optional sections phase1 / phase2."""
    import yaml

    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read ({e.strerror or e}); check the path") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
    cfg = cfg or {}
    if not isinstance(cfg, dict) or set(cfg) - {"phase1", "phase2"}:
        keys = sorted(cfg) if isinstance(cfg, dict) else type(cfg).__name__
        raise ConfigError(f"--config {path}: expected a mapping with sections phase1 and/or phase2, got {keys}")
    for name, section in cfg.items():
        if not isinstance(section, dict):
            raise ConfigError(f"--config {path}: section {name} must be a mapping (loop:, weights:, ...)")
    return cfg


def _spawn_worker(rank: int, world: int, port: int, argv: list[str]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from spnn.cli.main import main

    main(argv)


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        import socket
        import sys

        import torch.multiprocessing as mp

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv = [a for a in sys.argv[1:]] if args.argv is None else args.argv
        mp.spawn(_spawn_worker, args=(args.nproc, port, argv), nprocs=args.nproc)
        return 0
    return run(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an SPNN (phase 1, 2 or both) on a dataset")
    dataset_options(p)
    p.add_argument("--phase", default="both", choices=["1", "2", "both"])
    p.add_argument("--config", type=existing_path,
                   help="YAML with sections phase1/phase2: {loop: {...}, weights: {...}}")
    p.add_argument("--init", type=existing_path,
                   help="start from this saved network (phase 2 defaults to OUT/phase1.safetensors)")
    p.add_argument("--epochs", type=positive_float, help="phase-1 epochs (paper: 10)")
    p.add_argument("--epochs2", type=positive_float, help="phase-2 epochs (paper: 50)")
    p.add_argument("--batch-size", type=positive_int, help="global batch (paper: 256)")
    p.add_argument("--lr", type=float_in(0, 1, lo_open=True), help="phase-1 learning rate (paper: 2e-4)")
    p.add_argument("--seed", type=nonnegative_int, help="seed (paper: 556)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps (resume later)")
    oversample_option(p)
    p.add_argument("--ckpt-every", type=positive_int)
    p.add_argument("--log-every", type=positive_int)
    p.add_argument("--adaptive-weights", action="store_true", help="per-attribute BCE weights")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--nproc", type=positive_int, default=1, help="data-parallel processes (or use torchrun)")
    device_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("network (when not --init)")
    g.add_argument("--hidden", type=positive_int, default=64)
    g.add_argument("--factor", type=int_in(2, 16), default=2)
    g.add_argument("--reduction", type=float_in(1, lo_open=True), default=2.0)
    g.add_argument("--depth", type=positive_int, default=2)
    g.add_argument("--mixing", default="cayley", choices=["cayley", "householder"])
    g.add_argument("--subnet", default="plain", choices=["plain", "unet"])
    g.add_argument("--r-bound", type=positive_float, default=1.0, help="r = r_bound tanh(.)")
    g.add_argument("--t-bound", type=positive_float, default=1.0, help="t = t_bound tanh(.)")
    g.add_argument("--scale-bound", type=positive_float, default=2.0, help="s = exp(scale_bound tanh(.))")
    p.set_defaults(func=cmd_train, argv=None)
