"""Reconstruction from semantics: attribute agreement against identification, one curve per SPNN.

For each SPNN, NLBP reconstructions of the same test faces with the learned pseudo-inverse at latent steps B (the
learned latents' move scaled by B, `SPNNOperator(latent_step=B)`; B = 1 is the paper's NLBP) and with the natural
one, and with the learned latents taken at the labels (`SPNNOperator(latents_from="labels")`, one point per label
temperature tau); each point is (own_nearest_pixels, agreement): how often a reconstruction's nearest original is its own, and how
often the evaluator's verdict on it matches its verdict on the original. The reference point is a random real
training face with the original's labels: another person with the same attributes. Writes
benchmarks/results/NAME.json and a plot (PIL).

    python benchmarks/identity_tradeoff.py [--spnn shipped runs/x.safetensors ...] [--steps 20] [--n 200]
        [--label-temperatures 0.25 0.5 1 2]
"""

import argparse
import time
from pathlib import Path

import torch
from common import REFERENCE, identity_measures, machine, same_label_reference, table, write

from spnn.data.avatars import AvatarFaces
from spnn.evaluation.metrics import attribute_agreement, nearest_same_label_rmse
from spnn.models import load_evaluator, load_prior, load_spnn
from spnn.operators import SPNNOperator
from spnn.tasks import reconstruct

COLOURS = [(200, 30, 30), (30, 90, 200), (30, 150, 60), (160, 60, 170), (250, 140, 20), (90, 90, 90)]


def _curve(row: dict) -> str:
    """One polyline per SPNN and family of points (latent steps and natural; label temperatures)."""
    return row["spnn"] + (", latents from labels" if "+labels" in row["method"] else "")


