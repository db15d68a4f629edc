"""Are an SPNN's level sets perceptual? For faces without an attribute, raise that logit to the edit bound and
compare two images with exactly those logits:

- ``nlbp``: one learned-mode NLBP step, x' = G^-1(y', z_x + Z(y') - Z(y)) (what the sampler's projection does
  with lam = 1 and no prior);
- ``nearest``: the same point with its latents optimised (Adam) to bring the image inside [-1, 1] while staying
  near the face, min_z |relu(|x'| - 1)|^2 + mu |x' - x|^2: an in-range preimage close to the face.

For each: the median max |x'| (how far outside the image range), the RMS change from the face, and whether the
independent evaluator sees the attribute (success) and keeps the others. If ``nearest`` meets the logit inside
the range with a small change that the evaluator does not read as the attribute, the SPNN can be satisfied by
patterns that are not the attribute: NLBP then needs the prior to find a real one, and a range safeguard
that rejects out-of-range moves leaves the face unedited.

    python benchmarks/level_sets.py [--attributes Bald Blond_Hair ...] [--n 16] [--grid PNG]
"""

import argparse

import torch
from common import table, write

from spnn.calibration import calibration_of
from spnn.data.avatars import AvatarFaces
from spnn.models import load_evaluator, load_spnn

ATTRIBUTES = ["Eyeglasses", "Smiling", "Bald", "Wearing_Hat", "Pale_Skin", "Blond_Hair"]


def nearest_in_range(net, y, latents, x, iters: int, mu: float, lr: float = 0.05) -> torch.Tensor:
    """G^-1(y, latents + d) with d minimising the out-of-range excess plus mu |image - x|^2 (g(image) = y)."""
    delta = [torch.zeros_like(z, requires_grad=True) for z in latents]
    opt = torch.optim.Adam(delta, lr=lr)
    for _ in range(iters):
        image = net.inverse(y, [z + d for z, d in zip(latents, delta)])
        loss = ((image.abs() - 1).clamp_min(0).square() + mu * (image - x).square()).flatten(1).sum(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net.inverse(y, [z + d for z, d in zip(latents, delta)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attributes", nargs="+", default=ATTRIBUTES)
    ap.add_argument("--n", type=int, default=16, help="faces without the attribute, per attribute")
    ap.add_argument("--logit", type=float, help="edit bound (default: the SPNN's calibration)")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--mu", type=float, default=0.01)
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--data-n", type=int, default=30000, help="size of the built-in dataset the split comes from")
    ap.add_argument("--spnn")
    ap.add_argument("--grid", help="PNG: per attribute, rows face / NLBP step / nearest in-range (8 faces)")
    ap.add_argument("--name", default="level_sets", help="results file benchmarks/results/NAME.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    net, ev = load_spnn(args.spnn), load_evaluator()
    net.requires_grad_(False)
    args.logit = calibration_of(net).logit if args.logit is None else args.logit
    names = net.attribute_names
    faces = AvatarFaces(n=args.data_n, split=args.split).tensors(limit=400)[0]
    with torch.no_grad():
        judged = ev.predict(faces) > 0
    rows, grid_rows, grid_labels = [], [], []
    for attr in args.attributes:
        i = names.index(attr)
        x = faces[(~judged[:, i]).nonzero().flatten()[:args.n]]
        before = judged[(~judged[:, i]).nonzero().flatten()[:args.n]]
        with torch.no_grad():
            y, latents = net.complete(x)
            target = y.clone()
            target[:, i] = target[:, i].clamp_min(args.logit)
            step = [z + a - b for z, a, b in zip(latents, net.learned_latents(target), net.learned_latents(y))]
            nlbp = net.inverse(target, step)
        nearest = nearest_in_range(net, target, step, x, args.iters, args.mu)
        others = [j for j in range(len(names)) if j != i]
        for kind, image in (("nlbp", nlbp), ("nearest", nearest)):
            with torch.no_grad():
                pred = ev.predict(image.clamp(-1, 1)) > 0
                logit = net(image)[:, i]
            rows.append({"attribute": attr, "image": kind, "faces": len(x),
                         "median_max_abs": float(image.flatten(1).abs().amax(1).median()),
                         "rms_change": float((image - x).square().mean().sqrt()),
                         "logit": float(logit.mean()), "success": float(pred[:, i].float().mean()),
                         "others_kept": float((pred[:, others] == before[:, others]).float().mean())})
        grid_rows += [x[:8], nlbp[:8].clamp(-1, 1), nearest[:8].clamp(-1, 1)]
        grid_labels += [attr[:10], "NLBP step", "nearest"]
    print(f"logit >= {args.logit} on faces without the attribute ({args.split} split); the evaluator judges the "
          "images clamped to [-1, 1]:")
    print(table(rows, ["attribute", "image", "faces", "median_max_abs", "rms_change", "logit", "success",
                       "others_kept"]))
    if args.grid:
        from spnn.viz import image_grid

        image_grid(grid_rows, args.grid, row_labels=grid_labels)
        print("wrote", args.grid)
    print("wrote", write(args.name, {"spnn": args.spnn or "shipped", "split": args.split, "logit": args.logit,
                                     "iters": args.iters, "mu": args.mu, "rows": rows}))


if __name__ == "__main__":
    main()
