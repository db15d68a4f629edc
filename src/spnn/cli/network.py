"""`spnn check` (build a random network, print its Penrose report) and `spnn penrose PATH`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from spnn.cli.args import existing_path, nonnegative_int, positive_int
from spnn.diagnostics import format_report, penrose_report
from spnn.network import SPNN
from spnn.testing import perturb_


def _shape(text: str) -> tuple[int, ...]:
    """"3,32,32" or "3x32x32" -> (3, 32, 32): positive integers only."""
    parts = [v.strip() for v in text.replace("x", ",").split(",")]
    if not parts or not all(v.isdigit() and int(v) > 0 for v in parts):
        raise argparse.ArgumentTypeError(f"expected positive integers such as 3,32,32 (or 40), got {text!r}")
    return tuple(int(v) for v in parts)


def _print_report(report: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(title)
        print(format_report(report))


def cmd_check(args: argparse.Namespace) -> int:
    from spnn.checks import check_memory, estimate_memory

    with torch.device("meta"):
        plan = SPNN.build(args.input, args.output, hidden=args.hidden, mixing=args.mixing)
    # float32 and float64 copies of the network and the batch
    check_memory(estimate_memory(plan, args.input, args.n, bytes_per_value=12),
                 f"a random SPNN {args.input} -> {args.output} on a batch of {args.n}",
                 "use a smaller --input, --hidden or --n")
    torch.manual_seed(args.seed)
    net = SPNN.build(args.input, args.output, hidden=args.hidden, mixing=args.mixing)
    perturb_(net, 0.1, seed=args.seed)
    x = torch.rand(args.n, *net.input_shape) * 2 - 1
    n_params = sum(p.numel() for p in net.parameters())
    report = {f"float32.{k}": v for k, v in penrose_report(net, x).items()}
    report |= {f"float64.{k}": v for k, v in penrose_report(net.double(), x.double()).items()}
    _print_report(report, args.json, f"random SPNN {net.input_shape} -> {net.output_shape}, "
                  f"{len(net.blocks)} blocks, {n_params} parameters, {args.mixing} mixing")
    return 0


def cmd_penrose(args: argparse.Namespace) -> int:
    from spnn.checks import check_memory, estimate_memory

    net = SPNN.load(args.path)
    check_memory(estimate_memory(net, net.input_shape, args.n, 8 if args.float64 else 4),
                 f"the Penrose report of {args.path} on {args.n} inputs", "use a smaller --n")
    if args.float64:
        net = net.double()
    dtype = next(net.parameters()).dtype
    gen = torch.Generator().manual_seed(args.seed)
    x = (torch.rand((args.n, *net.input_shape), generator=gen) * 2 - 1).to(dtype)
    _print_report(penrose_report(net, x), args.json, f"{args.path}: {net.input_shape} -> {net.output_shape}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="build a random network and print its Penrose report")
    p.add_argument("--input", type=_shape, default=(3, 32, 32), help="input shape C,H,W")
    p.add_argument("--output", type=_shape, default=(40,), help="output shape k or C,H,W")
    p.add_argument("--mixing", default="cayley", choices=["cayley", "householder"])
    p.add_argument("--hidden", type=positive_int, default=32)
    p.add_argument("--n", type=positive_int, default=8, help="batch of random inputs")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("penrose", help="Penrose report of a saved network (.safetensors)")
    p.add_argument("path", type=existing_path)
    p.add_argument("--n", type=positive_int, default=16, help="number of random inputs in [-1, 1]")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--float64", action="store_true", help="evaluate in float64")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_penrose)
    register_convert(sub)
    register_download(sub)


def cmd_convert(args: argparse.Namespace) -> int:
    from spnn.cli.args import check_output_file
    from spnn.convert import load_authors_spnn

    out = Path(args.out)
    if out.suffix != ".safetensors" or out.is_dir():
        from spnn.errors import ConfigError

        raise ConfigError(f"output {out}: give a file name ending in .safetensors")
    check_output_file(out.with_suffix(""))
    net = load_authors_spnn(args.source, preset=args.preset, img_size=args.img_size, version=args.version)
    net.save(args.out, {"converted_from": str(args.source)})
    print(f"wrote {args.out}: {net.input_shape} -> {net.output_shape}, "
          f"{sum(p.numel() for p in net.parameters())} parameters")
    return 0


def register_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert an authors' SPNN checkpoint (.pth / .safetensors) to our format")
    p.add_argument("source", type=existing_path)
    p.add_argument("out")
    p.add_argument("--preset", choices=["celeba32", "celeba64", "celeba256"], help="default: detected")
    p.add_argument("--version", default="a901837", choices=["a901837", "later", "exact"],
                   help="the authors' code version whose Cayley arithmetic to reproduce (docs: authors' checkpoints)")
    p.add_argument("--img-size", type=positive_int, help="input size for custom layouts without metadata")
    p.set_defaults(func=cmd_convert)


def cmd_download(args: argparse.Namespace) -> int:
    from spnn.hub import download

    print(f"downloaded {download(args.name, args.out)}")
    return 0


def register_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="optional: fetch the paper's released SPNN / prior (needs a network)")
    p.add_argument("name", choices=["spnn-celebahq", "prior-celebahq"])
    p.add_argument("--out", default="models")
    p.set_defaults(func=cmd_download)
