"""Quality on held-out faces, same prior and steps for every method.

- reconstruction from semantics (y = g(x)): agreement of the independent evaluator on x_hat with its
  verdict on the original x (mean over attributes, all-attributes-right rate), and with sign(y);
  consistency mean |g(x_hat) - y|; for NLBP (learned and natural pseudo-inverse), DPS, classifier guidance,
  unconditional sampling;
- editing (real faces, one attribute flipped at a time): success and preservation of the other attributes,
  the pixel RMSE from the original (how much of the picture changed, in [-1, 1] units), the rate at which the SPNN's logit meets the edit bound, the share of faces within the SPNN's reach (one
  NLBP step from the face stays within |x| <= 2; `spnn.tasks.edit_reach`), the share returned unedited (out of
  reach, with the default safeguard), and a "(no edit)" row: the same start and
  sampler without guidance (how much of each face the sampler alone keeps);
- multi-attribute generation: rate of samples with every requested attribute.

    python benchmarks/quality.py [--n 200] [--steps 50] [--methods ...] [--edits ...] [--multi A B C ...]

Methods: nlbp-learned, nlbp-natural, dps, cg, none; a suffix +skip applies the paper's skip rule (0.11),
+travel adds RePaint time travel (5, 2), +labels takes the learned latents at the labels the logits stand
for (`SPNNOperator(latents_from="labels")`); nlbp-learned@B moves the latents by B times the learned step
(`SPNNOperator(latent_step=B)`, 0 <= B <= 1). ``--latents-from`` chooses the same for the edits and the
multi-attribute generation.
"""

import argparse

import torch
from common import (
    REFERENCE,
    Timer,
    edit_table,
    ideal_edits,
    identity_measures,
    judge_name,
    largest_fidelity_gaps,
    least_agreed,
    multi_table,
    real_reading,
    same_label_reference,
    table,
    write,
)

from spnn.calibration import calibration_of
from spnn.cli.args import float_in, judge_help, parsed_by
from spnn.data.avatars import AvatarFaces
from spnn.diffusion.sampler import sample
from spnn.evaluation.metrics import attribute_agreement, contrast_ratio, nearest_same_label_rmse
from spnn.models import load_evaluator, load_prior, load_spnn
from spnn.operators import SPNNOperator
from spnn.tasks import (
    BOUND_TOL,
    EDIT_ETA,
    EDIT_MAX_MOVE,
    EDIT_T_START,
    bound_levels,
    edit,
    generate,
    parse_keep,
    parse_max_abs,
    parse_range_rule,
    parse_region,
    parse_travel,
    reconstruct,
)

# the paper's single-attribute rows first (Eyeglasses, Smiling, Bangs, Gray_Hair), then the hair and head attributes
EDITS = ["Eyeglasses", "Smiling", "Bangs", "Gray_Hair", "Black_Hair", "Blond_Hair", "Bald", "Wearing_Hat"]
# the paper's multi-attribute sets mapped to the built-in attributes
MULTI = [["Pale_Skin", "Black_Hair"], ["Blond_Hair", "Smiling"], ["Eyeglasses", "Smiling", "Mustache"]]
# multi-attribute generation has no faces, so the split picks its seeds: the test tables' 10000.., and for validation
# (selection) runs 40000.., the selection seeds of benchmarks/generation.py (before 2026-12-07, session 30, validation
# runs drew 10000.. too: their set rows are the test samples)
GEN_SEEDS = {"test": 10_000, "val": 40_000}
EDIT_COLUMNS = ["attribute", "images", "success", "success_real", "success_ideal", "success_on", "success_off", "others_kept",
                "others_kept_ideal", "others_kept_free", "implied_set", "rmse_to_original", "bound_met", "within_reach",
                "unedited"]
DIRECTIONS = {1.0: "success_on", 0.0: "success_off"}  # success among the faces turned on / off


