"""Penrose residuals of the shipped SPNN in float32 and float64 on held-out faces.

    python benchmarks/identities.py [--spnn PATH] [--n 256]
"""

import argparse

from common import table, write

from spnn.data.avatars import AvatarFaces
from spnn.diagnostics import penrose_report
from spnn.models import load_spnn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spnn")
    ap.add_argument("--n", type=int, default=256)
    args = ap.parse_args()
    net = load_spnn(args.spnn)
    x = AvatarFaces(split="test").tensors(limit=args.n)[0]
    reports = {"float32": penrose_report(net.float(), x), "float64": penrose_report(net.double(), x.double())}
    rows = [{"identity": k, "float32": reports["float32"][k], "float64": reports["float64"][k]}
            for k in reports["float32"]]
    print(table(rows, ["identity", "float32", "float64"]))
    print("wrote", write("identities", {"n": args.n, "reports": reports}))


if __name__ == "__main__":
    main()
