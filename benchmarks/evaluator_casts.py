"""Are the evaluators fooled by colour casts? Real test faces with a global cast x + a c (c a colour in [-1, 1]
units, clamped): agreement with the true labels, and the attribute whose positive rate rises most (a cast read as
an attribute, e.g. a blue cast as a hat), per evaluator.

    python benchmarks/evaluator_casts.py [--n 1000] [--evaluators r2 r1 spatial PATH ...] [--name evaluator-casts]
"""

import argparse

import torch
from common import table, write

from spnn.data.avatars import LABELS_REVISION
from spnn.data.registry import open_dataset
from spnn.evaluation.metrics import attribute_agreement
from spnn.models import DEFAULT_JUDGE, load_evaluator

CASTS = {"blue": (-1.0, -0.4, 1.0), "red": (1.0, -0.4, -0.4), "green": (-0.4, 1.0, -0.4),
         "yellow": (1.0, 1.0, -1.0), "dark": (-1.0, -1.0, -1.0), "bright": (1.0, 1.0, 1.0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="test faces")
    ap.add_argument("--evaluators", nargs="+", default=[DEFAULT_JUDGE],
                    help="shipped evaluators by name (spnn.models.EVALUATORS) or evaluator files")
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.2, 0.4])
    ap.add_argument("--data-n", type=int, default=30000)
    ap.add_argument("--name", default="evaluator-casts")
    args = ap.parse_args()
    x, labels = open_dataset("avatars", "test", n=args.data_n).tensors(limit=args.n)
    rows = []
    for name in args.evaluators:
        ev = load_evaluator(name, "cpu")
        base = torch.sigmoid(ev.predict(x)) > 0.5
        rows.append({"evaluator": name, "cast": "none", "strength": 0.0,
                     "agreement": attribute_agreement(ev.predict(x), labels)["mean"]})
        for cast, colour in CASTS.items():
            for a in args.strengths:
                shifted = (x + a * torch.tensor(colour).view(1, 3, 1, 1)).clamp(-1, 1)
                logits = ev.predict(shifted)
                rise = ((torch.sigmoid(logits) > 0.5).float() - base.float()).mean(0)
                i = int(rise.argmax())
                rows.append({"evaluator": name, "cast": cast, "strength": a,
                             "agreement": attribute_agreement(logits, labels)["mean"],
                             "most_risen": ev.attribute_names[i], "rise": float(rise[i])})
    print(table(rows, ["evaluator", "cast", "strength", "agreement", "most_risen", "rise"]))
    print("wrote", write(args.name, {"n": len(x), "labels_revision": LABELS_REVISION, "casts": CASTS, "rows": rows}))


if __name__ == "__main__":
    main()
