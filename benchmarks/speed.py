"""Sampling speed and peak memory per method at batch 1 and 16, with the cost of each component.

NLBP's floor is unconditional sampling plus one SPNN completion and one inverse per step (plus one
r pass per step in learned mode). Each configuration runs in a fresh process so that peak memory
(max RSS on CPU, max allocated on CUDA) is its own.

    python benchmarks/speed.py [--steps 20] [--batches 1 16]
"""

import argparse
import json
import resource
import subprocess
import sys

import torch
from common import Timer, table, write

METHODS = ["none", "nlbp-learned", "nlbp-natural", "dps", "cg"]


def run_one(method: str, batch: int, steps: int, spnn=None, prior=None) -> dict:
    from spnn.diffusion.sampler import sample
    from spnn.models import load_prior, load_spnn
    from spnn.operators import SPNNOperator
    from spnn.tasks import make_guidance

    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, pr = load_spnn(spnn, device), load_prior(prior, device)
    x = torch.rand(batch, *pr.image_shape, device=device) * 2 - 1
    y = net(x).detach()
    name, _, mode = method.partition("-")
    op = SPNNOperator(net, mode=mode or "learned")
    guidance = make_guidance(name, op, y)
    sample(pr, batch, steps=2, guidance=guidance, progress=False)  # warm-up
    with Timer() as t:
        sample(pr, batch, steps=steps, guidance=guidance, progress=False)
    out = {"method": method, "batch": batch, "seconds": t.seconds, "s_per_image_100_steps":
           t.seconds / batch * 100 / steps}
    if method == "none":  # component costs per step
        tt = torch.full((batch,), 500, device=device)
        with torch.no_grad():
            for label, fn in [("unet", lambda: pr.eps(x, tt)), ("complete", lambda: net.complete(x)),
                              ("inverse", lambda: net.inverse(*net.complete(x))),
                              ("r_pass", lambda: net.pinv(y, return_latents=True))]:
                fn()
                with Timer() as c:
                    for _ in range(5):
                        fn()
                out[f"{label}_s"] = c.seconds / 5
        out["complete_s_only"] = out["complete_s"]
        out["inverse_s"] -= out["complete_s"]  # inverse measured after a completion
    if torch.cuda.is_available():
        out["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--spnn")
    ap.add_argument("--prior")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.steps, args.spnn, args.prior)))
        return
    rows = []
    for batch in args.batches:
        for method in METHODS:
            cmd = [sys.executable, __file__, "--one", method, str(batch), "--steps", str(args.steps)]
            cmd += ["--spnn", args.spnn] if args.spnn else []
            cmd += ["--prior", args.prior] if args.prior else []
            rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
    for batch in args.batches:
        base = next(r for r in rows if r["batch"] == batch and r["method"] == "none")
        per_step = {k: base[k] for k in ("unet_s", "complete_s", "inverse_s", "r_pass_s")}
        floor_nat = base["seconds"] + args.steps * (per_step["complete_s"] + per_step["inverse_s"])
        floor_lrn = floor_nat + args.steps * per_step["r_pass_s"]
        for r in rows:
            if r["batch"] != batch:
                continue
            r["vs_unconditional"] = r["seconds"] / base["seconds"]
            if r["method"] == "nlbp-natural":
                r["vs_floor"] = r["seconds"] / floor_nat
            if r["method"] == "nlbp-learned":
                r["vs_floor"] = r["seconds"] / floor_lrn
        nat = next(r for r in rows if r["batch"] == batch and r["method"] == "nlbp-natural")
        dps = next(r for r in rows if r["batch"] == batch and r["method"] == "dps")
        dps["vs_nlbp_natural"] = dps["seconds"] / nat["seconds"]
        print(f"batch {batch}: per step unet {per_step['unet_s'] * 1e3:.1f} ms, SPNN completion "
              f"{per_step['complete_s'] * 1e3:.2f} ms, inverse {per_step['inverse_s'] * 1e3:.2f} ms, "
              f"r pass {per_step['r_pass_s'] * 1e3:.2f} ms")
    print(table(rows, ["method", "batch", "seconds", "s_per_image_100_steps", "vs_unconditional", "vs_floor",
                       "vs_nlbp_natural", "peak_mb"]))
    print("wrote", write("speed", {"steps": args.steps, "rows": rows}))


if __name__ == "__main__":
    main()
