"""Attribute accuracy of an SPNN classifier (default: the shipped one) on the built-in test split, with
each attribute's recall (the rate of real positives with logit > 0) and the median logit of real positives
and negatives (how far an edit bound such as logit >= 4 lies from real faces).

    python benchmarks/spnn_accuracy.py [--spnn PATH] [--name spnn_accuracy]
"""

import argparse

import torch
from common import table, write

from spnn.data.avatars import AvatarFaces
from spnn.models import load_spnn
from spnn.training.spnn import evaluate_attributes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spnn")
    ap.add_argument("--name", default="spnn_accuracy", help="results file benchmarks/results/NAME.json")
    args = ap.parse_args()
    net = load_spnn(args.spnn)
    x, y = AvatarFaces(split="test").tensors()
    res = evaluate_attributes(net, x, y)
    with torch.no_grad():
        logits = torch.cat([net(x[i:i + 500]) for i in range(0, len(x), 500)])
    pos = y.bool()
    rows = [{"attribute": k, "accuracy": v, "recall": float((logits[pos[:, j], j] > 0).float().mean()),
             "positive_median_logit": float(logits[pos[:, j], j].median()),
             "negative_median_logit": float(logits[~pos[:, j], j].median())}
            for j, (k, v) in enumerate(res["per_attribute"].items())]
    res["attributes"] = rows
    print(table(rows, ["attribute", "accuracy", "recall", "positive_median_logit", "negative_median_logit"]))
    print(f"mean {res['accuracy']:.4f}, all attributes right {res['all_correct']:.4f} on {len(x)} test faces")
    write(args.name, {"spnn": args.spnn or "shipped", **res})


if __name__ == "__main__":
    main()
