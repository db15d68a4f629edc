"""NLBP side by side with DDNM, DPS, DAPS and RED-diff: quality against compute on the same problems.

Problems (held-out 32x32 faces): the tone curve + 4x pooling (exact non-linear operator), the black-box camera
(blur, 4x pool, tone curve, clipping; NLBP through its SPNN emulator, alone or corrected each step by the
camera's residual (`FeedbackEmulator`: one camera call per step, no gradient), the gradient methods through the
true camera), an HDR-style clipping y = clip(2x, -1, 1), and reconstruction from semantics (the SPNN's 22 logits;
quality is the evaluator's attribute agreement). Per method and budget: quality, consistency
|A(x) - y| / |y| (with the true operator), network calls and operator calls (projections or gradients) per
image, seconds per image on this machine, and the process's peak memory while it ran.

    python benchmarks/solvers.py [--n 8] [--problems tone-sr4 camera hdr semantics] [--quick]
"""

import argparse
import json

import torch
from common import RESULTS, Timer, machine, table, write

from spnn.data.avatars import AvatarFaces
from spnn.degradations import BlackBoxCamera, exact_operator
from spnn.diffusion.solvers import daps, red_diff
from spnn.errors import ConfigError
from spnn.evaluation.metrics import attribute_agreement, psnr
from spnn.models import ASSETS, load_evaluator, load_prior, load_spnn
from spnn.operators import AveragePool, FeedbackEmulator, Operator, SPNNOperator
from spnn.tasks import make_guidance

PROBLEMS = ["tone-sr4", "camera", "hdr", "semantics"]
# DAPS's default step (1e-4, for images with tau 0.01) diverges on the SPNN's logits (and so did 3e-6 at 200
# levels); a looser likelihood and a smaller step were stable in a probe on two test faces
DAPS_OVERRIDES = {"semantics": {"lr": 1e-5, "tau": 0.1}}


class Clip(Operator):
    """HDR-style degradation: y = clip(2 x, -1, 1) (no pseudo-inverse: gradient methods only)."""

    def __init__(self, shape):
        super().__init__()
        self.input_shape = self.output_shape = tuple(shape)

    def A(self, x):  # noqa: N802
        return (2 * x).clamp(-1, 1)


