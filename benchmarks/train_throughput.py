"""Phase-1 training throughput (images/s) of the default 32x32 SPNN (hidden 32, batch 256).

    python benchmarks/train_throughput.py [--steps 10]
"""

import argparse

import torch
from common import Timer, table, write

from spnn import SPNN
from spnn.training.spnn import PHASE_DEFAULTS, phase1_loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    rows = []
    for hidden, t_bound in [(32, 3.0), (64, 3.0)]:
        torch.manual_seed(0)
        net = SPNN.build((3, 32, 32), (22,), hidden=hidden, t_bound=t_bound)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x, y = torch.rand(args.batch, 3, 32, 32) * 2 - 1, (torch.rand(args.batch, 22) > 0.5).float()
        w = PHASE_DEFAULTS[1]["weights"]
        for i in range(args.steps + 2):
            if i == 2:
                timer = Timer().__enter__()
            loss, _ = phase1_loss(net, x, y, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
        timer.__exit__()
        rows.append({"hidden": hidden, "parameters": sum(p.numel() for p in net.parameters()),
                     "s_per_step": timer.seconds / args.steps, "images_per_s": args.batch * args.steps / timer.seconds})
    print(table(rows, ["hidden", "parameters", "s_per_step", "images_per_s"]))
    print("wrote", write("train_throughput", {"batch": args.batch, "rows": rows}))


if __name__ == "__main__":
    main()
