"""NLBP inside your own sampling loop: a plain DDIM loop written out, with one back-projection per step.

    python examples/nlbp_in_your_loop.py            # the shipped avatar models, 50 steps
    python examples/nlbp_in_your_loop.py --tiny     # 3 steps (the smoke test)
"""

import argparse

import torch

from spnn.backproject import nlbp
from spnn.data.avatars import AvatarFaces
from spnn.models import load_prior, load_spnn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    steps = 3 if args.tiny else 50
    prior, net = load_prior(), load_spnn()
    x_ref = AvatarFaces.head("test", 4, root=None).tensors()[0]
    with torch.no_grad():
        y = net(x_ref)                                          # the semantics to keep: 22 attribute logits
    abar = prior.alphas_cumprod.double()
    ts = list(range(1000 - 1000 // steps, -1, -1000 // steps))  # 980, 960, ..., 0 at 50 steps
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(x_ref.shape, generator=gen)
    with torch.no_grad():
        for k, t in enumerate(ts):
            a = abar[t].float()
            a_next = abar[ts[k + 1]].float() if k + 1 < len(ts) else torch.tensor(1.0)
            eps = prior.eps(x, torch.full((len(x),), t))
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            x0 = nlbp(net, x0, y, lam=0.5 if t >= 600 else 1.0)     # back-project onto g(x0) = y
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps       # deterministic DDIM (eta 0)
    print(f"max |g(x) - y| after {steps} steps: {float((net(x0) - y).abs().max()):.1e}")


if __name__ == "__main__":
    main()
