"""`spnn reconstruct`, `spnn generate`, `spnn edit`, `spnn restore`: zero-shot tasks with a prior."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from spnn.cli.args import (
    check_output_dir,
    existing_path,
    float_in,
    int_in,
    judge_help,
    judge_or_none,
    nonnegative_int,
    output_dir,
    parsed_by,
    positive_float,
    positive_int,
    unit_float,
)
from spnn.cli.device import device_of, device_option
from spnn.diffusion.presets import PRESETS
from spnn.errors import ConfigError, DataError
from spnn.io import write_json
from spnn.tasks import (
    BOUND_TOL,
    EDIT_ETA,
    EDIT_MAX_MOVE,
    EDIT_T_START,
    METHODS,
    SOLVERS,
    parse_keep,
    parse_max_abs,
    parse_range_rule,
    parse_region,
    parse_slack,
    parse_travel,
)


def _parse_set(items: list[str]) -> dict[str, float]:
    """``NAME=1`` / ``NAME=0`` items of every --set, merged; a name given twice with different values is refused."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--set takes NAME=VALUE (e.g. Eyeglasses=1), got {item!r}; put image paths before "
                              "--set (or end its list with --)")
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if v not in (0.0, 1.0):
            raise ConfigError(f"--set {item!r}: the value must be 1 (attribute on) or 0 (off)")
        if out.get(name, v) != v:
            raise ConfigError(f"--set {name} is given as both 0 and 1; keep one")
        out[name] = v
    return out


