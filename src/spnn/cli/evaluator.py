"""`spnn evaluator train` and `spnn evaluator score`."""

from __future__ import annotations

import argparse
import json

from spnn.cli.data import dataset_options
from spnn.cli.device import device_of, device_option


def cmd_train(args: argparse.Namespace) -> int:
    from spnn.data.registry import open_dataset
    from spnn.evaluation.evaluator import train_evaluator

    train_set = open_dataset(args.data, "train", size=args.size, n=args.n)
    val_set = open_dataset(args.data, "val", size=args.size, n=args.n)
    result = train_evaluator(train_set, val_set, args.out, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, widths=args.widths, seed=args.seed, resume=not args.no_resume,
                             progress=not args.quiet, max_steps=args.max_steps,
                             device=device_of(args))
    print(json.dumps(result, indent=1))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from spnn.data.registry import open_dataset
    from spnn.evaluation.evaluator import AttributeEvaluator
    from spnn.evaluation.metrics import attribute_agreement

    ev = AttributeEvaluator.load(args.model)
    ds = open_dataset(args.data, args.split, size=ev.input_shape[1], n=args.n)
    x, y = ds.tensors(limit=args.limit)
    agreement = attribute_agreement(ev.predict(x), y)
    report = {"images": len(x), "mean": agreement["mean"], "all_correct": agreement["all_correct"],
              "per_attribute": dict(zip(ev.attribute_names, (round(v, 4) for v in agreement["per_attribute"])))}
    print(json.dumps(report, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluator", help="the independent attribute evaluator (a plain CNN)")
    s = p.add_subparsers(dest="evaluator_command", required=True)
    t = s.add_parser("train", help="train the evaluator on a dataset")
    dataset_options(t)
    t.add_argument("--epochs", type=float, default=8)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-steps", type=int)
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--quiet", action="store_true")
    device_option(t)
    t.set_defaults(func=cmd_train)
    c = s.add_parser("score", help="attribute accuracy of the evaluator on a dataset split")
    c.add_argument("--model", required=True)
    c.add_argument("--data", default="avatars")
    c.add_argument("--split", default="test")
    c.add_argument("--n", type=int, default=30000)
    c.add_argument("--limit", type=int)
    c.set_defaults(func=cmd_score)
