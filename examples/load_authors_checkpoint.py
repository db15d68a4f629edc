"""Load the authors' SPNN checkpoint and run their sampling loop (preset "paper").

    python examples/load_authors_checkpoint.py --spnn models/spnn_celebahq_256.pth --prior models/celeba_hq.ckpt \
        --images faces/                 # the paper's CelebA-HQ setting (a GPU is advisable: ~5 min/image on a CPU)
    python examples/load_authors_checkpoint.py --tiny    # the test fixtures: a small SPNN of theirs, tiny UNet

Their state dicts (``pinn.blocks.*``) load unchanged; ``version`` picks which of their code versions to
reproduce (a901837: Cayley epsilon 1e-6, the default; "later": 1e-4 in float32).
"""

import argparse
from pathlib import Path

import torch

from spnn import penrose_report
from spnn.convert import load_authors_spnn
from spnn.models import load_prior
from spnn.operators import SPNNOperator
from spnn.tasks import reconstruct

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spnn", default=str(FIXTURES / "authors_nlbp_32.spnn.safetensors"))
    ap.add_argument("--prior", default=str(FIXTURES / "ddim_model_tiny.state.safetensors"))
    ap.add_argument("--version", default="a901837", choices=["a901837", "later", "exact"])
    ap.add_argument("--tiny", action="store_true", help="the fixtures, 10 steps")
    args = ap.parse_args()
    net = load_authors_spnn(args.spnn, version=args.version).eval()
    prior = load_prior(args.prior, image_size=net.input_shape[1])
    x = torch.rand(2, *net.input_shape) * 1.8 - 0.9
    worst = max(v for k, v in penrose_report(net, x).items() if "mean_square" not in k)
    print(f"{net.input_shape} -> {net.output_shape}, {sum(p.numel() for p in net.parameters())} parameters, "
          f"largest Penrose residual {worst:.1e} (their Cayley epsilon)")
    res = reconstruct(prior, SPNNOperator(net, mode="learned"), x, steps=10 if args.tiny else 100,
                      preset="paper", progress=False)
    print(f"reconstruction from semantics with the paper preset: max |g(x) - y| "
          f"{float((net(res.images) - res.targets).abs().max()):.3g}")


if __name__ == "__main__":
    main()
