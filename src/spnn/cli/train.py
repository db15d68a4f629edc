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

NETWORK_OPTIONS = ("hidden", "factor", "reduction", "depth", "mixing", "subnet", "r_bound", "t_bound", "scale_bound")


def _check_options(args) -> None:
    """Refuse options this run would ignore (a silent default where the user asked for something else)."""
    def flags(names):
        return ", ".join("--" + n.replace("_", "-") for n in names)

    if args.phase == "2":
        unused = [n for n in ("epochs", "lr", "adaptive_weights") if getattr(args, n) not in (None, False)]
        if unused:
            raise ConfigError(f"{flags(unused)}: phase-1 options with --phase 2; use --epochs2 for phase 2's length "
                              "and the config's phase2 loop for its learning rate")
    if args.phase == "1" and args.epochs2 is not None:
        raise ConfigError("--epochs2: a phase-2 option with --phase 1; drop it or train --phase both")
    given = [n for n in NETWORK_OPTIONS if getattr(args, n) is not None]
    source = args.init or (Path(args.out) / "phase1.safetensors" if args.phase == "2" else None)
    if given and source and Path(source).exists():
        raise ConfigError(f"{flags(given)}: options of a new network, but {source} gives the network "
                          "(--init, or phase 1's output for --phase 2); drop them")


def _network(args, input_shape, n_out, names):
    from spnn.network import SPNN

    if args.init:
        net = SPNN.load(args.init)
        if net.input_shape != input_shape or net.output_shape != (n_out,):
            raise ConfigError(f"--init network is {net.input_shape}->{net.output_shape}, the data needs "
                              f"{input_shape}->({n_out},); pass a network for this data or leave out --init")
        return net
    options = {n: getattr(args, n) for n in NETWORK_OPTIONS if getattr(args, n) is not None}
    return SPNN.build(input_shape, (n_out,), attribute_names=names, **options)  # SPNN.build's defaults otherwise


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

    _check_options(args)
    factors = parse_oversample(args.oversample or [])  # checked before the output folder and the data
    init_from_env()
    yaml_cfg = _read_config(args.config) if args.config else {}
    check_output_dir(args.out)
    for phase in (1, 2):  # refuse unknown options (and a judged file that cannot be read) before any data is opened
        if (cfg := _phase_config(args, phase, yaml_cfg)).judged:
            from spnn.data.judged import JudgedImages

            JudgedImages(cfg.judged_path)
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
    g = p.add_argument_group("network (a new one: not with --init; defaults in brackets)")
    g.add_argument("--hidden", type=positive_int, help="subnet width [64]")
    g.add_argument("--factor", type=int_in(2, 16), help="pixel-unshuffle factor [2]")
    g.add_argument("--reduction", type=float_in(1, lo_open=True), help="channels kept per coupling block: 1/R [2]")
    g.add_argument("--depth", type=positive_int, help="subnet depth [2]")
    g.add_argument("--mixing", choices=["cayley", "householder"], help="orthogonal 1x1 mixing [cayley]")
    g.add_argument("--subnet", choices=["plain", "unet"], help="[plain]")
    g.add_argument("--r-bound", type=positive_float, help="r = r_bound tanh(.) [1]")
    g.add_argument("--t-bound", type=positive_float, help="t = t_bound tanh(.) [1]")
    g.add_argument("--scale-bound", type=positive_float, help="s = exp(scale_bound tanh(.)) [2]")
    p.set_defaults(func=cmd_train, argv=None)