def _peak_reset() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak resident set size (Linux)
    except OSError:
        pass


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8, help="test faces per problem")
    ap.add_argument("--problems", nargs="+", default=PROBLEMS, choices=PROBLEMS)
    ap.add_argument("--quick", action="store_true", help="tiny budgets (a smoke test, not a measurement)")
    ap.add_argument("--data-n", type=int, default=30000)
    ap.add_argument("--name", default="solvers")
    ap.add_argument("--plot", help="PNG: quality against seconds per image, one panel per problem")
    ap.add_argument("--merge", action="store_true", help="keep the other problems' rows of an existing results file")
    args = ap.parse_args()
    torch.manual_seed(0)
    prior, net, ev = load_prior(), load_spnn(), load_evaluator()
    net.requires_grad_(False)
    shape = prior.image_shape
    x = AvatarFaces.head("test", args.n, n=args.data_n).tensors()[0]
    camera, emulator = BlackBoxCamera(), SPNNOperator(load_spnn(ASSETS / "avatars32-camera-emulator.safetensors"),
                                                      mode="natural")
    problems = {"tone-sr4": (exact_operator("tone-sr4", shape), exact_operator("tone-sr4", shape)),
                "camera": (camera, emulator), "hdr": (Clip(shape), None),
                "semantics": (SPNNOperator(net, mode="learned"), SPNNOperator(net, mode="learned"))}
    nlbp_steps = [2, 5] if args.quick else [10, 20, 50, 100]
    daps_budgets = {"default (200 x 5, 100 Langevin)": dict(levels=200, ode_steps=5, langevin_steps=100),
                    "reduced (50 x 2, 50 Langevin)": dict(levels=50, ode_steps=2, langevin_steps=50)}
    if args.quick:
        daps_budgets = {"quick": dict(levels=3, ode_steps=1, langevin_steps=2)}
    red_steps = [20] if args.quick else [200, 1000]
    rows = []
    for name in args.problems:
        true_op, pinv_op = problems[name]
        with torch.no_grad():
            y = true_op.A(x)
        seeds = range(args.n)
        lam = {} if name == "semantics" else {"lam": 1.0}  # semantics: the paper's step schedule
        runs = []  # (method, budget, solver, options)
        if pinv_op is not None:
            runs += [("nlbp", f"{k} steps", "sample", {"guidance": make_guidance("nlbp", pinv_op, y, **lam), "steps": k})
                     for k in nlbp_steps]
        if name == "camera":  # the emulator's steps corrected by the camera's residual (one camera call a step)
            runs += [("nlbp (emulator + feedback)", f"{k} steps", "sample",
                      {"guidance": make_guidance("nlbp", FeedbackEmulator(pinv_op, true_op), y, **lam), "steps": k,
                       "operator_calls": 2 * k}) for k in nlbp_steps]
        if name in ("tone-sr4", "camera"):  # DDNM reads y as a plain 4x-pooled image
            ddnm = make_guidance("nlbp", AveragePool(shape, 4), y, lam=1.0)
            runs.append(("ddnm (linear part only)", "50 steps", "sample", {"guidance": ddnm, "steps": 50}))
        dps_steps = 5 if args.quick else 100
        runs.append(("dps", f"{dps_steps} steps", "sample", {"guidance": make_guidance("dps", true_op, y),
                                                              "steps": dps_steps}))
        runs += [("daps", label, "daps", {**budget, **DAPS_OVERRIDES.get(name, {})})
                 for label, budget in daps_budgets.items()]
        runs += [("red-diff", f"{k} steps", "red-diff", {"steps": k}) for k in red_steps]
        if name == "camera":  # the solver apart from the operator: DAPS and RED-diff through NLBP's emulator
            label, budget = list(daps_budgets.items())[-1]
            runs += [("daps (emulator)", label, "daps", {**budget, "operator": pinv_op}),
                     ("red-diff (emulator)", f"{red_steps[0]} steps", "red-diff",
                      {"steps": red_steps[0], "operator": pinv_op})]
        for method, budget, solver, options in runs:
            _peak_reset()
            try:
                with Timer() as t:
                    xh, calls, op_calls = _run(solver, prior, true_op, y, seeds, options)
            except ConfigError as e:  # a solver that diverged: recorded, not fatal
                rows.append({"problem": name, "method": method, "budget": f"{budget}: {str(e).split(':')[0]}"})
                print(rows[-1], flush=True)
                continue
            row = {"problem": name, "method": method, "budget": budget, "network_calls": calls,
                   "operator_calls": op_calls, "s_per_image": t.seconds / args.n, "peak_mb": _peak_mb()}
            with torch.no_grad():
                yh = true_op.A(xh)
                row["consistency"] = float((yh - y).norm() / y.norm())
                if name == "semantics":
                    row["agreement"] = attribute_agreement(ev.predict(xh.clamp(-1, 1)), ev.predict(x))["mean"]
                else:
                    row["psnr_db"] = float(psnr(xh.clamp(-1, 1), x).mean())
            rows.append(row)
            print(row, flush=True)
        if pinv_op is None:
            rows.append({"problem": name, "method": "nlbp", "budget": "n/a: no SPNN operator for this degradation"})
    columns = ["problem", "method", "budget", "psnr_db", "agreement", "consistency", "network_calls",
               "operator_calls", "s_per_image", "peak_mb"]
    if args.merge and (old := RESULTS / f"{args.name}.json").exists():
        kept = [r for r in json.loads(old.read_text())["rows"] if r["problem"] not in args.problems]
        rows = kept + rows
    print(table(rows, columns))
    settings = {"n": args.n, "daps": daps_budgets, "daps_common": "lr 1e-4, lr_min_ratio 0.01, tau 0.01, sigma 100 "
                "-> 0.1 (poly-7), ODE to 0.01", "red_diff": "Adam lr 0.1, lam 0.25, obs_weight 1, init pinv(y) or noise",
                "dps": "zeta 0.5 (Chung et al., through the UNet)", "nlbp": "lam 1 (restoration), paper lam for semantics",
                "daps_overrides": DAPS_OVERRIDES}
    print("wrote", write(args.name, {"settings": settings, "rows": rows}))
    if args.plot:
        plot(rows, args.plot, machine())
        print("wrote", args.plot)


