"""`spnn emulator train`: fit an SPNN to the black-box camera degradation by regression."""

from __future__ import annotations

import argparse
import json

from spnn.cli.args import check_output_dir, float_in, positive_float, positive_int
from spnn.cli.data import dataset_options
from spnn.cli.device import device_of, device_option


def cmd_train(args: argparse.Namespace) -> int:
    from spnn.data.registry import open_dataset
    from spnn.degradations import BlackBoxCamera, train_emulator

    check_output_dir(args.out)
    if args.size % 4:
        from spnn.errors import ConfigError

        raise ConfigError(f"--size {args.size}: the camera pools 4x4, so the size must be a multiple of 4")
    train_set = open_dataset(args.data, "train", size=args.size, n=args.n)
    val_set = open_dataset(args.data, "val", size=args.size, n=args.n)
    out_shape = (3, args.size // 4, args.size // 4)
    _, res = train_emulator(BlackBoxCamera(), train_set, val_set, args.out, output_shape=out_shape,
                            hidden=args.hidden, epochs=args.epochs, lr=args.lr, progress=not args.quiet,
                            max_steps=args.max_steps,
                            device=device_of(args))
    print(json.dumps(res))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emulator", help="SPNN emulators of black-box degradations")
    s = p.add_subparsers(dest="emulator_command", required=True)
    t = s.add_parser("train", help="fit an SPNN to the black-box camera (blur, 4x pool, tone curve, clipping)")
    dataset_options(t)
    t.add_argument("--hidden", type=positive_int, default=32)
    t.add_argument("--epochs", type=positive_float, default=5)
    t.add_argument("--lr", type=float_in(0, 1, lo_open=True), default=1e-3)
    t.add_argument("--max-steps", type=positive_int)
    t.add_argument("--quiet", action="store_true")
    device_option(t)
    t.set_defaults(func=cmd_train)
