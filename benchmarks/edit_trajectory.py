"""Where does an edit fail? The SPNN's reading of the named attribute along the sampling trajectory.

Edits faces without the attribute (or with it, ``--off``) as `spnn.tasks.edit` does and records, at every NLBP
projection, the SPNN's logit of the attribute on the prior's prediction x0 before the projection and on the
projected image after it, the step's RMS change and the projected image's max |x|; then splits the faces by the
evaluator's verdict on the final image. A failure whose logit before the last step is far from the bound was
never drawn (the last exact step meets the bound off the data); one at the bound is a disagreement between the
SPNN and the evaluator about what the prior drew.

    python benchmarks/edit_trajectory.py --attribute Gray_Hair [--range-rule halve|clip] [--steps 20] [--n 50]
"""

import argparse
from contextlib import contextmanager

import torch
from common import machine, table, write

from spnn.data.avatars import AvatarFaces
from spnn.diffusion.guidance import BackProjection
from spnn.models import load_evaluator, load_prior, load_spnn
from spnn.operators import SPNNOperator
from spnn.tasks import edit


@contextmanager
def recorded_projections(index: int):
    """Within the block, every `BackProjection` projection appends (t, logit before, logit after, RMS change,
    max |x| after) for output coordinate ``index`` to the yielded list."""
    log: list[tuple] = []
    project = BackProjection._project

    def recording(self, x0, t):
        out = project(self, x0, t)
        with torch.no_grad():
            log.append((t, self.op.A(x0)[:, index], self.op.A(out)[:, index],
                        (out - x0).flatten(1).pow(2).mean(1).sqrt(), out.flatten(1).abs().amax(1)))
        return out

    BackProjection._project = recording
    try:
        yield log
    finally:
        BackProjection._project = project


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attribute", default="Gray_Hair")
    ap.add_argument("--off", action="store_true", help="turn the attribute off on faces that have it")
    ap.add_argument("--n", type=int, default=50, help="faces of the split (those to flip are edited)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--range-rule", default="auto", choices=["auto", "halve", "clip"])
    ap.add_argument("--name", default=None, help="results file benchmarks/results/NAME.json (default: none)")
    args = ap.parse_args()

    net, prior, ev = load_spnn(), load_prior(), load_evaluator()
    names = net.attribute_names
    i = names.index(args.attribute)
    x, _ = AvatarFaces.head(args.split, args.n, size=32, n=30000).tensors(limit=args.n)
    value = 0.0 if args.off else 1.0
    sel = ((ev.predict(x)[:, i] > 0) == args.off).nonzero().flatten()
    # the first entry is edit's own full step from the face (the reach), not a sampling step
    with recorded_projections(i) as log:
        res = edit(prior, SPNNOperator(net), x[sel], {args.attribute: value}, steps=args.steps,
                   seeds=sel.tolist(), progress=False, range_rule=args.range_rule)
    ok = (ev.predict(res.images)[:, i] > 0) == (value > 0)
    rows = []
    for t, before, after, move, peak in log[1:]:
        rows.append({"t": t, **{f"{k}_{g}": round(float(f(v[m])), 3) if m.any() else ""
                                for k, v, f in (("logit_before", before, torch.median),
                                                ("logit_after", after, torch.median),
                                                ("rms_step", move, torch.mean), ("max_abs", peak, torch.mean))
                                for g, m in (("fail", ~ok), ("success", ok))}})
    reach = res.info["reach"]
    print(f"{args.attribute}={value:g} on {len(sel)} {args.split} faces, {args.steps} steps, range rule "
          f"{res.info['range_rule']}: success {float(ok.float().mean()):.2f}; median reach failures "
          f"{float(reach[~ok].median()) if (~ok).any() else float('nan'):.2f}, successes "
          f"{float(reach[ok].median()) if ok.any() else float('nan'):.2f} ({machine()})")
    print(table(rows, list(rows[0])))
    if args.name:
        print("wrote", write(args.name, {**vars(args), "faces": len(sel), "success": float(ok.float().mean()),
                                         "range_rule_used": res.info["range_rule"], "trajectory": rows}))


if __name__ == "__main__":
    main()
