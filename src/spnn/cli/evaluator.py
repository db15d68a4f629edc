"""`spnn evaluator train` and `spnn evaluator score`."""

from __future__ import annotations

import argparse
import json

from spnn.cli.args import (
    check_output_dir,
    existing_path,
    float_in,
    nonnegative_int,
    output_file,
    positive_float,
    positive_int,
)
from spnn.cli.data import dataset_options
from spnn.cli.device import device_of, device_option


def cmd_train(args: argparse.Namespace) -> int:
    from spnn.data.registry import open_dataset
    from spnn.evaluation.evaluator import train_evaluator

    check_output_dir(args.out)
    train_set = open_dataset(args.data, "train", size=args.size, n=args.n)
    val_set = open_dataset(args.data, "val", size=args.size, n=args.n)
    result = train_evaluator(train_set, val_set, args.out, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, widths=args.widths, seed=args.seed, resume=not args.no_resume,
                             progress=not args.quiet, max_steps=args.max_steps, head=args.head,
                             cast=args.cast, device=device_of(args))
    print(json.dumps(result, indent=1))
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from spnn.cli.args import check_safetensors_out
    from spnn.evaluation.evaluator import AttributeEvaluator, EvaluatorEnsemble

    out = check_safetensors_out(args.out)
    members = [AttributeEvaluator.load(m) for m in args.models]
    EvaluatorEnsemble(members).save(out, {"members_from": [str(m) for m in args.models]})
    print(json.dumps({"out": str(out), "members": len(members)}))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from spnn.data.registry import open_dataset
    from spnn.evaluation.evaluator import load_evaluator_file
    from spnn.evaluation.metrics import attribute_agreement

    ev = load_evaluator_file(args.model)
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
    t.add_argument("--epochs", type=positive_float, default=8)
    t.add_argument("--batch-size", type=positive_int, default=128)
    t.add_argument("--lr", type=float_in(0, 1, lo_open=True), default=2e-3)
    t.add_argument("--widths", type=positive_int, nargs="+", default=[32, 64, 128])
    t.add_argument("--head", default="pool", choices=["pool", "spatial"],
                   help="pool: global average (the shipped evaluator); spatial: a linear map of the last feature map")
    t.add_argument("--cast", type=float_in(0, 1, hi_open=True), default=0.0,
                   help="random colour casts in training (per-channel gain and offset up to this), 0: none")
    t.add_argument("--seed", type=nonnegative_int, default=0)
    t.add_argument("--max-steps", type=positive_int)
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--quiet", action="store_true")
    device_option(t)
    t.set_defaults(func=cmd_train)
    e = s.add_parser("ensemble", help="one judge from several evaluators of the same attributes (mean logits)")
    e.add_argument("--models", type=existing_path, nargs="+", required=True,
                   help="evaluator files (`spnn evaluator train`), e.g. one recipe trained from several seeds")
    e.add_argument("--out", type=output_file, required=True, help="the ensemble's .safetensors")
    e.set_defaults(func=cmd_ensemble)
    c = s.add_parser("score", help="attribute accuracy of the evaluator on a dataset split")
    c.add_argument("--model", type=existing_path, required=True)
    c.add_argument("--data", default="avatars")
    c.add_argument("--split", default="test", choices=["train", "val", "test"])
    c.add_argument("--n", type=positive_int, default=30000)
    c.add_argument("--limit", type=positive_int)
    c.set_defaults(func=cmd_score)
