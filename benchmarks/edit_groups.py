"""Which faces does an edit fail on? Its success by the face's hair colour or hair style (read from its labels).

Edits the faces of a split that lack the attribute (or have it, ``--off``) as `spnn.tasks.edit` does, and splits
success (the evaluator's verdict) and bound_met (the SPNN's logit at its bound) by a group of the face's labels:
its hair colour (Black / Blond / Brown / Gray / Red, else "none": bald, a hat or the unlabelled pink), its hair
style (Bald / Wearing_Hat / Receding_Hairline / Straight_Hair / Wavy_Hair, else "other") or its mouth
(Mouth_Slightly_Open, else "closed"). Beside each group, the
real faces of the split that have the attribute in that group: how often the evaluator reads it and the SPNN's
median logit of it, so that a group the judges cannot read is told apart from one the edit does not draw.

    python benchmarks/edit_groups.py --attribute Bangs [--group-by hair_colour|hair_style|mouth] [--n 150] [--steps 20]
        [--logit L]
"""

import argparse

import torch
from common import judge_name, machine, table, write

from spnn.calibration import calibration_of
from spnn.cli.args import judge_help
from spnn.data.avatars import LABELS_REVISION, AvatarFaces
from spnn.models import load_evaluator, load_prior, load_spnn
from spnn.operators import SPNNOperator, level_of
from spnn.tasks import BOUND_TOL, edit

GROUPS = {"hair_colour": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Red_Hair"],
          "hair_style": ["Bald", "Wearing_Hat", "Receding_Hairline", "Straight_Hair", "Wavy_Hair"],
          "mouth": ["Mouth_Slightly_Open"]}
OTHER = {"hair_colour": "none", "hair_style": "other", "mouth": "closed"}


def group_of(labels: torch.Tensor, names: list[str], by: str) -> list[str]:
    """Per face, the first attribute of ``GROUPS[by]`` its labels set, else ``OTHER[by]``."""
    cols = [names.index(a) for a in GROUPS[by]]
    return [next((GROUPS[by][k] for k, c in enumerate(cols) if row[c] > 0.5), OTHER[by]) for row in labels]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attribute", default="Bangs")
    ap.add_argument("--off", action="store_true", help="turn the attribute off on faces that have it")
    ap.add_argument("--group-by", default="hair_colour", choices=sorted(GROUPS))
    ap.add_argument("--n", type=int, default=150, help="faces of the split (those to flip are edited)")
    ap.add_argument("--real-n", type=int, default=3000, help="faces of the split for the real-face columns")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--logit", type=float, help="bound level for every bounded attribute (default: the SPNN's)")
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--evaluator", help=judge_help("judge"))
    ap.add_argument("--name", default=None, help="results file benchmarks/results/NAME.json (default: none)")
    args = ap.parse_args()

    net, prior, ev = load_spnn(), load_prior(), load_evaluator(args.evaluator)
    names, i = net.attribute_names, net.attribute_names.index(args.attribute)
    value = 0.0 if args.off else 1.0
    faces = AvatarFaces(n=30000, split=args.split)
    x, labels = faces.tensors(limit=args.n)
    sel = ((labels[:, i] > 0.5) == args.off).nonzero().flatten()
    res = edit(prior, SPNNOperator(net), x[sel], {args.attribute: value}, steps=args.steps, seeds=sel.tolist(),
               logit=args.logit, progress=False)
    with torch.no_grad():
        ok = (ev.predict(res.images)[:, i] > 0) == (value > 0)
        calib = calibration_of(net)
        level = args.logit or level_of(calib.levels, args.attribute, value, calib.logit)
        logit = net(res.images)[:, i]
        met = logit >= level - BOUND_TOL if value else logit <= -level + BOUND_TOL
        real_x, real_labels = faces.tensors(limit=args.real_n)
        has = (real_labels[:, i] > 0.5).nonzero().flatten()
        real_read = ev.predict(real_x[has])[:, i] > 0
        real_logit = net(real_x[has])[:, i]
    edited_groups = group_of(labels[sel], names, args.group_by)
    real_groups = group_of(real_labels[has], names, args.group_by)
    rows = []
    for g in [*GROUPS[args.group_by], OTHER[args.group_by]]:
        m = torch.tensor([e == g for e in edited_groups], dtype=torch.bool)
        r = torch.tensor([e == g for e in real_groups], dtype=torch.bool)
        rows.append({args.group_by: g, "faces": int(m.sum()),
                     "success": round(float(ok[m].float().mean()), 3) if m.any() else "",
                     "bound_met": round(float(met[m].float().mean()), 3) if m.any() else "",
                     "real_with_it": int(r.sum()),
                     "real_evaluator": round(float(real_read[r].float().mean()), 3) if r.any() else "",
                     "real_spnn_median": round(float(real_logit[r].median()), 2) if r.any() else ""})
    print(f"{args.attribute}={value:g} on {len(sel)} of {args.n} {args.split} faces, {args.steps} steps: success "
          f"{float(ok.float().mean()):.3f}, SPNN level {level:g}; real faces with it among the first {args.real_n} "
          f"({machine()}):")
    print(table(rows, list(rows[0])))
    if args.name:
        print("wrote", write(args.name, {**vars(args), "evaluator": judge_name(args.evaluator),
                                         "labels_revision": LABELS_REVISION, "faces": len(sel), "level": level,
                                         "success": float(ok.float().mean()), "rows": rows}))


if __name__ == "__main__":
    main()
