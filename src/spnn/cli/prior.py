"""`spnn prior train` and `spnn sample` (unconditional sampling from a prior)."""

from __future__ import annotations

import argparse
import json

from spnn.cli.args import (
    check_output_dir,
    check_output_file,
    existing_path,
    float_in,
    int_in,
    nonnegative_int,
    output_dir,
    positive_float,
    positive_int,
    unit_float,
)
from spnn.cli.data import dataset_options, oversample_option, training_set
from spnn.cli.device import device_of, device_option


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from spnn.data.common import parse_oversample
    from spnn.diffusion.prior import Prior, build_unet
    from spnn.diffusion.train import train_prior
    from spnn.training.distributed import init_from_env
    from spnn.training.loop import LoopConfig

    factors = parse_oversample(args.oversample or [])  # checked before the output folder and the data
    init_from_env()
    check_output_dir(args.out)
    torch.manual_seed(args.seed)
    data = training_set(args, factors)
    prior = Prior(build_unet(data.image_shape[1], data.image_shape[0], preset=args.preset))
    if args.init:  # fine-tune: start from another prior's weights (the same architecture)
        from spnn.errors import ConfigError
        from spnn.models import load_prior

        start = load_prior(args.init)
        mine, theirs = prior.unet.state_dict(), start.unet.state_dict()
        if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
            raise ConfigError(f"--init {args.init}: its UNet is not the --preset {args.preset} UNet for "
                              f"{data.image_shape[1]}x{data.image_shape[1]} images; give the matching --preset")
        prior.unet.load_state_dict(theirs)
    cfg = LoopConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                     decay_start=args.decay_start, clip=1.0, seed=args.seed, log_every=args.log_every,
                     ckpt_every=args.ckpt_every, bf16=args.bf16, max_steps=args.max_steps)
    device = device_of(args)
    res = train_prior(prior, data, args.out, cfg, ema_decay=args.ema_decay, sample_every=args.sample_every,
                      device=device, resume=not args.no_resume, progress=not args.quiet)
    print(json.dumps({k: res[k] for k in ("steps", "total_steps", "finished")}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from spnn.diffusion.train import export_ema

    check_output_dir(args.out)
    export_ema(args.checkpoint, args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from spnn.diffusion.prior import Prior
    from spnn.diffusion.sampler import sample
    from spnn.viz import image_grid

    check_output_file(args.out)
    device = device_of(args)
    prior = Prior.load(args.prior, device)
    seeds = list(range(args.seed, args.seed + args.n))
    out = sample(prior, args.n, steps=args.steps, eta=args.eta, seeds=seeds, preset=args.preset,
                 precision=args.precision, graphs=args.graphs, progress=True).images
    image_grid([out[i:i + args.per_row] for i in range(0, args.n, args.per_row)], args.out, scale=args.scale)
    print(f"wrote {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prior", help="diffusion priors")
    s = p.add_subparsers(dest="prior_command", required=True)
    t = s.add_parser("train", help="train a diffusers UNet2DModel prior (EMA, resumable)")
    dataset_options(t)
    t.add_argument("--preset", default="tiny", choices=["tiny", "base", "small"])
    t.add_argument("--init", type=existing_path, help="start from this prior folder's weights (fine-tuning)")
    t.add_argument("--epochs", type=positive_float, default=4)
    t.add_argument("--batch-size", type=positive_int, default=64)
    t.add_argument("--lr", type=float_in(0, 1, lo_open=True), default=5e-4)
    t.add_argument("--warmup", type=nonnegative_int, default=200)
    t.add_argument("--decay-start", type=unit_float, default=0.5)
    t.add_argument("--ema-decay", type=float_in(0, 1, hi_open=True), default=0.999)
    t.add_argument("--sample-every", type=positive_int, default=1000)
    t.add_argument("--log-every", type=positive_int, default=100)
    t.add_argument("--ckpt-every", type=positive_int, default=200)
    t.add_argument("--max-steps", type=positive_int)
    oversample_option(t)
    t.add_argument("--seed", type=nonnegative_int, default=0)
    t.add_argument("--bf16", action="store_true")
    device_option(t)
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    e = s.add_parser("export", help="write the EMA weights of a training checkpoint as a prior folder")
    e.add_argument("checkpoint", type=existing_path, help="OUT/checkpoints/last.safetensors of `spnn prior train`")
    e.add_argument("--out", type=output_dir, required=True)
    e.set_defaults(func=cmd_export)

    q = sub.add_parser("sample", help="unconditional DDIM/DDPM samples from a prior, as a PNG grid")
    q.add_argument("--prior", type=existing_path, required=True, help="prior folder (diffusers layout) or .ckpt")
    q.add_argument("--out", type=output_dir, default="samples.png", help="PNG file")
    q.add_argument("--n", type=positive_int, default=16)
    q.add_argument("--steps", type=int_in(1, 1000), default=100)
    q.add_argument("--eta", type=unit_float, default=None,
                   help="0 = DDIM, 1 = DDPM-like (default: the preset's, 0.85 for spnn; paper: no eta)")
    q.add_argument("--preset", default="spnn", choices=["spnn", "paper"], help="sampler settings (docs: sampling)")
    q.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="the UNet's precision (auto: bfloat16 where measured faster with the same quality)")
    q.add_argument("--graphs", default="auto", choices=["auto", "off"],
                   help="recorded UNet calls (auto: CUDA-graph replays on CUDA devices, a bfloat16 UNet's frozen "
                        "trace on a CPU; off: plain calls)")
    q.add_argument("--seed", type=nonnegative_int, default=0)
    q.add_argument("--per-row", type=positive_int, default=8)
    q.add_argument("--scale", type=int_in(1, 16), default=3)
    device_option(q)
    q.set_defaults(func=cmd_sample)
