"""Cost of one 256x256 NLBP sampling step in the paper's setting, with random weights: the authors' SPNN
layout (celeba256, 150 M parameters, 40 attributes) and the CelebA-HQ DDPM UNet (the DDIM-repository Model,
ch 128, ch_mult 1,1,2,2,4,4, as a diffusers UNet2DModel). Reports seconds per step for the UNet, the SPNN
completion and inverse, a full NLBP step (natural and learned), a full DPS step (UNet forward and backward
through x0(x_t) and the SPNN), and the peak memory of the NLBP steps and of the DPS step. ``--sampling STEPS``
adds whole sampling runs (`spnn.diffusion.sampler.sample`) of every method at each UNet precision and, on CUDA,
with plain launches and CUDA-graph replays side by side: seconds per 100-step image and peak memory.

    python benchmarks/paper_step.py [--batch 1] [--repeats 2] [--sampling 10] [--name paper_step]
"""

import argparse
import resource

import torch
from common import Timer, table, write

from spnn.convert import authors_preset
from spnn.diffusion.convert_ddim import ddim_to_diffusers_config
from spnn.diffusion.guidance import DPS, BackProjection
from spnn.diffusion.prior import Prior, linear_schedule
from spnn.testing import perturb_


def main() -> None:
    from diffusers import UNet2DModel

    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sampling", type=int, default=0, metavar="STEPS",
                    help="also time whole sampling runs of STEPS steps per method, precision and graphs setting")
    ap.add_argument("--name", default="paper_step", help="results file benchmarks/results/NAME.json")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    net = perturb_(authors_preset("celeba256"), 0.02).to(device).eval()
    cfg = {"ch": 128, "in_channels": 3, "out_ch": 3, "ch_mult": [1, 1, 2, 2, 4, 4], "num_res_blocks": 2,
           "attn_levels": [4], "resamp_with_conv": True}
    unet = UNet2DModel(**ddim_to_diffusers_config(cfg, 256)).to(device).eval()
    x = torch.rand(args.batch, 3, 256, 256, device=device) * 2 - 1
    t = torch.full((args.batch,), 500, device=device)
    y = torch.randn(args.batch, 40, device=device)
    rows = []

    def measure(label, fn):
        with torch.no_grad():
            fn()  # warm-up (and the one Cayley solve per mixing, cached afterwards)
            with Timer() as tm:
                for _ in range(args.repeats):
                    fn()
        rows.append({"part": label, "seconds": tm.seconds / args.repeats})
        print(rows[-1])

    measure("UNet eps(x_t, t)", lambda: unet(x, t).sample)
    measure("SPNN completion G(x)", lambda: net.complete(x))
    lat = net.complete(x)
    measure("SPNN inverse G^-1", lambda: net.inverse(*lat))
    for mode in ("natural", "learned"):
        g = BackProjection(net, y, lam=1.0, mode=mode)
        measure(f"NLBP projection ({mode})", lambda g=g: g.project(x, 100))
        measure(f"full step: UNet + NLBP ({mode})", lambda g=g: g.project(unet(x, t).sample, 100))
    peak = peak_gib(device)
    a = float(linear_schedule().alphas_cumprod[500])
    dps = DPS(net, y)

    def dps_step():  # the gradient of ||y - g(x0(x_t))|| with respect to x_t, as in spnn.diffusion.sample
        with torch.enable_grad():
            xt = x.detach().requires_grad_(True)
            x0 = (xt - (1 - a) ** 0.5 * unet(xt, t).sample) / a ** 0.5
            (grad,) = torch.autograd.grad(dps.loss(x0, 100).sum(), xt)
        return grad

    measure("full step: DPS (UNet and SPNN forward + backward)", dps_step)
    by = {r["part"]: r["seconds"] for r in rows}
    ratios = {mode: by["full step: DPS (UNet and SPNN forward + backward)"] / by[f"full step: UNet + NLBP ({mode})"]
              for mode in ("natural", "learned")}
    print(table(rows, ["part", "seconds"]))
    loops = sampling_runs(Prior(unet), net, y, args) if args.sampling else []
    print(f"peak memory {peak:.2f} GiB (NLBP), {peak_gib(device):.2f} GiB (with the DPS step); DPS / NLBP step: "
          f"{ratios['natural']:.2f} (natural), {ratios['learned']:.2f} (learned); SPNN parameters "
          f"{sum(p.numel() for p in net.parameters()) / 1e6:.1f} M, "
          f"UNet parameters {sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M")
    write(args.name, {"batch": args.batch, "rows": rows, "peak_gib": peak, "peak_gib_dps": peak_gib(device),
                      "dps_over_nlbp": ratios, "sampling_steps": args.sampling, "sampling": loops})


def sampling_runs(prior, net, y, args) -> list[dict]:
    """Whole sampling runs at 256x256: seconds per 100-step image (fastest of ``args.repeats`` after a warm-up,
    which also records the graphs) and peak memory, per method, UNet precision and graphs setting."""
    from spnn.diffusion.sampler import sample

    cuda = torch.cuda.is_available()
    methods = {"none": None, "nlbp-natural": BackProjection(net, y, mode="natural"),
               "nlbp-learned": BackProjection(net, y, mode="learned"), "dps": DPS(net, y)}
    rows = []
    for method, guidance in methods.items():
        for precision in ("float32", "bfloat16"):
            # on: CUDA graphs on a GPU; on a CPU the bfloat16 UNet's frozen trace (float32 is not traced there)
            recorded = method != "dps" and (cuda or precision == "bfloat16")
            for graphs in (("off", "on") if recorded else ("off",)):
                def once(g=guidance, p=precision, gr=graphs):
                    sample(prior, args.batch, steps=args.sampling, guidance=g, precision=p, graphs=gr, progress=False)
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                once()
                times = []
                for _ in range(args.repeats):
                    with Timer() as tm:
                        once()
                    times.append(tm.seconds)
                rows.append({"method": method, "precision": precision, "graphs": graphs, "batch": args.batch,
                             "s_per_image_100_steps": min(times) / args.batch * 100 / args.sampling,
                             "peak_gib": peak_gib("cuda" if cuda else "cpu")})
                print(rows[-1])
    add_ratios(rows)
    print(table(rows, ["method", "precision", "graphs", "batch", "s_per_image_100_steps", "vs_unconditional",
                       "vs_plain", "peak_gib"]))
    return rows


def add_ratios(rows: list[dict]) -> None:
    """vs_unconditional: against unconditional sampling at the same precision and graphs setting (DPS: plain);
    vs_plain: graph replays against plain launches of the same method and precision."""
    s = {(r["method"], r["precision"], r["graphs"]): r["s_per_image_100_steps"] for r in rows}
    for r in rows:
        if (base := s.get(("none", r["precision"], r["graphs"]))) is not None:
            r["vs_unconditional"] = r["s_per_image_100_steps"] / base
        if r["graphs"] == "on" and (plain := s.get((r["method"], r["precision"], "off"))) is not None:
            r["vs_plain"] = r["s_per_image_100_steps"] / plain


def peak_gib(device: str) -> float:
    """Peak memory so far: CUDA max allocated, or the process's max RSS."""
    return (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30


if __name__ == "__main__":
    main()
