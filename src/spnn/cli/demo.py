"""`spnn demo`: the offline tour on the shipped 32x32 models; PNG grids and printed figures."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from spnn.cli.args import check_output_dir, existing_path, int_in, judge, judge_help, output_dir, positive_int
from spnn.cli.device import device_of, device_option

# the paper's single-attribute rows and its multi-attribute sets mapped to the built-in attributes; the demo shows
# them whether or not they work with the loaded models (the benchmark's editing table has the rates)
EDITS = ["Eyeglasses", "Smiling", "Bangs", "Gray_Hair"]
MULTI = [("Pale_Skin", "Black_Hair"), ("Blond_Hair", "Smiling"), ("Eyeglasses", "Smiling", "Mustache")]
SEED_OFFSETS = (0, 1000, 2000)  # reconstruction from semantics: three seeds per face


def run_demo(out: Path, *, spnn=None, prior=None, evaluator=None, steps: int = 100, n: int = 8,
             data_n: int = 30000, data_version: int = 1, progress: bool = False,
             device: str | torch.device = "cpu") -> dict:
    from spnn.data.avatars import AvatarFaces
    from spnn.evaluation.metrics import attribute_agreement, nearest_is_own, psnr, rmse
    from spnn.io import write_json
    from spnn.models import load_evaluator, load_prior, load_spnn
    from spnn.operators import AveragePool, SPNNOperator
    from spnn.tasks import edit, generate, reconstruct, restore
    from spnn.viz import image_grid

    t0 = time.time()
    torch.manual_seed(0)
    net = load_spnn(spnn, device)
    pr = load_prior(prior, device)
    ev = load_evaluator(evaluator, device)
    op = SPNNOperator(net, mode="learned")
    # reconstruction from semantics takes the target latents at the labels the logits stand for: samples whose
    # attributes match keep their own latents, so they are other faces rather than the original again
    rec_op = SPNNOperator(net, mode="learned", latents_from="labels")
    names = net.attribute_names
    # only the faces used are rendered (the full cache is built when training asks for it)
    faces = AvatarFaces.head("test", max(16 * n, 64), size=pr.image_shape[1], n=data_n, version=data_version)
    x = faces.tensors(limit=n)[0].to(device)
    seeds = list(range(n))
    summary: dict = {}

    pool = faces.tensors(limit=max(16 * n, 64))[0].to(device)

    # 1. reconstruction from semantics, three seeds per face: other faces with the original's attributes, or the
    # original again (identified: its nearest face among the demo's pool is the original itself); the slack and time
    # travel the SPNN stores for about this many steps (reconstruct's "auto")
    recs = [reconstruct(pr, rec_op, x, steps=steps, seeds=[o + s for s in seeds], progress=progress)
            for o in SEED_OFFSETS]
    images = torch.cat([r.images for r in recs])
    targets = torch.cat([r.targets for r in recs])
    agree = attribute_agreement(ev.predict(images), targets)
    own = sum(nearest_is_own(r.images, pool) for r in recs) / len(recs)  # x is pool[:n]
    summary["reconstruction"] = {
        "latents_from": rec_op.latents_from, "slack": recs[0].info["slack"],
        "travel": None if recs[0].info["travel"] is None else list(recs[0].info["travel"]),
        "evaluator_agreement": agree["mean"], "all_correct": agree["all_correct"],
        "consistency_max_abs": float((net(images) - targets).abs().max().detach()),
        "nearest_is_own": float(own), "nearest_is_own_pool": len(pool),
        "rmse_to_original": float(rmse(images, x.repeat(len(recs), 1, 1, 1)).mean()),
        "rmse_between_seeds": float(rmse(recs[0].images, recs[1].images).mean()),
        "rmse_between_originals": float(rmse(x, x.roll(1, 0)).mean()) if n > 1 else float("nan")}
    image_grid([x, *[r.images for r in recs]], out / "reconstruction.png", scale=4,
               row_labels=["original"] + [f"seed +{o}" for o in SEED_OFFSETS])

    # 2. single-attribute edits of real (held-out) faces that do not have the attribute yet
    before = ev.predict(pool) > 0
    rows, labels, edits = [], [], {}
    for name in EDITS:
        if name not in names:
            continue
        i = names.index(name)
        pick = (~before[:, i]).nonzero().flatten()[:n]
        if len(pick) == 0:
            continue
        res = edit(pr, op, pool[pick], {name: 1.0}, steps=steps, seeds=pick.tolist(), progress=progress)
        pred = ev.predict(res.images) > 0
        others = [j for j in range(len(names)) if j != i]
        edits[name] = {"images": len(pick), "success": float(pred[:, i].float().mean()),
                       "others_kept": float((pred[:, others] == before[pick][:, others]).float().mean())}
        short = name.replace("Wearing_", "").replace("_", " ")
        rows += [pool[pick], res.images.clamp(-1, 1)]
        labels += ["original", f"+{short}"]
    summary["edits"] = edits
    image_grid(rows, out / "edits.png", scale=4, row_labels=labels)

    # 3. multi-attribute generation, the paper's sets
    generation, rows, labels = [], [], []
    for combo in MULTI:
        if not set(combo) <= set(names):
            continue
        gen = generate(pr, op, dict.fromkeys(combo, 1.0), n, steps=steps, seeds=[100 + s for s in seeds],
                       progress=progress)
        ok = (ev.predict(gen.images)[:, [names.index(a) for a in combo]] > 0).all(1).float().mean()  # the named ones
        with torch.no_grad():
            violation = gen.violation(net(gen.images))
        generation.append({"attributes": list(combo), "implied": gen.info["implied"], "all_set_rate": float(ok),
                           "bounds_met_rate": float((violation <= 1e-4).float().mean())})
        rows.append(gen.images.clamp(-1, 1))
        labels.append("+".join(k.replace("_", " ") for k in combo))
    summary["generation"] = generation
    image_grid(rows, out / "generation.png", scale=4, row_labels=labels)

    # 4. linear restoration (4x super-resolution, DDNM)
    sr = AveragePool(pr.image_shape, 4).to(device)
    res = restore(pr, sr, x, steps=steps, seeds=seeds, progress=progress)
    summary["restoration_sr4"] = {"psnr_db": float(psnr(res.images.clamp(-1, 1), x).mean()),
                                  "psnr_upsampled_db": float(psnr(sr.pinv(res.targets), x).mean()),
                                  "consistency_max_abs": float((sr.A(res.images) - res.targets).abs().max())}
    image_grid([x, sr.pinv(res.targets), res.images], out / "restoration-sr4.png", scale=4,
               row_labels=["original", "A+ y", "DDNM"])
    summary["seconds"] = round(time.time() - t0, 1)
    summary["device"] = str(device)
    summary["steps"], summary["data_version"] = steps, data_version
    write_json(out / "summary.json", summary)
    return summary


def cmd_demo(args: argparse.Namespace) -> int:
    out = check_output_dir(args.out)
    device = device_of(args)
    s = run_demo(out, spnn=args.spnn, prior=args.prior, evaluator=args.evaluator, steps=args.steps, n=args.n,
                 data_version=args.data_version, progress=not args.quiet, device=device)
    r, sr = s["reconstruction"], s["restoration_sr4"]
    print(f"reconstruction from semantics ({args.n} held-out faces x {len(SEED_OFFSETS)} seeds): "
          f"evaluator agreement {r['evaluator_agreement']:.3f}, all attributes right {r['all_correct']:.2f}, "
          f"max |g(x) - y| {r['consistency_max_abs']:.1e}")
    print(f"  is it another face? nearest of {r['nearest_is_own_pool']} faces is the original itself: "
          f"{r['nearest_is_own']:.2f}; RMSE to the original {r['rmse_to_original']:.3f}, between seeds "
          f"{r['rmse_between_seeds']:.3f}, between two real faces {r['rmse_between_originals']:.3f}")
    for name, e in s["edits"].items():
        print(f"edit +{name}: success {e['success']:.2f}, other attributes kept {e['others_kept']:.3f}")
    for g in s["generation"]:
        held = " (the others held back by the range safeguard)" if g["bounds_met_rate"] < 1 else ""
        print(f"generation {'+'.join(g['attributes'])}: all set (evaluator) {g['all_set_rate']:.2f}, "
              f"SPNN bounds met exactly {g['bounds_met_rate']:.2f}{held}")
    print(f"4x super-resolution: PSNR {sr['psnr_db']:.2f} dB (upsampled A+ y: {sr['psnr_upsampled_db']:.2f} dB),"
          f" max |A x - y| {sr['consistency_max_abs']:.1e}")
    print(f"wrote {out}/*.png and summary.json in {s['seconds']} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo on the shipped 32x32 avatar models")
    p.add_argument("--out", type=output_dir, default="spnn-demo")
    p.add_argument("--steps", type=int_in(1, 1000), default=100)
    p.add_argument("--n", type=positive_int, default=8)
    p.add_argument("--spnn", type=existing_path)
    p.add_argument("--prior", type=existing_path)
    p.add_argument("--evaluator", type=judge, help=judge_help())
    p.add_argument("--data-version", type=int, choices=[1, 2], default=1,
                   help="avatar dataset version of the test faces (2: models trained on avatars:v2)")
    p.add_argument("--quiet", action="store_true")
    device_option(p)
    p.set_defaults(func=cmd_demo)
