"""Sampling speed and peak memory per method at batch 1 and 16, with the cost of each component.

NLBP's floor is unconditional sampling plus one SPNN completion and one inverse per step (plus one
r pass per step in learned mode). Both modes can go below it: natural mode's inverse reuses the completion's s
and t values (``inverse_reuse_s``), and learned mode from batch 2 walks the r pass and the inverse down the blocks
together (`SPNN.inverse_along_walk`): ``vs_floor`` compares with that sum of separately timed parts,
``vs_floor_in_loop`` with a bare guidance that does exactly those passes inside the same loop (rows
floor-*), which also pays the cache cost of running a second network between UNet calls. Timings: all methods in one process, interleaved, the fastest of
``--repeats`` rounds (the least disturbed by other processes). Peak memory (max RSS on CPU, max
allocated on CUDA): each configuration in a fresh process, so that the figure is its own. Each UNet precision
and, on CUDA, plain launches and CUDA-graph replays (``--graphs off on``) are measured side by side;
``--throughput N`` adds 100-step sampling of N images at once (images per second).

    python benchmarks/speed.py [--steps 20] [--batches 1 16] [--repeats 5] [--name speed]
"""

import argparse
import json
import resource
import subprocess
import sys

import torch
from common import Timer, table, write

from spnn.diffusion.guidance import Guidance

METHODS = ["none", "floor-natural", "nlbp-natural", "floor-learned", "nlbp-learned", "dps", "dps-paper", "cg"]


class Floor(Guidance):
    """NLBP's limit inside the loop: exactly one completion and one inverse per step (plus one r pass in
    learned mode), with no targets, schedules or bookkeeping."""

    def __init__(self, net, y, learned: bool):
        self.net, self.y, self.learned = net, y, learned

    def project(self, x0, t):
        if self.learned:
            self.net.learned_latents(self.y)
        return self.net.inverse(*self.net.complete(x0))


def setup(batch: int, spnn=None, prior=None):
    from spnn.models import load_prior, load_spnn
    from spnn.operators import SPNNOperator
    from spnn.tasks import make_guidance

    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, pr = load_spnn(spnn, device), load_prior(prior, device)
    torch.manual_seed(0)
    x = torch.rand(batch, *pr.image_shape, device=device) * 2 - 1
    y = net(x).detach()
    guidances = {}
    for method in METHODS:
        name, _, mode = method.partition("-")
        if method == "dps-paper":  # the authors' DPS: a gradient step on x0, no UNet backward
            guidances[method] = make_guidance(method, SPNNOperator(net), y)
        elif name == "floor":
            guidances[method] = Floor(net, y, learned=mode == "learned")
        else:
            guidances[method] = make_guidance(name, SPNNOperator(net, mode=mode or "learned"), y)
    return net, pr, x, y, guidances


def run(pr, guidance, batch: int, steps: int, precision: str = "float32", graphs: str = "off") -> float:
    from spnn.diffusion.sampler import sample

    with Timer() as t:
        sample(pr, batch, steps=steps, guidance=guidance, precision=precision, progress=False, graphs=graphs)
    return t.seconds


