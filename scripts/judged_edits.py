"""Edits of training faces by an SPNN with its stored settings, read by judges: the input of a judged file.

    python scripts/judged_edits.py SPNN OUT [--attribute Bangs] [--n 1600] [--skip 0] [--shard 0 --shards 2]

Takes the training faces without the attribute in a fixed random order (seed 33), skips ``--skip``, keeps ``--n``,
and of those every ``--shards``-th from ``--shard`` (one process per core), edits them to have the attribute
(20 steps, seeds 100000 + face index) and writes the edited images (uint8), the faces' indices and labels, and the
readings of the SPNN and of the judges r3 and spatial. `merge` (``--merge OUT IN [IN ...]``) joins such files into
a `spnn.data.judged` file, the attribute labelled where r3 and spatial agree (scripts/judged-bangs.sh).
"""

import argparse

import numpy as np
import torch

from spnn.data.avatars import AvatarFaces
from spnn.data.common import attribute_index, to_tensor_images
from spnn.data.judged import agreed_labels, save_judged
from spnn.io import load_tensors, save_tensors
from spnn.models import load_evaluator, load_prior, load_spnn
from spnn.operators import SPNNOperator
from spnn.tasks import edit
from spnn.viz import to_uint8

JUDGES = ("r3", "spatial")


def edits(args) -> None:
    net, prior = load_spnn(args.spnn), load_prior()
    judges = {name: load_evaluator(name) for name in JUDGES}
    i = attribute_index(net.attribute_names, args.attribute)
    x, labels = AvatarFaces(n=30000, split="train").tensors()
    pool = (labels[:, i] < 0.5).nonzero().flatten().numpy()
    mine = np.random.default_rng(33).permutation(pool)[args.skip:args.skip + args.n][args.shard::args.shards]
    op = SPNNOperator(net)
    images = []
    for k in range(0, len(mine), 50):
        sel = mine[k:k + 50]
        res = edit(prior, op, x[sel], {args.attribute: 1.0}, steps=20, seeds=(100000 + sel).tolist(), progress=False)
        images.append(res.images)
        print(f"{k + len(sel)} of {len(mine)}", flush=True)
    u8 = to_uint8(torch.cat(images))  # (N, H, W, 3), as the datasets hold images
    seen = to_tensor_images(u8)  # read what is stored
    with torch.no_grad():
        readings = {"spnn": net(seen)} | {name: judge.predict(seen) for name, judge in judges.items()}
    index = torch.as_tensor(mine)
    save_tensors(args.out, {"images": torch.from_numpy(u8), "index": index, "labels": labels[index], **readings},
                 {"attribute": args.attribute, "attribute_names": net.attribute_names})


def merge(out: str, parts: list[str]) -> None:
    loaded = [load_tensors(p) for p in parts]
    meta = loaded[0][1]
    t = {k: torch.cat([tensors[k] for tensors, _ in loaded]) for k in loaded[0][0]}
    names = meta["attribute_names"]
    labels, mask = agreed_labels([t[name] for name in JUDGES], [names.index(meta["attribute"])])
    save_judged(out, t["images"].numpy(), labels, mask, names,
                f"{meta['attribute']}-on edits of training faces, labelled where {' and '.join(JUDGES)} agree")
    print(f"{out}: {len(labels)} images, {meta['attribute']} agreed on {mask.sum().item():.0f}, "
          f"read off by both on {((labels == 0) & (mask > 0)).sum().item():.0f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("spnn")
    ap.add_argument("out")
    ap.add_argument("--attribute", default="Bangs")
    ap.add_argument("--n", type=int, default=1600)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--merge", nargs="+", metavar="IN", help="join these edit files into OUT (labels, mask)")
    args = ap.parse_args()
    if args.merge:
        merge(args.out, args.merge)
    else:
        edits(args)
