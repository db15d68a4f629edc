"""Attribute accuracy of an SPNN classifier (default: the shipped one) on the built-in test split.

    python benchmarks/spnn_accuracy.py [--spnn PATH]
"""

import argparse

from common import table, write

from spnn.data.avatars import AvatarFaces
from spnn.models import load_spnn
from spnn.training.spnn import evaluate_attributes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spnn")
    args = ap.parse_args()
    net = load_spnn(args.spnn)
    x, y = AvatarFaces(split="test").tensors()
    res = evaluate_attributes(net, x, y)
    rows = [{"attribute": k, "accuracy": v} for k, v in res["per_attribute"].items()]
    print(table(rows, ["attribute", "accuracy"]))
    print(f"mean {res['accuracy']:.4f}, all attributes right {res['all_correct']:.4f} on {len(x)} test faces")
    write("spnn_accuracy", {"spnn": args.spnn or "shipped", **res})


if __name__ == "__main__":
    main()
