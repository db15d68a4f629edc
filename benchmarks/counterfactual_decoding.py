"""Do an SPNN's logits draw the attributes? Decode a counterfactual's logits with the original's latents.

For test faces a and their counterfactuals b (the same face with one part changed, `spnn.data.counterfactual`):
G^-1(g(b), q(a)) should be b if the logits carry the attributes and the latents only what no attribute names, and
stays a if the latents carry the attributes. Reports, per changed part group, MSE(G^-1(g(b), q(a)), b) against
MSE(a, b) (ratio 1: the logits draw nothing; 0: the counterfactual exactly), the evaluator's agreement with b's
labels on the decoded image, and the share of the attributes the change flips that the evaluator sees flipped. The
``step_*`` columns do the same for one learned NLBP step from a to its edited logits (a's logits, the changed
attributes' taken from b: what an edit asks), the move the phase-2 counterfactual-step term trains. Writes
benchmarks/results/NAME.json and a grid (rows: a, b, then one decoded and one stepped row per SPNN).

    python benchmarks/counterfactual_decoding.py [--spnn shipped runs/x.safetensors ...] [--n 200]
"""

import argparse
from pathlib import Path

import torch
from common import table, write

from spnn.data.avatars import AvatarFaces
from spnn.data.common import to_tensor_images
from spnn.data.counterfactual import CounterfactualPairs, counterfactual_parts
from spnn.models import load_evaluator, load_spnn
from spnn.operators import SPNNOperator
from spnn.viz import image_grid


def short(path: str) -> str:
    """A model's name for the grid: the file's stem, or its run folder for a generic stem."""
    p = Path(path)
    return p.parent.name if p.stem in ("calibrated", "phase1", "phase2") else p.stem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spnn", nargs="+", default=["shipped"], help="SPNN files ('shipped': the packaged one)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--data-n", type=int, default=30000, help="size of the built-in dataset the faces come from")
    ap.add_argument("--columns", type=int, default=12, help="faces in the grid")
    ap.add_argument("--grid", default=None, help="PNG path (default: docs/results/NAME.png)")
    ap.add_argument("--name", default="counterfactual-decoding")
    args = ap.parse_args()
    ev = load_evaluator(None, "cpu")
    faces = AvatarFaces(n=args.data_n, split="test")
    pairs = CounterfactualPairs(faces)
    a, b = to_tensor_images(faces.images[:args.n]), to_tensor_images(pairs.images[:args.n])
    b_labels = torch.as_tensor(pairs.labels[:args.n]).bool()
    changed = b_labels != torch.as_tensor(faces.labels[:args.n]).bool()  # the attributes the part change flips
    groups = [counterfactual_parts(faces.seed, int(i))[1] for i in faces.index[:args.n]]
    base = (a - b).pow(2).flatten(1).mean(1)
    rows, decoded, labels = [], [], []
    for path in args.spnn:
        net = load_spnn(None if path == "shipped" else path, "cpu")
        with torch.no_grad():
            (ya, qa), (yb, _) = net.complete(a), net.complete(b)
            d = net.inverse(yb, qa)
            stepped = SPNNOperator(net).back_project(a, torch.where(changed, yb, ya))

        def measured(image):  # per face: error to b, agreement with b's labels, flipped attributes shown
            agree = ((ev.predict(image) > 0) == b_labels).float()
            return (image - b).pow(2).flatten(1).mean(1), agree.mean(1), (agree * changed).sum(1) / changed.sum(1)

        (err, agree, flipped), (s_err, s_agree, s_flipped) = measured(d), measured(stepped)
        for group in ["all", *sorted(set(groups))]:
            m = torch.ones(len(groups), dtype=torch.bool) if group == "all" else torch.tensor([g == group for g in groups])
            rows.append({"spnn": path, "changed": group, "n": int(m.sum()), "mse_decoded": float(err[m].mean()),
                         "mse_original": float(base[m].mean()), "ratio": float(err[m].mean() / base[m].mean()),
                         "evaluator_agrees_with_b": float(agree[m].mean()),
                         "flipped_attributes_shown": float(flipped[m].mean()), "max_abs": float(d[m].abs().max()),
                         "step_ratio": float(s_err[m].mean() / base[m].mean()),
                         "step_agrees_with_b": float(s_agree[m].mean()),
                         "step_flipped_shown": float(s_flipped[m].mean())})
        decoded += [d[:args.columns].clamp(-1, 1), stepped[:args.columns].clamp(-1, 1)]
        labels += [f"G^-1(g(b), q(a)): {short(path)}", f"NLBP step a -> edited: {short(path)}"]
    print(table(rows, list(rows[0])))
    k = args.columns
    out = args.grid or str(Path(__file__).parent.parent / "docs" / "results" / f"{args.name}.png")
    image_grid([a[:k], b[:k], *decoded], out, scale=3,
               row_labels=["original a", "counterfactual b", *labels])
    print("wrote", write(args.name, {"n": args.n, "spnn": args.spnn, "rows": rows, "grid": out}))


if __name__ == "__main__":
    main()
