"""Cost of one 256x256 NLBP sampling step in the paper's setting, with random weights: the authors' SPNN
layout (celeba256, 150 M parameters, 40 attributes) and the CelebA-HQ DDPM UNet (the DDIM-repository Model,
ch 128, ch_mult 1,1,2,2,4,4, as a diffusers UNet2DModel). Reports seconds per step for the UNet, the SPNN
completion and inverse, and a full NLBP step (natural and learned), and the peak memory.

    python benchmarks/paper_step.py [--batch 1] [--repeats 2]
"""

import argparse
import resource

import torch
from common import Timer, table, write

from spnn.convert import authors_preset
from spnn.diffusion.convert_ddim import ddim_to_diffusers_config
from spnn.diffusion.guidance import BackProjection
from spnn.testing import perturb_


def main() -> None:
    from diffusers import UNet2DModel

    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
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
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30
    print(table(rows, ["part", "seconds"]))
    print(f"peak memory {peak:.2f} GiB; SPNN parameters {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M, "
          f"UNet parameters {sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M")
    write("paper_step", {"batch": args.batch, "rows": rows, "peak_gib": peak})


if __name__ == "__main__":
    main()