def plot(rows: list[dict], path: str, where: str, target: tuple[float, float] | None) -> None:
    """Agreement (y) against own_nearest_pixels (x), one polyline per SPNN, the reference as a black square and the
    target region (own_nearest <= x, agreement >= y) shaded."""
    from PIL import Image, ImageDraw

    spnns = list(dict.fromkeys(_curve(r) for r in rows if r["method"] != REFERENCE))
    w, h, pad = 640, 380, 50
    img = Image.new("RGB", (w, h + 24 + 16 * len(spnns)), "white")
    d = ImageDraw.Draw(img)
    pts = [r for r in rows if r.get("agreement") is not None]
    x0, x1 = 0.0, max(0.6, max(r["own_nearest_pixels"] for r in pts) + 0.05)
    y0, y1 = min(0.8, min(r["agreement"] for r in pts) - 0.01), 1.0

    def at(x, y):
        return pad + (x - x0) / (x1 - x0) * (w - pad - 10), h - 30 - (y - y0) / (y1 - y0) * (h - 50)

    if target:
        (ax, ay), (bx, by) = at(x0, y1), at(*target)
        d.rectangle([ax, ay, bx, by], fill=(225, 245, 225))
        d.text((ax + 4, ay + 4), "targets", fill=(30, 120, 30))
    d.rectangle([pad, 20, w - 10, h - 30], outline="black")
    d.text((pad, 4), "agreement (evaluator, vs its verdict on the original) vs own_nearest_pixels", fill="black")
    for v in (x0, (x0 + x1) / 2, x1):
        d.text((at(v, y0)[0] - 10, h - 26), f"{v:.2f}", fill="black")
    for v in (y0, (y0 + y1) / 2, y1):
        d.text((4, at(x0, v)[1] - 6), f"{v:.3f}", fill="black")
    for k, name in enumerate(spnns):
        c = COLOURS[k % len(COLOURS)]
        line = [r for r in pts if _curve(r) == name and r["method"] != REFERENCE]
        xy = [at(r["own_nearest_pixels"], r["agreement"]) for r in line]
        if len(xy) > 1:
            d.line(xy, fill=c, width=2)
        for j, (r, (cx, cy)) in enumerate(zip(line, xy)):
            d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=c)
            label = r["method"].replace("nlbp-", "").replace("learned+labels ", "")
            dy = -12 if j % 2 == 0 else 4  # neighbours' labels above and below their points
            d.text((cx - 8 - 6 * len(label) if cx > w - 120 else cx + 6, cy + dy), label, fill=c)
        d.ellipse([10, h + 4 + 16 * k, 18, h + 12 + 16 * k], fill=c)
        d.text((24, h + 2 + 16 * k), name, fill="black")
    for r in rows:
        if r["method"] == REFERENCE and r.get("agreement") is not None:
            cx, cy = at(r["own_nearest_pixels"], r["agreement"])
            d.rectangle([cx - 5, cy - 5, cx + 5, cy + 5], fill="black")
            d.text((cx + 8, cy - 6), "a real face with the same labels", fill="black")
    d.text((10, h + 4 + 16 * len(spnns)), where, fill="black")
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spnn", nargs="+", default=["shipped"], help="SPNN files ('shipped': the packaged one)")
    ap.add_argument("--latent-steps", nargs="+", type=float, default=[1.0, 0.5, 0.25, 0.1])
    ap.add_argument("--label-temperatures", nargs="*", type=float, default=[],
                    help="also the learned latents from the labels, one point per temperature tau")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--target", nargs=2, type=float, default=[0.10, 0.93], metavar=("OWN_NEAREST", "AGREEMENT"),
                    help="the region drawn as the targets (#19: own_nearest <= 0.10 at agreement >= 0.93)")
    ap.add_argument("--data-n", type=int, default=30000, help="size of the built-in dataset the faces come from")
    ap.add_argument("--split", default="test", choices=["val", "test"],
                    help="the faces reconstructed (val: for choosing a setting, test: for reporting it)")
    ap.add_argument("--plot", default=None, help="PNG path (default: docs/results/NAME.png)")
    ap.add_argument("--name", default="identity-tradeoff")
    ap.add_argument("--replot", action="store_true", help="redraw the plot from benchmarks/results/NAME.json")
    args = ap.parse_args()
    if args.replot:
        import json

        from common import RESULTS
        saved = json.loads((RESULTS / f"{args.name}.json").read_text())
        where = f"{saved['n']} {saved.get('split', 'test')} faces, {saved['steps']} steps, {saved['machine']}, {saved['date']}"
        plot(saved["rows"], args.plot or saved["plot"], where, tuple(saved["target"]))
        return
    prior, ev = load_prior(None, "cpu"), load_evaluator(None, "cpu")
    x, labels = AvatarFaces(n=args.data_n, split=args.split).tensors(limit=args.n)
    pool, pool_labels = AvatarFaces(n=args.data_n, split="train").tensors()
    judged = ev.predict(x)
    same_label = nearest_same_label_rmse(x, labels, pool, pool_labels)
    rows = []
    for path in args.spnn:
        net = load_spnn(None if path == "shipped" else path, "cpu")
        points = [("learned", b, None) for b in args.latent_steps] + [("natural", 1.0, None)]
        for mode, step, tau in points + [("learned", 1.0, t) for t in args.label_temperatures]:
            op = SPNNOperator(net, mode=mode, latent_step=step, latents_from="logits" if tau is None else "labels",
                              label_temperature=tau)

            def run(offset, op=op):
                return torch.cat([reconstruct(prior, op, x[i:i + args.batch], steps=args.steps, progress=False,
                                              slack=None, travel=None,
                                              seeds=range(offset + i, offset + min(i + args.batch, args.n))).images
                                  for i in range(0, args.n, args.batch)])
            xh, xh2 = run(0), run(1000)
            method = f"nlbp-{mode}" + (f"@{step:g}" if mode == "learned" and step != 1.0 else "")
            method += "" if tau is None else f"+labels tau={tau:g}"
            rows.append({"spnn": path, "method": method, "agreement": attribute_agreement(ev.predict(xh), judged)["mean"],
                         **identity_measures(xh, xh2, x, ev, same_label)})
            print(rows[-1], flush=True)
    rows.append({"spnn": "", **same_label_reference(x, labels, judged, pool, pool_labels, same_label, ev)})
    columns = ["spnn", "method", "agreement", "own_nearest_pixels", "own_nearest_features", "rmse_to_original",
               "rmse_same_attributes_real", "rmse_between_seeds"]
    print(table(rows, columns))
    where = f"{args.n} {args.split} faces, {args.steps} steps, {machine('cpu')}, {time.strftime('%Y-%m-%d')}"
    out = args.plot or str(Path(__file__).parent.parent / "docs" / "results" / f"{args.name}.png")
    plot(rows, out, where, tuple(args.target))
    print("wrote", write(args.name, {"n": args.n, "split": args.split, "steps": args.steps, "latent_steps": args.latent_steps,
                                     "label_temperatures": args.label_temperatures,
                                     "target": args.target, "rows": rows, "plot": out}))


if __name__ == "__main__":
    main()
