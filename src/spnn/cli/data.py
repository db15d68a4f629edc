"""`spnn data avatars`: render and cache the built-in dataset, optionally write a labelled grid."""

from __future__ import annotations

import argparse
import json

from spnn.cli.args import check_output_dir, nonnegative_int, output_dir, positive_int


def dataset_options(p: argparse.ArgumentParser) -> None:
    """The training commands' dataset and output options: --data, --size, --n, --out."""
    p.add_argument("--data", default="avatars", help="avatars[:SIZE][:v2] | celeba:DIR | celebahq:DIR | folder:DIR")
    p.add_argument("--size", type=positive_int, default=32, help="image size (square)")
    p.add_argument("--n", type=positive_int, default=30000, help="number of built-in avatar images")
    p.add_argument("--out", type=output_dir, required=True, help="output folder (checkpoints, metrics)")


def oversample_option(p: argparse.ArgumentParser) -> None:
    """--oversample NAME=K ...: rare attributes or combinations weigh more in a training set."""
    p.add_argument("--oversample", nargs="+", metavar="NAME=K",
                   help="repeat each training image that has attribute NAME K times in all; NAME+NAME=K: the images "
                        "with all of them (labelled datasets)")


def training_set(args: argparse.Namespace, factors: dict[str, int]):
    """The training split of ``--data``, oversampled by ``factors`` (`spnn.data.common.parse_oversample` of
    ``--oversample``, parsed before any work)."""
    from spnn.data.common import oversample
    from spnn.data.registry import open_dataset

    data = open_dataset(args.data, "train", size=args.size, n=args.n)
    if factors:  # each image with NAME repeated K times in all
        data = oversample(data, factors)
        print(f"oversampled training set: {len(data)} images")
    return data


def cmd_avatars(args: argparse.Namespace) -> int:
    from spnn.data.avatars import label_table, load_or_generate

    if args.grid:
        from spnn.cli.args import check_output_file

        check_output_file(args.grid)
    if args.out != "default":
        check_output_dir(args.out)
    images, labels = load_or_generate(args.n, args.size, args.seed, args.out, version=args.version)
    print(json.dumps({"images": len(images), "size": args.size, "version": args.version, "attribute_frequency":
                      {k: round(v, 3) for k, v in label_table(labels).items()}}, indent=1))
    if args.grid:
        from spnn.viz import labelled_grid

        labelled_grid(images[:args.grid_n], labels[:args.grid_n], args.grid)
        print(f"wrote {args.grid}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="datasets")
    s = p.add_subparsers(dest="data_command", required=True)
    a = s.add_parser("avatars", help="render and cache the built-in procedural faces")
    a.add_argument("--size", type=positive_int, default=32)
    a.add_argument("--n", type=positive_int, default=30000)
    a.add_argument("--seed", type=nonnegative_int, default=0)
    a.add_argument("--version", type=int, choices=[1, 2], default=1,
                   help="1: the shipped models' faces; 2: the same labels with more nuisance (colours, pose, light)")
    a.add_argument("--out", type=output_dir, default="default",
                   help="cache folder (default ~/.cache/spnn or $SPNN_CACHE)")
    a.add_argument("--grid", type=output_dir, help="also write a PNG grid of samples with their attributes")
    a.add_argument("--grid-n", type=positive_int, default=16)
    a.set_defaults(func=cmd_avatars)