def _load_images(paths: list[str], shape: tuple[int, int, int]) -> torch.Tensor:
    from spnn.data.common import to_tensor_images
    from spnn.data.real import IMAGE_SUFFIXES, load_image

    files = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"{p}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif not p.exists():
            raise DataError(f"{p}: no such image file or folder; check the path")
        else:
            files.append(p)
    import numpy as np

    return to_tensor_images(np.stack([load_image(f, shape[1], min_side=max(1, shape[1] // 2)) for f in files]))


def _inputs(args, shape) -> torch.Tensor:
    if args.images:
        return _load_images(args.images, shape)
    from spnn.data.avatars import AvatarFaces

    return AvatarFaces.head("test", args.n, size=shape[1], n=args.data_n).tensors()[0]


def _models(args):
    from spnn.models import load_evaluator, load_prior, load_spnn
    from spnn.operators import SPNNOperator

    check_output_dir(args.out)
    device = device_of(args)
    op = None
    if getattr(args, "spnn", "unused") != "unused":
        if args.pinv == "natural" and args.latent_step != 1.0:
            raise ConfigError("--latent-step scales the learned pseudo-inverse's latent move; --pinv natural keeps "
                              "the latents as they are (latent step 0); drop one of them")
        if args.latents_from == "labels" and args.pinv == "natural":
            raise ConfigError("--latents-from labels chooses the learned pseudo-inverse's target latents; --pinv "
                              "natural keeps the latents as they are; drop one of them")
        if args.latents_from == "labels" and args.preset == "paper":
            raise ConfigError("--preset paper is the authors' update, with latents from the logits; use --preset "
                              "spnn with --latents-from labels")
        op = SPNNOperator(load_spnn(args.spnn, device), mode=args.pinv, latent_step=args.latent_step,
                          latents_from=args.latents_from)
    # a DDPM/DDIM-repository checkpoint does not record its image size: take the SPNN's
    prior = load_prior(args.prior, device, image_size=op.input_shape[1] if op is not None else None)
    if op is not None:
        from spnn.tasks import check_pair

        check_pair(prior, op)
    evaluator = None
    if args.evaluator != "none":
        evaluator = load_evaluator(args.evaluator, device)
    return prior, op, evaluator


def _report(result, op, evaluator, out: Path, name: str, extra: dict) -> dict:
    from spnn.evaluation.metrics import attribute_agreement

    report = dict(extra)
    with torch.no_grad():
        if result.targets is not None and op is not None:
            violation = result.violation(op.A(result.images))
            key = "constraint_violation_max" if result.bounds is not None else "consistency_max_abs"
            report[key] = float(violation.max())
            if result.bounds is not None:
                met = violation <= BOUND_TOL
                report["bounds_met"] = f"{int(met.sum())}/{len(violation)}"
                edited = result.info.get("edited", torch.ones_like(met))
                short = int((~met & edited.to(met.device)).sum())  # edited, yet short of the bounds
                if short:
                    print(f"warning: the SPNN's bounds are not met on {short} of the {int(edited.sum())} edited "
                          f"images (largest violation {float(violation.max()):.3g} logits): the network cannot "
                          "realise this change inside the image range, and the range safeguard (--max-abs) "
                          "or the movement budget (--max-move, if set) left those images close to where they "
                          "were. Try a higher --t-start, a lower --logit, a larger --max-move, or --max-abs 0 "
                          "(exact bounds; images may leave the range).", file=sys.stderr)
        if "reach" in result.info:  # edits: how far outside the range one full NLBP step from each image goes
            from spnn.calibration import calibration_of

            calib = calibration_of(op)
            reach = result.info["reach"]
            report["reach_max"] = float(reach.max())
            if "edited" in result.info:
                edited = result.info["edited"]
                refused, edge = int((~edited).sum()), int((edited & (reach > calib.reach_limit)).sum())
                report["unedited"] = f"{refused}/{len(reach)}"
                if refused:
                    print(f"warning: {refused} of {len(reach)} images are returned unedited: the edit is out of the "
                          f"SPNN's reach there (one full NLBP step from the image goes to max |x| "
                          f"{float(reach.max()):.3g}, above {calib.reach_max:g}: the network's own way to these "
                          "logits is a whole-image pattern, not the attribute). A fixed --max-abs (e.g. 1.2) "
                          "tries anyway; expect blue-tinted or broken pictures (README, editing).", file=sys.stderr)
                if edge:
                    print(f"warning: {edge} edited images are at the edge of the SPNN's reach (one NLBP step from "
                          f"the image goes to |x| between {calib.reach_limit:g} and {calib.reach_max:g}; edited with "
                          f"--max-abs {calib.max_abs:g}): look at them for colour casts, which grow with --steps.",
                          file=sys.stderr)
        report["pixel_max_abs"] = float(result.images.abs().max())
        if evaluator is not None and result.targets is not None and op is not None and \
                getattr(op, "attribute_names", None) == evaluator.attribute_names:
            agreement = attribute_agreement(evaluator.predict(result.images.float()), result.targets, result.mask)
            report["evaluator_agreement"] = agreement["mean"]
            report["evaluator_all_correct"] = agreement["all_correct"]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", report)
    print(json.dumps(report))
    return report


def _captions(op, y, mask=None, limit=3):
    names = getattr(op, "attribute_names", None)
    if not names:
        return None
    caps = []
    for row in y:
        idx = [i for i in range(len(names)) if (mask is None or mask[i]) and row[i] > 0]
        caps.append([names[i].replace("_", " ")[:14] for i in idx[:limit]])
    return caps


def _seeds(args, n: int) -> list[int] | None:
    """--seed S: seeds S, S+1, ...; without it the preset's convention (ours 0, 1, ...; the paper's 1234 for all)."""
    return None if args.seed is None else list(range(args.seed, args.seed + n))


def _skip_tol(args):
    """--skip-tol T, --no-skip, or the preset's rule."""
    return None if args.no_skip else ("preset" if args.skip_tol is None else args.skip_tol)


def _finished(path: Path) -> bool:
    """A complete PNG exists at ``path`` (an empty or truncated file is redone)."""
    from PIL import Image

    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:  # noqa: BLE001 - any unreadable file is redone
        return False


def _reconstruct_all(args, prior, op) -> int:
    """Every image of a dataset split, sharded over processes (torchrun), one PNG per image, resumable."""
    from spnn.data.registry import open_dataset
    from spnn.tasks import reconstruct
    from spnn.training.distributed import init_from_env, world
    from spnn.viz import save_png, to_uint8

    init_from_env()
    rank, size = world()
    ds = open_dataset(args.data, args.split, size=prior.image_shape[1], n=args.data_n)
    out = Path(args.out) / "images"
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(rank, len(ds), size) if not _finished(out / f"{i:05d}.png")]
    print(f"rank {rank}/{size}: {len(todo)} of {len(ds)} images to do")
    from PIL import Image

    for start in range(0, len(todo), args.batch):
        idx = todo[start:start + args.batch]
        x = torch.stack([ds[i][0] for i in idx])
        seeds = idx if args.seed is not None or args.preset != "paper" else None  # theirs: 1234 for all
        res = reconstruct(prior, op, x, method=args.method, steps=args.steps, seeds=seeds, progress=False,
                          skip_tol=_skip_tol(args), preset=args.preset, precision=args.precision, slack=args.slack,
                          travel=args.travel, graphs=args.graphs)
        for i, img in zip(idx, to_uint8(res.images)):
            save_png(Image.fromarray(img), out / f"{i:05d}.png")  # seed = index: independent of sharding
    return 0


def _explicit_recipe_check(args) -> None:
    """Refuse a slack or time travel that the chosen method has no use for, before any model is loaded."""
    if isinstance(args.slack, float) and args.method != "nlbp":
        raise ConfigError(f"--slack loosens NLBP's target before the last step; --method {args.method} has none; "
                          "use --method nlbp or drop --slack")
    if isinstance(args.travel, tuple) and args.method in SOLVERS:
        raise ConfigError(f"--method {args.method} has its own loop without time travel; drop --travel or use "
                          "--method nlbp")


def cmd_reconstruct(args) -> int:
    from spnn.tasks import reconstruct
    from spnn.viz import image_grid

    _explicit_recipe_check(args)
    prior, op, evaluator = _models(args)
    if args.all:
        return _reconstruct_all(args, prior, op)
    x = _inputs(args, prior.image_shape)
    res = reconstruct(prior, op, x, method=args.method, steps=args.steps, skip_tol=_skip_tol(args),
                      seeds=_seeds(args, len(x)), preset=args.preset, precision=args.precision, slack=args.slack,
                      travel=args.travel, graphs=args.graphs)
    out = Path(args.out)
    caps = _captions(op, res.targets)
    image_grid([x, res.images], out / "reconstruct.png", row_labels=["original", args.method], scale=3,
               captions=[caps, caps] if caps else None)
    travel = res.info["travel"]
    _report(res, op, evaluator, out, "reconstruct", {"method": args.method, "pinv": args.pinv, "n": len(x),
                                                      "slack": res.info["slack"],
                                                      "travel": None if travel is None else list(travel),
                                                      "recipe_steps": res.info["recipe_steps"]})
    return 0


def _say_implied(res) -> None:
    if res.info.get("implied"):
        also = ", ".join(f"{k}={v:g}" for k, v in res.info["implied"].items())
        print(f"also setting {also} (implied in the SPNN's training labels; --no-implied sets only the named)",
              file=sys.stderr)


def cmd_generate(args) -> int:
    from spnn.tasks import generate
    from spnn.viz import image_grid

    attrs = _parse_set(args.set)
    prior, op, evaluator = _models(args)
    res = generate(prior, op, attrs, args.n, method=args.method, steps=args.steps, logit=args.logit,
                   max_abs=args.max_abs, max_move=args.max_move or None, implied=args.implied,
                   seeds=_seeds(args, args.n), preset=args.preset, precision=args.precision,
                   graphs=args.graphs, travel=args.travel, range_rule=args.range_rule)
    _say_implied(res)
    out = Path(args.out)
    image_grid([res.images], out / "generate.png", scale=3, row_labels=[" ".join(f"{k}={v:g}" for k, v in
                                                                                attrs.items())[:40]])
    travel = res.info["travel"]
    _report(res, op, evaluator, out, "generate", {"set": attrs, "implied": res.info["implied"],
                                                  "levels": res.info["levels"], "method": args.method,
                                                  "travel": None if travel is None else list(travel),
                                                  "range_rule": res.info["range_rule"]})
    return 0


def cmd_edit(args) -> int:
    from spnn.tasks import edit
    from spnn.viz import image_grid

    attrs = _parse_set(args.set)
    prior, op, evaluator = _models(args)
    x = _inputs(args, prior.image_shape)
    res = edit(prior, op, x, attrs, method=args.method, t_start=args.t_start, steps=args.steps, logit=args.logit,
               max_abs=args.max_abs, max_move=args.max_move or None, eta=args.eta, invert=args.invert,
               seeds=_seeds(args, len(x)), preset=args.preset, precision=args.precision, implied=args.implied,
               graphs=args.graphs, region=args.region, keep=args.keep, range_rule=args.range_rule)
    _say_implied(res)
    out = Path(args.out)
    region = res.info.get("region")
    rows, labels = [x, res.images], ["original", "edited"]
    if region is not None:  # where the edit was free to change pixels (white)
        rows.append(region.expand_as(x) * 2 - 1)
        labels.append("region")
    image_grid(rows, out / "edit.png", scale=3, row_labels=labels)
    _report(res, op, evaluator, out, "edit", {"set": attrs, "implied": res.info["implied"], **res.info["start"],
                                              "levels": res.info["levels"], "eta": args.eta, "keep": res.info["keep"],
                                              "range_rule": res.info["range_rule"],
                                              "region_area": None if region is None else float(region.mean())})
    return 0


def cmd_restore(args) -> int:
    from spnn.degradations import EXACT_TASKS, BlackBoxCamera, exact_operator
    from spnn.operators import AveragePool, Colorization, Inpainting
    from spnn.tasks import restore
    from spnn.viz import image_grid

    direct = ("dps", "dps-paper", *SOLVERS)  # methods that differentiate the camera itself
    if args.task == "camera" and not args.emulator and args.method not in direct:
        raise ConfigError(f"--task camera with --method {args.method} needs --emulator (an SPNN trained by `spnn "
                          f"emulator train`); {', '.join(direct)} use the camera directly")
    if args.emulator and args.task != "camera":
        raise ConfigError(f"--emulator is for --task camera only (--task {args.task} has its own operator); drop it")
    if args.no_feedback and (args.task != "camera" or args.method in direct):
        raise ConfigError("--no-feedback applies only to --task camera through --emulator (not to "
                          f"{', '.join(direct)}); drop it")
    prior, _, _ = _models(args)
    shape = prior.image_shape
    x = _inputs(args, shape).to(device_of(args))
    ops = {"sr4": lambda: AveragePool(shape, 4), "sr2": lambda: AveragePool(shape, 2),
           "colorize": lambda: Colorization(shape),
           "inpaint": lambda: Inpainting.box(shape, shape[1] // 4, shape[2] // 4, shape[1] // 2, shape[2] // 2)}
    ops |= {t: (lambda t=t: exact_operator(t, shape)) for t in EXACT_TASKS}
    seeds = _seeds(args, len(x))
    if args.task == "camera":  # black-box degradation, inverted through a learned SPNN emulator
        from spnn.models import load_spnn
        from spnn.operators import FeedbackEmulator, SPNNOperator
        from spnn.tasks import TaskResult, make_guidance

        camera = BlackBoxCamera()
        if args.method in direct:
            op = camera
        else:  # the emulator's steps corrected by the camera's own residual, unless --no-feedback
            op = SPNNOperator(load_spnn(args.emulator, x.device), mode="natural")
            op = op if args.no_feedback else FeedbackEmulator(op, camera)
        with torch.no_grad():
            y = camera.A(x)
        from spnn.diffusion.sampler import sample

        if args.method in SOLVERS:  # the camera itself is differentiable: the solvers use it directly
            from spnn.tasks import solve

            res = TaskResult(solve(args.method, prior, camera, y, args.steps, seeds, args.precision), y)
        else:
            guidance = make_guidance(args.method, op, y, lam=1.0, preset=args.preset)
            res = TaskResult(sample(prior, len(x), steps=args.steps, guidance=guidance, seeds=seeds,
                                    preset=args.preset, precision=args.precision, graphs=args.graphs).images, y)
        op = camera
    elif args.task in ops:
        op = ops[args.task]().to(x)
        res = restore(prior, op, x, method=args.method, steps=args.steps, seeds=seeds, preset=args.preset,
                      precision=args.precision, graphs=args.graphs)
    else:
        raise DataError(f"unknown restoration task {args.task!r}; choose one of {sorted(ops) + ['camera']}")
    from spnn.evaluation.metrics import psnr

    shown = op.pinv(res.targets) if hasattr(op, "pinv") and args.task != "camera" else \
        torch.nn.functional.interpolate(res.targets, size=shape[1:], mode="nearest")
    out = Path(args.out)
    image_grid([x, shown, res.images], out / f"restore-{args.task}.png", scale=3,
               row_labels=["original", "A+ y", args.method])
    report = {"task": args.task, "method": args.method, "psnr_db": float(psnr(res.images.clamp(-1, 1), x).mean()),
              "psnr_pinv_db": float(psnr(shown.clamp(-1, 1), x).mean()),
              "consistency_max_abs": float((op.A(res.images) - res.targets).abs().max())}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"restore-{args.task}.json", report)
    print(json.dumps(report))
    return 0


RESTORE_TASKS = ("sr4", "sr2", "inpaint", "colorize", "tone-sr4", "tone-inpaint", "tone-gray", "log-sr4", "camera")


def cmd_calibrate(args) -> int:
    """Measure an SPNN's editing numbers on a labelled split and write a copy of it that carries them (the
    stored starts, levels, implied levels, region, label temperature, keeping margins, range rules and generation
    travel, which it does not measure, are kept, or with --keep-from taken from another SPNN's calibration)."""
    from dataclasses import replace

    from spnn.calibration import calibrate_edits, calibration_of
    from spnn.cli.args import check_safetensors_out
    from spnn.data.registry import open_dataset
    from spnn.models import load_spnn
    from spnn.operators import SPNNOperator

    out = check_safetensors_out(args.out)
    net = load_spnn(args.spnn, device_of(args))
    source = net
    if args.keep_from:
        source = load_spnn(args.keep_from, "cpu")
        if source.attribute_names != net.attribute_names or not source.edit_calibration:
            raise ConfigError(f"--keep-from {args.keep_from}: "
                              + ("it has no editing calibration" if source.attribute_names == net.attribute_names
                                 else "its attributes are not the SPNN's") + "; give a calibrated SPNN of the same "
                              "attributes (e.g. the one this SPNN was fine-tuned from) or drop --keep-from")
    if args.data == "avatars":  # render only the faces measured on
        from spnn.data.avatars import AvatarFaces

        ds = AvatarFaces.head(args.split, max(args.n, args.rules_n or 0), size=net.input_shape[1], n=args.data_n)
    else:
        ds = open_dataset(args.data, args.split, size=net.input_shape[1], n=args.data_n)
    if ds.attribute_names != net.attribute_names:
        raise ConfigError(f"the dataset's attributes {ds.attribute_names[:4]}... are not the SPNN's "
                          f"{(net.attribute_names or [])[:4]}...; give the data the SPNN was trained on")
    x, labels = ds.tensors(limit=max(args.n, args.rules_n or 0))
    rule_labels = labels[:args.rules_n] if args.rules_n else None
    x, labels = x[:args.n], labels[:args.n]
    before = calibration_of(source) if source.edit_calibration else None
    calib = calibrate_edits(SPNNOperator(net), x.to(device_of(args)), labels.to(device_of(args)),
                            rule_labels=rule_labels)
    if before is not None:  # what calibrate does not measure stays as the SPNN stored it, and the report says so
        kept = {k: getattr(before, k) for k in KEPT_BY_CALIBRATE if getattr(before, k) != getattr(calib, k)}
        if kept:
            origin = args.keep_from or "the input SPNN"
            calib = replace(calib, **kept, source=f"{calib.source}; kept from {origin}: {', '.join(kept)}")
            print(f"kept what spnn calibrate does not measure, as {origin} stored it: "
                  f"{', '.join(kept)}", file=sys.stderr)
    net.edit_calibration = calib.to_dict()
    net.save(out, {"calibrated_from": str(args.spnn or "shipped")})
    print(json.dumps(calib.to_dict()))
    return 0


# chosen by benchmarks, not measured by calibrate
KEPT_BY_CALIBRATE = ("starts", "levels", "region", "label_temperature", "generation_travel", "keeps", "range_rules",
                     "implied_levels", "reconstruction_recipes")


def _common(p, spnn: bool = True, images: bool = True) -> None:
    p.add_argument("--prior", type=existing_path,
                   help="prior folder or .ckpt (default: the shipped 32x32 avatar prior)")
    if spnn:
        p.add_argument("--spnn", type=existing_path,
                       help="SPNN .safetensors or authors' .pth (default: shipped avatar SPNN)")
        p.add_argument("--pinv", default="learned", choices=["learned", "natural"])
        p.add_argument("--latent-step", type=unit_float, default=1.0,
                       help="learned mode: move the latents by this share of the learned step (1: the paper's NLBP; "
                            "lower keeps more of the sampled face: other faces, fewer attributes kept; docs: sampling)")
        p.add_argument("--latents-from", default="logits", choices=["logits", "labels"],
                       help="learned mode: target latents from the logits (the paper) or from the labels they stand "
                            "for (reconstruction from semantics: other faces with the attributes; docs: sampling)")
    p.add_argument("--evaluator", type=judge_or_none,
                   help=judge_help() + ", or 'none'")
    p.add_argument("--method", default="nlbp", choices=list(METHODS),
                   help="nlbp (NLBP / DDNM), dps (Chung et al.), dps-paper (the authors' variant), cg, none; "
                        "daps and red-diff (reconstruct and restore: --steps is then DAPS's annealing levels or "
                        "RED-diff's Adam steps)")
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="the prior UNet's precision (auto: bfloat16 where measured faster with the same quality; "
                        "the SPNN always runs in float32)")
    p.add_argument("--graphs", default="auto", choices=["auto", "off"],
                   help="recorded calls: on CUDA devices the UNet call and the back-projection replayed from CUDA "
                        "graphs (the same images, faster), on a CPU a bfloat16 UNet's frozen trace (the same images "
                        "to bfloat16 rounding); off: plain calls")
    p.add_argument("--preset", default="spnn", choices=sorted(PRESETS),
                   help="sampler settings: spnn (ours) or paper (the authors' loop step for step; "
                        "docs: sampling)")
    p.add_argument("--steps", type=int_in(1, 1000), default=100, help="sampling steps (1..1000)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="first seed, one per image (default: the preset's: 0, 1, ... ours; 1234 for all, paper)")
    p.add_argument("--out", type=output_dir, default="spnn-out", help="output folder")
    device_option(p)
    if images:
        p.add_argument("images", nargs="*", help="image files or folders (default: built-in test faces)")
        p.add_argument("--n", type=positive_int, default=8, help="how many built-in test faces")
        p.add_argument("--data-n", type=positive_int, default=30000, help=argparse.SUPPRESS)


def _bounds_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logit", type=positive_float, default=None,
                   help="NAME=1 means logit >= +LOGIT, NAME=0 means logit <= -LOGIT (NLBP); DPS/cg aim at +-LOGIT "
                        "(default: the SPNN's calibration: its logit, and the levels it stores for some attributes)")
    p.add_argument("--max-abs", type=parsed_by(parse_max_abs), default="auto",
                   help="range safeguard: act on a step whose image leaves [-M, M] (0: off, exact constraint; "
                        "auto: per image from the edit's reach and the SPNN's calibration, unedited out of reach)")
    p.add_argument("--range-rule", type=parsed_by(parse_range_rule), default="auto",
                   help="what the range safeguard does: halve the step or clip the image to [-M, M] (auto: the "
                        "SPNN's calibration; NLBP only)")
    p.add_argument("--max-move", type=float_in(0), default=EDIT_MAX_MOVE or 0.0,
                   help="stop projecting a sample once the summed RMS change of its projections passes this "
                        "(0: no budget)")
    p.add_argument("--no-implied", dest="implied", action="store_false",
                   help="set only the named attributes, not what they imply in the SPNN's training labels (for "
                        "example Gray_Hair=1 implies Black_Hair=0)")


def _set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", nargs="+", action="extend", required=True, metavar="NAME=VALUE",
                   help="attributes to require: NAME=1 (on) or NAME=0 (off); repeatable, merged")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="reconstruction from semantics: sample x with g(x) = g(image)")
    _common(p)
    p.add_argument("--all", action="store_true", help="every image of --data/--split, one PNG each, sharded "
                   "over torchrun processes; a rerun skips finished images")
    p.add_argument("--data", default="avatars", help="dataset for --all (avatars | celebahq:DIR | ...)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--skip-tol", type=unit_float, default=None,
                   help="skip NLBP for a sample once mean |sigmoid(g(x0)) - sigmoid(y)| <= this (default: the "
                        "preset's: never for spnn, 0.11 for paper)")
    p.add_argument("--no-skip", action="store_true", help="never skip NLBP, whatever the preset")
    p.add_argument("--slack", type=parsed_by(parse_slack), default="auto",
                   help="nlbp: aim at logits within SLACK of y before the last step, at y itself at the end; auto "
                        "(default): the recipe the SPNN stores for about --steps steps with --latents-from labels, "
                        "none otherwise; off: none (docs: sampling)")
    p.add_argument("--travel", type=parsed_by(parse_travel), default="auto",
                   help="RePaint time travel L,R[,T_MIN,T_MAX]: after every L steps go back L and denoise again R "
                        "times; auto (default): the SPNN's stored recipe, as for --slack; off: none (docs: "
                        "limitations, reconstruction at 100 steps)")
    p.add_argument("--batch", type=positive_int, default=16)
    p.set_defaults(func=cmd_reconstruct)
    p = sub.add_parser("generate", help="generate faces with chosen attributes, others free")
    _common(p, images=False)
    _set_option(p)
    p.add_argument("--n", type=positive_int, default=8)
    p.add_argument("--travel", type=parsed_by(parse_travel), default="auto",
                   help="RePaint time travel L,R[,T_MIN,T_MAX]: after every L steps go back L and denoise again R "
                   "times (auto: the one the SPNN stores for generation, if any; off: none)")
    _bounds_options(p)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("edit", help="edit real images: set attributes, keep the rest")
    _common(p)
    _set_option(p)
    p.add_argument("--t-start", type=int_in(1, 999), default=None,
                   help=f"noise level to start from (1..999 of 1000; default {EDIT_T_START}; with neither --t-start "
                   "nor --no-invert, the start the SPNN stores for the named attributes if it has one)")
    p.add_argument("--eta", type=unit_float, default=EDIT_ETA,
                   help="DDIM eta in [0, 1] (0: deterministic, keeps most of the image)")
    p.add_argument("--no-invert", dest="invert", action="store_const", const=False, default=None,
                   help="start from the re-noised images (SDEdit) instead of their DDIM inversion (with neither this "
                   "nor --t-start: the start the SPNN stores for the named attributes, else the inversion from 500)")
    p.add_argument("--region", type=parsed_by(parse_region), default="auto",
                   help="confine the change to where the SPNN's own step moves pixels by at least this fraction of its "
                   "largest move (auto: the threshold the SPNN stores, if any; off: the whole image; NLBP only)")
    p.add_argument("--keep", type=parsed_by(parse_keep), default="auto", metavar="MARGIN",
                   help="also hold every attribute neither set nor implied on the side the original's logit lies, at "
                   "most MARGIN deep (auto: the margin the SPNN stores for the named attributes, if any; off: free; "
                   "NLBP only; docs: sampling)")
    _bounds_options(p)
    p.set_defaults(func=cmd_edit)
    p = sub.add_parser("calibrate", help="measure an SPNN's editing numbers (logit level, reach limits) on "
                       "labelled images and write a copy of the SPNN that carries them")
    p.add_argument("--spnn", type=existing_path, help="SPNN to calibrate (default: the shipped one)")
    p.add_argument("--data", default="avatars", help="labelled dataset (avatars | folder:DIR | celebahq:DIR ...)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--n", type=positive_int, default=200, help="images to measure on")
    p.add_argument("--rules-n", type=positive_int, default=None,
                   help="labels of the first N images of the split for the label implications of edits (default: "
                        "the --n measured images; rare attributes need more, e.g. 3000)")
    p.add_argument("--data-n", type=positive_int, default=30000, help=argparse.SUPPRESS)
    p.add_argument("--out", required=True, help="the calibrated SPNN (.safetensors)")
    p.add_argument("--keep-from", type=existing_path, default=None, metavar="SPNN",
                   help="take what calibrate does not measure (stored starts, levels, region, label temperature, "
                        "keeping margins, range rules, generation travel) from this SPNN's calibration instead of "
                        "the input's, "
                        "e.g. the shipped SPNN for one fine-tuned from it ('shipped' is not a path: give the file)")
    device_option(p)
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("restore", help="linear restoration (DDNM) with the same sampler")
    _common(p, spnn=False)
    p.add_argument("--task", required=True, choices=RESTORE_TASKS)
    p.add_argument("--emulator", type=existing_path, help="SPNN emulating the black-box camera (for --task camera)")
    p.add_argument("--no-feedback", action="store_true",
                   help="--task camera: project through the emulator alone (default: each step is corrected by the "
                        "camera's residual y - A(x), one camera call per step)")
    p.set_defaults(func=cmd_restore)