def fastest(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        with Timer() as t:
            fn()
        times.append(t.seconds)
    return min(times)


def peak_memory_mb(method: str, batch: int, steps: int, spnn=None, prior=None) -> float:
    _, pr, _, _, guidances = setup(batch, spnn, prior)
    run(pr, guidances[method], batch, steps)
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(batch: int, steps: int, repeats: int, spnn=None, prior=None, precision: str = "float32",
            graphs: str = "off") -> tuple[list[dict], dict]:
    net, pr, x, y, guidances = setup(batch, spnn, prior)
    pr.for_inference()
    for g in guidances.values():
        run(pr, g, batch, 2, precision, graphs)  # warm-up (and the graphs' recording)
    seconds = {m: [] for m in METHODS}
    for _ in range(repeats):
        for m in METHODS:
            seconds[m].append(run(pr, guidances[m], batch, steps, precision, graphs))
    tt = torch.full((batch,), 500, device=x.device)
    with torch.no_grad():
        completion = net.complete(x, return_conditioners=True)
        from spnn.diffusion.prior import predict_eps
        from spnn.graphs import resolve_graphs

        at = pr.at_precision(precision)
        traces_before, at.use_traces = at.use_traces, graphs != "off"  # the CPU's frozen trace, as in sampling
        eps = at.graphed_eps(precision) if resolve_graphs(graphs, x.device) else (
            lambda x, t: predict_eps(at, x, t, precision))
        projections = {}
        for mode in ("natural", "learned"):
            g = guidances[f"nlbp-{mode}"]
            g.begin(batch)
            g.use_graphs(resolve_graphs(graphs, x.device))
            projections[f"project_{mode}_s"] = fastest(lambda g=g: g.project(x, 100), 10 * repeats)
            g.use_graphs(False)
        parts = {"unet_s": fastest(lambda: eps(x, tt), 10 * repeats), **projections,
                 "complete_s": fastest(lambda: net.complete(x), 10 * repeats),
                 "inverse_s": fastest(lambda: net.inverse(*completion), 10 * repeats),
                 # natural NLBP keeps the latents and reuses the completion's s and t values
                 "inverse_reuse_s": fastest(lambda: net.inverse(*completion, completion.conditioners), 10 * repeats),
                 "r_pass_s": fastest(lambda: net.learned_latents(y), 10 * repeats)}
        at.use_traces = traces_before
    base = min(seconds["none"])
    floor_nat = base + steps * (parts["complete_s"] + parts["inverse_s"])
    floor = {"nlbp-natural": floor_nat, "nlbp-learned": floor_nat + steps * parts["r_pass_s"]}
    in_loop = {"nlbp-natural": min(seconds["floor-natural"]), "nlbp-learned": min(seconds["floor-learned"])}
    rows = []
    for m in METHODS:
        s = min(seconds[m])
        row = {"method": m, "precision": precision, "graphs": graphs, "batch": batch, "seconds": s,
               "s_per_image_100_steps": s / batch * 100 / steps,
               "vs_unconditional": s / base}
        if m in floor and graphs == "off":  # the floors are plain launches
            row["floor_seconds"] = floor[m]
            row["vs_floor"] = s / floor[m]
            row["vs_floor_in_loop"] = s / in_loop[m]
        rows.append(row)
    if graphs == "on":  # the replays' (traces') numbers against plain launches, same seeds, and a plain
        from spnn.diffusion.sampler import sample  # rerun (cuDNN's backward passes are not deterministic)

        for r in rows:
            if not r["method"].startswith("floor"):
                a, b, c = (sample(pr, batch, steps=steps, guidance=guidances[r["method"]], precision=precision,
                                  progress=False, graphs=g).images for g in ("off", "on", "off"))
                r["max_diff_vs_plain"] = float((a - b).abs().max())
                r["max_diff_plain_rerun"] = float((a - c).abs().max())
    nat = min(seconds["nlbp-natural"])
    for r in rows:
        if r["method"] in ("dps", "dps-paper", "cg"):
            r["vs_nlbp_natural"] = r["seconds"] / nat
    return rows, parts


def images_per_second(n: int, repeats: int, spnn, prior, precisions, graphs) -> list[dict]:
    """100-step sampling of n images in one call: unconditional and learned NLBP, fastest of ``repeats``."""
    _, pr, _, _, guidances = setup(n, spnn, prior)
    rows = []
    for method in ("none", "nlbp-learned"):
        for precision in precisions:
            for g in graphs:
                s = fastest(lambda m=method, p=precision, g=g: run(pr, guidances[m], n, 100, p, g), max(1, repeats // 2))
                rows.append({"method": method, "batch": n, "precision": precision, "graphs": g, "seconds": s,
                             "images_per_second": n / s})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--spnn")
    ap.add_argument("--prior")
    ap.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"],
                    help="the prior UNet's precision; each is measured and reported side by side")
    ap.add_argument("--graphs", nargs="+", default=["off"], choices=["off", "on"],
                    help="plain kernel launches and/or recorded calls (sample's graphs: CUDA-graph replays on a GPU, the "
                         "bfloat16 UNet's frozen TorchScript trace on a CPU)")
    ap.add_argument("--throughput", type=int, nargs="*", default=[], metavar="N",
                    help="also time 100-step sampling of N images at once (unconditional and learned NLBP)")
    ap.add_argument("--name", default="speed", help="results file benchmarks/results/NAME.json")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip peak memory (one fresh process per configuration: slow to start on a GPU)")
    ap.add_argument("--memory-of", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_of:
        print(json.dumps(peak_memory_mb(args.memory_of[0], int(args.memory_of[1]), args.steps, args.spnn,
                                        args.prior)))
        return
    rows, components, throughput = [], {}, []
    configs = [(b, p, g) for b in args.batches for p in args.precisions for g in args.graphs]
    for batch, precision, graphs in configs:
        batch_rows, parts = measure(batch, args.steps, args.repeats, args.spnn, args.prior, precision, graphs)
        components[f"{batch}-{precision}-graphs-{graphs}"] = parts
        for r in batch_rows if args.memory else []:
            if r["method"].startswith("floor"):
                continue
            cmd = [sys.executable, __file__, "--memory-of", r["method"], str(batch), "--steps", str(args.steps)]
            cmd += ["--spnn", args.spnn] if args.spnn else []
            cmd += ["--prior", args.prior] if args.prior else []
            r["peak_mb"] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        rows += batch_rows
        spnn_ms = (parts["complete_s"] + parts["inverse_s"]) * 1e3
        print(f"batch {batch}, {precision}, graphs {graphs}: per step UNet {parts['unet_s'] * 1e3:.2f} ms, "
              f"NLBP projection natural {parts['project_natural_s'] * 1e3:.2f} ms, learned "
              f"{parts['project_learned_s'] * 1e3:.2f} ms; plain SPNN completion "
              f"{parts['complete_s'] * 1e3:.2f} ms + inverse {parts['inverse_s'] * 1e3:.2f} ms "
              f"(= {spnn_ms / (parts['unet_s'] * 1e3):.0%} of the UNet), r pass {parts['r_pass_s'] * 1e3:.2f} ms, "
              f"inverse reusing s and t (natural NLBP) {parts['inverse_reuse_s'] * 1e3:.2f} ms")
        # written after every batch size, so that a run stopped early keeps what it measured
        path = write(args.name, {"steps": args.steps, "repeats": args.repeats, "components": components,
                                 "rows": rows, "complete": False})
    seconds = {(r["method"], r["batch"], r["precision"], r["graphs"]): r["seconds"] for r in rows}
    for r in rows:
        key = (r["method"], r["batch"])
        if r["precision"] != "float32" and (*key, "float32", "off") in seconds:
            r["vs_float32"] = r["seconds"] / seconds[(*key, "float32", "off")]  # against plain float32
        if r["graphs"] == "on" and (*key, r["precision"], "off") in seconds:
            r["vs_plain"] = r["seconds"] / seconds[(*key, r["precision"], "off")]
    for n in args.throughput:
        throughput += images_per_second(n, args.repeats, args.spnn, args.prior, args.precisions, args.graphs)
        print(table(throughput, ["method", "batch", "precision", "graphs", "seconds", "images_per_second"]))
    path = write(args.name, {"steps": args.steps, "repeats": args.repeats, "components": components, "rows": rows,
                             "throughput_100_steps": throughput, "complete": True})
    print(table(rows, ["method", "precision", "graphs", "batch", "seconds", "vs_float32", "vs_plain", "s_per_image_100_steps",
                       "vs_unconditional", "floor_seconds", "vs_floor", "vs_floor_in_loop", "vs_nlbp_natural", "max_diff_vs_plain", "max_diff_plain_rerun", "peak_mb"]))
    print("wrote", path)


if __name__ == "__main__":
    main()