def _run(solver: str, prior, op, y, seeds, options: dict):
    """(images, network calls per image, operator calls per image) of one solver run."""
    from spnn.diffusion.sampler import sample

    if solver == "sample":
        options = dict(options)
        op_calls = options.pop("operator_calls", options["steps"])
        out = sample(prior, len(y), seeds=seeds, progress=False, **options).images
        return out, options["steps"], op_calls
    options = dict(options)
    op = options.pop("operator", op)  # a solver may be given another operator than the true one (an emulator)
    res = (daps if solver == "daps" else red_diff)(prior, op, y, seeds=seeds, progress=False, **options)
    return res.images, res.network_calls, res.operator_gradients


def plot(rows: list[dict], path: str, where: str) -> None:
    """Quality (PSNR or agreement) against seconds per image (log scale), one panel per problem (PIL only)."""
    import math

    from PIL import Image, ImageDraw

    colours = {"nlbp": (200, 30, 30), "nlbp (emulator + feedback)": (250, 140, 20),
               "ddnm (linear part only)": (120, 120, 120), "dps": (30, 90, 200),
               "daps": (30, 150, 60), "red-diff": (160, 60, 170), "daps (emulator)": (120, 220, 120),
               "red-diff (emulator)": (220, 150, 230)}
    problems = [p for p in PROBLEMS if any(r["problem"] == p and "s_per_image" in r for r in rows)]
    w, h, pad = 360, 260, 46
    img = Image.new("RGB", (w * len(problems), h + 60), "white")
    d = ImageDraw.Draw(img)
    for k, prob in enumerate(problems):
        pts = [r for r in rows if r["problem"] == prob and "s_per_image" in r]
        key = "agreement" if prob == "semantics" else "psnr_db"
        xs = [math.log10(max(r["s_per_image"], 1e-4)) for r in pts]
        ys = [r[key] for r in pts]
        x0, x1, y0, y1 = min(xs) - 0.2, max(xs) + 0.2, min(ys), max(ys)
        y0, y1 = y0 - 0.05 * (y1 - y0 + 1e-9), y1 + 0.05 * (y1 - y0 + 1e-9)
        ox = k * w
        d.rectangle([ox + pad, 20, ox + w - 10, h - 20], outline="black")
        d.text((ox + pad, 4), f"{prob}: {key} vs s/image (log)", fill="black")
        for r, px, py in zip(pts, xs, ys):
            cx = ox + pad + (px - x0) / (x1 - x0) * (w - 10 - pad)
            cy = h - 20 - (py - y0) / (y1 - y0) * (h - 40)
            c = colours.get(r["method"], (0, 0, 0))
            d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=c)
        d.text((ox + 4, 20), f"{y1:.3g}", fill="black")
        d.text((ox + 4, h - 30), f"{y0:.3g}", fill="black")
        d.text((ox + pad, h - 16), f"{10 ** x0:.2g} s", fill="black")
        d.text((ox + w - 60, h - 16), f"{10 ** x1:.2g} s", fill="black")
    for i, (m, c) in enumerate(colours.items()):
        d.ellipse([10 + i * 170, h + 12, 18 + i * 170, h + 20], fill=c)
        d.text((22 + i * 170, h + 10), m, fill="black")
    d.text((10, h + 36), where, fill="black")
    img.save(path)


if __name__ == "__main__":
    main()