def batched(fn, n, batch):
    outs = [fn(slice(i, min(i + batch, n))) for i in range(0, n, batch)]
    return torch.cat(outs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-edit", type=int, default=100, help="faces per edit and samples per set (0: skip both)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--methods", nargs="*", default=["nlbp-learned", "nlbp-learned+skip", "nlbp-learned+travel",
                                                            "nlbp-natural", "dps", "cg", "none"])
    ap.add_argument("--edits", nargs="+", default=EDITS, help="attributes to flip")
    ap.add_argument("--multi", nargs="+", action="append", default=None,
                    help="attributes set together in multi-attribute generation (repeat for several sets)")
    ap.add_argument("--no-multi", dest="multi", action="store_const", const=[],
                    help="skip multi-attribute generation (edits only)")
    ap.add_argument("--t-start", type=int, default=None,
                    help=f"editing noise level (default: the SPNN's stored start per attribute, else {EDIT_T_START})")
    ap.add_argument("--eta", type=float, default=EDIT_ETA, help="editing DDIM eta")
    ap.add_argument("--logit", type=float, help="edit bound: logit >= +LOGIT / <= -LOGIT (default: the SPNN's calibration)")
    ap.add_argument("--recon-max-abs", type=float_in(0, lo_open=True), default=None,
                    help="range safeguard for reconstruction (BackProjection max_abs; default: none)")
    ap.add_argument("--recon-slack", type=float_in(0), default=None,
                    help="reconstruction: aim NLBP at the box y +- SLACK before the last step, at y itself at the "
                         "end (BackProjection slack; default: y at every step)")
    ap.add_argument("--skip-tol", type=float_in(0, lo_open=True), default=0.11,
                    help="reconstruction methods with +skip: stop projecting a sample once mean |sigmoid(g(x0)) - "
                         "sigmoid(y)| <= SKIP_TOL (the paper's 0.11; the last step is projected either way)")
    ap.add_argument("--recon-travel", type=int, nargs="+", metavar="N", default=[5, 2],
                    help="reconstruction methods with +travel: time travel L R [T_MIN [T_MAX]] (default 5 2)")
    ap.add_argument("--max-abs", type=parsed_by(parse_max_abs), default="auto",
                    help="editing range safeguard: auto (the default of `spnn edit`), a number, or 0 (off)")
    ap.add_argument("--range-rule", default="auto", choices=["auto", "halve", "clip"],
                    help="edits and multi-attribute generation: the range safeguard halves a step that leaves the "
                         "range or clips it (BackProjection range_rule; auto: the SPNN's calibration)")
    ap.add_argument("--max-move", type=float, default=EDIT_MAX_MOVE or 0.0, help="editing movement budget (0: off)")
    ap.add_argument("--edit-lam", type=float_in(0, 1, lo_open=True), default=None,
                    help="a constant editing step lam (default: tasks.gentle_lam, 0.5 above t = 200 and 1 below)")
    ap.add_argument("--no-invert", dest="invert", action="store_const", const=False, default=None,
                    help="edit from re-noised images (SDEdit start) instead of their DDIM inversion (default: the "
                    "SPNN's stored start per attribute, else the inversion)")
    ap.add_argument("--identity", action="store_true",
                    help="also measure whether reconstructions return their original: nearest-original rates (pixels, "
                         "evaluator features), RMSE to the original and to the nearest same-attribute real face, "
                         "RMSE between two seeds (costs a second reconstruction per method)")
    ap.add_argument("--latents-from", default="logits", choices=["logits", "labels"],
                    help="edits and multi-attribute generation: the learned latents from the logits (the paper) or "
                         "from the labels they stand for (SPNNOperator latents_from)")
    ap.add_argument("--edit-mode", default="learned", choices=["learned", "natural"],
                    help="edits and multi-attribute generation: the SPNN's pseudo-inverse (SPNNOperator mode)")
    ap.add_argument("--edit-latent-step", type=float_in(0, 1), default=1.0, metavar="B",
                    help="edits and multi-attribute generation, learned mode: move the latents by B times the "
                         "learned step (SPNNOperator latent_step)")
    ap.add_argument("--edit-travel", type=int, nargs="+", metavar="N", default=None,
                    help="RePaint time travel in the edits and the multi-attribute generation: LENGTH REPEATS "
                         "[T_MIN [T_MAX]] (`spnn.diffusion.schedule.time_travel`)")
    ap.add_argument("--gen-travel", type=parsed_by(parse_travel), default="auto",
                    help="multi-attribute generation: time travel L,R[,T_MIN,T_MAX] (auto: the SPNN's stored one; off)")
    ap.add_argument("--edit-region", type=parsed_by(parse_region), default="auto",
                    help="confine each edit to where the SPNN's own full step moves pixels by at least this fraction "
                    "of its largest move (spnn.tasks.edit_region; auto: the SPNN's stored threshold; off: none)")
    ap.add_argument("--edit-keep", type=parsed_by(parse_keep), default="auto", metavar="MARGIN",
                    help="edits also keep every attribute neither named nor implied on the original's side, at most "
                         "MARGIN deep (spnn.operators.keep_bounds; auto: the SPNN's stored margin per attribute; off)")
    ap.add_argument("--no-implied", dest="implied", action="store_false",
                    help="edits and generation set only the named attributes, not what they imply (spnn.implications)")
    ap.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                    help="the prior UNet's precision (spnn.diffusion.prior.resolve_precision)")
    ap.add_argument("--name", default="quality", help="results file benchmarks/results/NAME.json")
    ap.add_argument("--split", default="test", choices=["val", "test"],
                    help="faces to use (tune knobs on val, report on test)")
    ap.add_argument("--data-n", type=int, default=30000, help="size of the built-in dataset the split comes from")
    ap.add_argument("--data-version", type=int, default=1, choices=[1, 2], help="built-in dataset version")
    ap.add_argument("--spnn")
    ap.add_argument("--prior")
    ap.add_argument("--evaluator", help=judge_help("judge"))
    ap.add_argument("--device", default="cpu", help="cpu (the README's figures) or cuda")
    args = ap.parse_args()
    dev = args.device
    net, prior, ev = load_spnn(args.spnn, dev), load_prior(args.prior, dev), load_evaluator(args.evaluator, dev)
    names = net.attribute_names
    faces = AvatarFaces(n=args.data_n, split=args.split, version=args.data_version)
    x, x_labels = (t.to(dev) for t in faces.tensors(limit=args.n))
    judged = ev.predict(x)
    if args.identity:  # other people with the same attributes: the training faces
        pool, pool_labels = AvatarFaces(n=args.data_n, split="train", version=args.data_version).tensors()
        same_label = nearest_same_label_rmse(x.cpu(), x_labels.cpu(), pool, pool_labels)
    rows, per_attribute, fidelity, identity_rows = [], {}, [], []
    for method in args.methods:
        # nlbp-learned+skip: the paper's skip rule; +travel: time travel; +labels: latents from the labels
        base, *extras = method.split("+")
        if set(extras) - {"skip", "travel", "labels"}:
            raise SystemExit(f"unknown suffix in {method!r}; use +skip, +travel or +labels")
        name, _, mode = base.partition("-")
        mode, _, step = mode.partition("@")  # nlbp-learned@0.5: latents moved by half the learned step
        op = SPNNOperator(net, mode=mode or "learned", latent_step=float(step or 1.0),
                          latents_from="labels" if "labels" in extras else "logits")
        # what each run uses is named: no stored recipe (reconstruct's "auto") unless asked for
        options = {"slack": None, "travel": None} | ({"skip_tol": args.skip_tol} if "skip" in extras else {})
        if "travel" in extras:
            options["travel"] = tuple(args.recon_travel)
        if args.recon_max_abs and name == "nlbp":
            options["max_abs"] = args.recon_max_abs
        if args.recon_slack is not None and name == "nlbp":
            options["slack"] = args.recon_slack
        with Timer() as t:
            xh = batched(lambda s, op=op, name=name, options=options: reconstruct(
                prior, op, x[s], method=name, steps=args.steps, seeds=range(s.start, s.stop), progress=False,
                precision=args.precision, **options).images, args.n, args.batch)
        with torch.no_grad():
            y, yh = net(x), net(xh)
        judged_h = ev.predict(xh)
        a = attribute_agreement(judged_h, judged)
        a_y = attribute_agreement(judged_h, y)
        per_attribute[method] = dict(zip(names, ((judged_h > 0) == (judged > 0)).float().mean(0).tolist()))
        if name == "none":  # unconditional samples: does the prior make each attribute as often as real faces?
            fidelity = [{"attribute": n, "real_evaluator": float(r), "samples_evaluator": float(s_),
                         "samples_spnn": float(g)} for n, r, s_, g in
                        zip(names, (judged > 0).float().mean(0), (judged_h > 0).float().mean(0),
                            (yh > 0).float().mean(0))]
        rows.append({"method": method, "agreement": a["mean"], "all_correct": a["all_correct"],
                     "agreement_vs_sign_y": a_y["mean"], "consistency_mae": float((yh - y).abs().mean()),
                     "consistency_max": float((yh - y).abs().max()), "contrast_ratio": contrast_ratio(xh, x),
                     "s_per_image": t.seconds / args.n})
        if args.identity:  # does the reconstruction return the original face, or another with its attributes?
            xh2 = batched(lambda s, op=op, name=name, options=options: reconstruct(
                prior, op, x[s], method=name, steps=args.steps, seeds=range(1000 + s.start, 1000 + s.stop),
                progress=False, precision=args.precision, **options).images, args.n, args.batch)
            identity_rows.append({"method": method, "agreement": a["mean"],
                                  **identity_measures(xh, xh2, x, ev, same_label)})
            print(identity_rows[-1])
        print(rows[-1])
    if args.identity:
        identity_rows.append(same_label_reference(x, x_labels, judged, pool, pool_labels, same_label, ev))
    if rows:
        print("reconstruction from semantics:")
        print(table(rows, ["method", "agreement", "all_correct", "agreement_vs_sign_y", "consistency_mae",
                           "consistency_max", "contrast_ratio", "s_per_image"]))

        if "nlbp-learned" in per_attribute:
            print("nlbp-learned, least agreed attributes:", least_agreed(per_attribute["nlbp-learned"]))
    if identity_rows:
        print(f"identity (chance of own_nearest: 1/{args.n}; rmse_same_attributes_real: the nearest other training face "
              f"with the same 22 labels; {REFERENCE}: a random one, the same measures for another person with the "
              "original's attributes):")
        print(table(identity_rows, list(identity_rows[0])))
    if fidelity:
        print("positive rate on real faces vs unconditional samples (evaluator; SPNN on samples):")
        print(table(largest_fidelity_gaps(fidelity, 8), ["attribute", "real_evaluator", "samples_evaluator",
                                                          "samples_spnn"]))

    op = SPNNOperator(net, mode=args.edit_mode, latent_step=args.edit_latent_step, latents_from=args.latents_from)
    logit, levels = bound_levels(calibration_of(op), args.logit)  # --logit for all, else the calibration's
    # the default start, and the attributes whose edits take the SPNN's stored one instead (unless given)
    t_start = EDIT_T_START if args.t_start is None else args.t_start
    invert = True if args.invert is None else args.invert
    starts = ({a: v for a, v in calibration_of(op).starts.items() if a in args.edits}
              if args.t_start is None and args.invert is None else {})
    edit_rows, multi_rows = [], []
    if args.n_edit > 0:  # --n-edit 0: reconstruction only
        xe = x[:args.n_edit]
        before = judged[:args.n_edit] > 0
        # the judge on every real face of the split: its rate on those with the target is what real faces score
        split_x, split_labels = faces.tensors()
        split_judged = torch.cat([ev.predict(b.to(dev)).cpu() for b in split_x.split(500)])
        for attr in args.edits:
            i = names.index(attr)
            results, by_direction = [], {}
            for value in (1.0, 0.0):
                sel = (before[:, i] == (value == 0.0)).nonzero().flatten()  # flip the attribute
                if len(sel) == 0:
                    continue
                res = edit(prior, op, xe[sel], {attr: value}, steps=args.steps, seeds=sel.tolist(), t_start=args.t_start,
                           logit=args.logit, eta=args.eta, invert=args.invert, max_abs=args.max_abs,
                           max_move=args.max_move or None, precision=args.precision, progress=False,
                           implied=args.implied, travel=args.edit_travel, region=args.edit_region, keep=args.edit_keep,
                           range_rule=args.range_rule,
                           **({"lam": args.edit_lam} if args.edit_lam is not None else {}))
                pred = ev.predict(res.images) > 0
                # what the judge reads on the same faces edited perfectly (the generator's smallest change)
                ideal = ev.predict(ideal_edits(faces, sel, attr, value > 0).to(dev)) > 0
                implied = [names.index(k) for k in res.info["implied"]]
                free = [j for j in range(len(names)) if j != i and j not in implied]
                wanted = torch.tensor([res.info["implied"][names[j]] > 0 for j in implied], dtype=torch.bool)
                with torch.no_grad():
                    met = res.violation(net(res.images)) <= BOUND_TOL
                others = [j for j in range(len(names)) if j != i]
                edited = res.info.get("edited", torch.ones_like(met))
                by_direction[DIRECTIONS[value]] = float((pred[:, i] == (value > 0)).float().mean())
                rmse = (res.images.clamp(-1, 1) - xe[sel]).flatten(1).pow(2).mean(1).sqrt()
                results.append((len(sel), {"success": (pred[:, i] == (value > 0)).float().mean(),
                                           "success_real": real_reading(split_judged, split_labels, [i], value > 0),
                                           "success_ideal": (ideal[:, i] == (value > 0)).float().mean(),
                                           "others_kept_ideal": (ideal[:, others] == before[sel][:, others]).float().mean(),
                                           "rmse_to_original": rmse.mean(),
                                           "others_kept": (pred[:, others] == before[sel][:, others]).float().mean(),
                                           "others_kept_free": (pred[:, free] == before[sel][:, free]).float().mean(),
                                           "implied_set": (pred[:, implied] == wanted).float().mean() if implied
                                           else None,
                                           "bound_met": met.float().mean(),
                                           "within_reach": (res.info["reach"] <= calibration_of(op).reach_limit).float().mean(),
                                           "unedited": (~edited).float().mean()}))
            n = sum(k for k, _ in results)  # both directions, weighted by their number of faces

            def mean_of(c, results=results):  # over the directions where c applies (implied_set: with implications)
                kept = [(k, float(m[c])) for k, m in results if m[c] is not None]
                return sum(k * v for k, v in kept) / sum(k for k, _ in kept) if kept else ""

            edit_rows.append({"attribute": attr, "images": n, **{c: by_direction.get(c, "") if c in DIRECTIONS.values()
                                                                 else mean_of(c) for c in EDIT_COLUMNS[2:]}})
        # baseline: the same start and sampler without guidance -- how much of a face the sampler alone keeps
        plain = sample(prior, len(xe), steps=args.steps, seeds=range(len(xe)), x_start=xe, t_start=t_start,
                       eta=args.eta, invert=invert, precision=args.precision, progress=False).images
        edit_rows.append({"attribute": "(no edit)", "images": len(xe), "success": "", "success_on": "", "success_off": "",
                          "others_kept": float(((ev.predict(plain) > 0) == before).float().mean()),
                          "others_kept_free": "", "implied_set": "",
                          "rmse_to_original": float((plain.clamp(-1, 1) - xe).flatten(1).pow(2).mean(1).sqrt().mean()), "bound_met": "", "within_reach": "", "unedited": ""})
        print(f"editing (flip one attribute of a real face; success_on / _off: among the faces turned on / off; bound_met: SPNN logit within {BOUND_TOL} of its bound; "
              f"within_reach: one NLBP step from the face stays within |x| <= {calibration_of(op).reach_limit:g}; unedited: returned "
              f"as given, out of reach):")
        print(edit_table(edit_rows))

        for combo in MULTI if args.multi is None else args.multi:
            gen = generate(prior, op, dict.fromkeys(combo, 1.0), args.n_edit, steps=args.steps,
                           seeds=range(GEN_SEEDS[args.split], GEN_SEEDS[args.split] + args.n_edit), logit=args.logit,
                           max_abs=args.max_abs,
                           max_move=args.max_move or None, precision=args.precision, progress=False,
                           implied=args.implied, travel=args.gen_travel, range_rule=args.range_rule,
                           **({"lam": args.edit_lam} if args.edit_lam is not None else {}))
            pred = ev.predict(gen.images)[:, [names.index(a) for a in combo]] > 0
            multi_rows.append({"attributes": " + ".join(combo), "n": args.n_edit, "all_set": float(pred.all(1).float().mean()),
                               "all_set_real": real_reading(split_judged, split_labels, [names.index(a) for a in combo], True),
                               "each_set": float(pred.float().mean())})
        if multi_rows:
            print("multi-attribute generation:")
            print(multi_table(multi_rows))
    models = {k: getattr(args, k) or "shipped" for k in ("spnn", "prior")} | {"evaluator": judge_name(args.evaluator)}
    settings = {"device": args.device, "split": args.split, "n": args.n, "n_edit": args.n_edit, "steps": args.steps,
                "data_version": args.data_version,
                "edit_t_start": t_start, "edit_eta": args.eta, "edit_logit": logit, "edit_levels": levels, "edit_implied_levels": calibration_of(op).implied_levels if args.logit is None else {}, "edit_max_abs": args.max_abs,
                "precision": args.precision, "recon_max_abs": args.recon_max_abs,
                "recon_slack": args.recon_slack, "recon_travel": args.recon_travel, "skip_tol": args.skip_tol,
                "gen_seed": GEN_SEEDS[args.split],
                "edit_max_move": args.max_move, "edit_lam": args.edit_lam, "edit_invert": invert, "edit_starts": starts, "implied": args.implied, "edit_travel": args.edit_travel, "edit_region": parse_region(args.edit_region, calibration_of(op)),
                "gen_travel": parse_travel(args.gen_travel, calibration_of(op)),
                "edit_latents_from": args.latents_from, "edit_mode": args.edit_mode, "range_rule": args.range_rule, "edit_range_rules": {a: parse_range_rule(args.range_rule, calibration_of(op), [a]) for a in args.edits}, "edit_latent_step": args.edit_latent_step, "edit_keep": args.edit_keep, "edit_keeps": {a: m for a, m in calibration_of(op).keeps.items() if a in args.edits} if args.edit_keep == "auto" else {},
                "edit_calibration": calibration_of(op).to_dict()}
    print("wrote", write(args.name, {**models, **settings, "reconstruction": rows,
                                     "reconstruction_per_attribute": per_attribute, "identity": identity_rows, "prior_fidelity": fidelity,
                                     "editing": edit_rows, "multi_attribute": multi_rows}))


if __name__ == "__main__":
    main()
