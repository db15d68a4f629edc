"""Non-linear degradations on held-out 32x32 faces: PSNR, consistency ||D(x_hat) - y|| / ||y|| and time.

- exact operator (tone curve then 4x average pooling): NLBP (exact), DPS with the true operator, linear DDNM
  that ignores the tone curve, and the plain pseudo-inverse phi^-1(A+ y) without a prior;
- black-box camera (blur, 4x pool, tanh tone curve, clipping): NLBP through the learned SPNN emulator,
  DPS with the true differentiable camera, linear DDNM ignoring blur/tone/clipping, the emulator's
  natural pseudo-inverse without a prior.

    python benchmarks/degradations.py [--n 100] [--steps 50] [--emulator PATH (default: the shipped one)]
"""

import argparse

import torch
from common import Timer, table, write

from spnn.data.avatars import AvatarFaces
from spnn.degradations import BlackBoxCamera, exact_operator
from spnn.diffusion.guidance import DPS, BackProjection
from spnn.diffusion.sampler import sample
from spnn.evaluation.metrics import psnr
from spnn.models import ASSETS, load_prior, load_spnn
from spnn.operators import AveragePool, SPNNOperator
from spnn.viz import image_grid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--prior")
    ap.add_argument("--emulator", default=str(ASSETS / "avatars32-camera-emulator.safetensors"))
    ap.add_argument("--zeta", type=float, default=0.5)
    args = ap.parse_args()
    prior = load_prior(args.prior)
    shape = prior.image_shape
    x = AvatarFaces(split="test").tensors(limit=args.n)[0]
    pool = AveragePool(shape, 4)
    settings = {"tone-sr4": exact_operator("tone-sr4", shape), "camera": BlackBoxCamera()}
    emulator = SPNNOperator(load_spnn(args.emulator), mode="natural")
    rows, grids = [], {}
    for name, true_op in settings.items():
        with torch.no_grad():
            y = true_op.A(x)
        solver = true_op if name != "camera" else emulator
        methods = {
            "nlbp" if name != "camera" else "nlbp (emulator)":
                lambda yy, solver=solver: BackProjection(solver, yy, lam=1.0),
            "dps (true D)": lambda yy, true_op=true_op: DPS(true_op, yy, zeta=args.zeta),
            "ddnm (linear, ignores non-linearity)": lambda yy: BackProjection(pool, yy, lam=1.0),
        }
        shown = [x[:8]]
        for label, make in methods.items():
            outs = []
            with Timer() as t:
                for i in range(0, args.n, args.batch):
                    s = slice(i, min(i + args.batch, args.n))
                    outs.append(sample(prior, s.stop - s.start, steps=args.steps, guidance=make(y[s]),
                                       seeds=range(s.start, s.stop), progress=False).images)
            xh = torch.cat(outs)
            rows.append(_row(name, label, xh, x, y, true_op, t.seconds / args.n))
            shown.append(xh[:8])
        with Timer() as t, torch.no_grad():
            xp = solver.pinv(y)
        rows.append(_row(name, "pseudo-inverse, no prior", xp, x, y, true_op, t.seconds / args.n))
        shown.insert(1, torch.nn.functional.interpolate(y[:8], size=shape[1:], mode="nearest"))
        shown.append(xp[:8])
        grids[name] = shown
        image_grid(shown, f"benchmarks/results/degradations-{name}.png", scale=3,
                   row_labels=["truth", "degraded", *[m.split(" ")[0] for m in methods], "pinv"])
    print(table(rows, ["degradation", "method", "psnr_db", "consistency", "s_per_image"]))
    print("wrote", write("degradations", {"n": args.n, "steps": args.steps, "rows": rows}))


def _row(name, label, xh, x, y, op, seconds):
    with torch.no_grad():
        yh = op.A(xh)
    return {"degradation": name, "method": label, "psnr_db": float(psnr(xh.clamp(-1, 1), x).mean()),
            "consistency": float((yh - y).norm() / y.norm()), "s_per_image": seconds}


if __name__ == "__main__":
    main()
