"""How much does the verdict depend on the judge? The paper's single-attribute edits (each test face flipped in
the direction its labels allow) and one multi-attribute set, made once with the shipped models, then scored by
every judge given: success and other attributes kept per edit, all set per set. Judges trained alike from other
seeds (`spnn evaluator train --seed S`) show the instrument's own spread; an ensemble of them
(`spnn evaluator ensemble`) is what the spread is measured against.

    python benchmarks/judge_spread.py --judges r3 r2 r1 spatial [FILE ...] [--n 150] [--steps 20]
"""

import argparse

import torch
from common import judge_name, table, write

from spnn.data.avatars import AvatarFaces
from spnn.models import load_evaluator, load_prior, load_spnn
from spnn.operators import SPNNOperator
from spnn.tasks import edit, generate

EDITS = ["Eyeglasses", "Smiling", "Bangs", "Gray_Hair"]
SET = ["Blond_Hair", "Smiling"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judges", nargs="+", default=["r3", "r2", "r1", "spatial"],
                    help="shipped judges by name or evaluator / ensemble files")
    ap.add_argument("--n", type=int, default=150, help="test faces per edit and samples of the set")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--data-n", type=int, default=30000, help="size of the built-in dataset the split comes from")
    ap.add_argument("--name", default="judge-spread")
    args = ap.parse_args()
    judges = [(name, load_evaluator(name)) for name in args.judges]  # refuse a bad name before any work
    net, prior = load_spnn(), load_prior()
    op = SPNNOperator(net)
    faces = AvatarFaces(n=args.data_n, split=args.split)
    x, labels = faces.tensors(limit=args.n)
    names = faces.attribute_names
    edited = {}
    for attr in EDITS:
        i = names.index(attr)
        out = torch.empty_like(x)
        for value in (1.0, 0.0):  # the faces without the attribute get it, the others lose it
            rows = ((labels[:, i] > 0.5) == (value == 0.0)).nonzero().flatten()
            if len(rows):
                out[rows] = edit(prior, op, x[rows], {attr: value}, steps=args.steps, seeds=rows.tolist(),
                                 progress=False).images
        edited[attr] = out
    generated = generate(prior, op, dict.fromkeys(SET, 1.0), args.n, steps=args.steps,
                         seeds=range(10000, 10000 + args.n), progress=False).images
    results = []
    for name, ev in judges:
        before = ev.predict(x) > 0
        row = {"judge": judge_name(name)}
        for attr in EDITS:
            i = names.index(attr)
            after = ev.predict(edited[attr]) > 0
            others = [j for j in range(len(names)) if j != i]
            row[f"{attr} success"] = float((after[:, i] == (labels[:, i] < 0.5)).float().mean())
            row[f"{attr} kept"] = float((after[:, others] == before[:, others]).float().mean())
        read = ev.predict(generated) > 0
        row[" + ".join(SET)] = float(read[:, [names.index(a) for a in SET]].all(1).float().mean())
        results.append(row)
    print(table(results, list(results[0])))
    print("wrote", write(args.name, {"split": args.split, "n": len(x), "steps": args.steps, "edits": EDITS,
                                     "set": SET, "rows": results}))


if __name__ == "__main__":
    main()
