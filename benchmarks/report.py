"""Markdown tables of every result in benchmarks/results/: the documentation's Benchmarks page.

    python benchmarks/report.py --out docs/benchmarks.md     # the page (and the result pictures beside it)
    python benchmarks/report.py                              # the tables on stdout
"""

import json
import re
from pathlib import Path

from common import RESULTS, edit_table, judge_of, largest_fidelity_gaps, least_agreed, multi_table, table

from spnn.models import DEFAULT_JUDGE
from spnn.tasks import BOUND_TOL


def load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def variant_row(q: dict, name: str) -> dict:
    """One line per model variant: NLBP reconstruction, editing and multi-attribute summaries."""
    rec = next(r for r in q["reconstruction"] if r["method"] == "nlbp-learned")
    edits = [e for e in q["editing"] if e["attribute"] != "(no edit)"]
    identity = next((r for r in q.get("identity", []) if r["method"] == "nlbp-learned"), {})
    natural = next((r for r in q["reconstruction"] if r["method"] == "nlbp-natural"), {})
    natural_identity = next((r for r in q.get("identity", []) if r["method"] == "nlbp-natural"), {})
    return {"variant": name, "agreement": rec["agreement"], "all_correct": rec["all_correct"],
            "consistency": rec.get("consistency_mae", ""),
            "edits_met": f"{sum(round(e['success'], 6) >= 0.9 and round(e['others_kept'], 6) >= 0.9 for e in edits)}/{len(edits)}",
            "success_mean": sum(e["success"] for e in edits) / len(edits),
            "kept_mean": sum(e["others_kept"] for e in edits) / len(edits),
            "multi_all_set": q["multi_attribute"][0]["all_set"] if q["multi_attribute"] else "",
            "own_nearest": identity.get("own_nearest_pixels", ""), "hf_ratio": identity.get("high_frequency_ratio", ""),
            "natural_agreement": natural.get("agreement", ""),
            "natural_own_nearest": natural_identity.get("own_nearest_pixels", ""),
            "n_edit": q.get("n_edit", ""), "max_abs": q.get("edit_max_abs", 1.2)}


V1_CALIBRATION = {"max_abs_reachable": 1.5, "reach_limit": 2.0, "max_abs": 1.2, "reach_max": 4.0}  # runs before 12-02


def safeguard(result: dict, default="auto") -> str:
    """The range safeguard a quality run used, in words (its SPNN's edit calibration for "auto")."""
    max_abs = result.get("edit_max_abs", default)
    if max_abs == "auto":
        c = result.get("edit_calibration", V1_CALIBRATION)
        return (f"range safeguard per face from the edit's reach, the max |x| of one NLBP step from the face: "
                f"M = {c['max_abs_reachable']:g} up to {c['reach_limit']:g} (within_reach), {c['max_abs']:g} up to "
                f"{c['reach_max']:g}, unedited beyond (unedited)")
    return f"range safeguard M = {max_abs}" if max_abs else "no range safeguard"


def former_spnn(result: dict) -> str | None:
    """The shipped SPNN of an earlier version a run used ("v1: PATH (...)", "v2: ..." in its JSON), else None."""
    spnn = result.get("spnn")
    return spnn if isinstance(spnn, str) and re.match(r"v\d+: ", spnn) else None


def machine_of(result: dict) -> str:
    """A run's machine, and the SPNN version it used where that is no longer the shipped one."""
    former = former_spnn(result)
    return result["machine"] + (f"; SPNN {former}" if former else "")


def spnn_of(result: dict) -> str:
    """"; SPNN: NAME" when a run used another SPNN than the shipped one and was not made with an earlier shipped
    version (those say it beside their machine, `machine_of`)."""
    spnn = result.get("spnn", "shipped")
    return "" if spnn == "shipped" or former_spnn(result) else f"; SPNN: {spnn}"


def reproduce_flags(result: dict) -> str:
    """The flags a run's command needs to reproduce it today: --no-implied for runs made before edits set implied
    attributes (or with it), --t-start for runs with edits made before the SPNN stored editing starts, --logit
    for those made before it stored per-attribute bound levels, --gen-travel for generation made before it stored
    a time travel for generation (those runs gave generation the editing travel, if any), --edit-keep off for edits
    made before it stored keeping margins, --evaluator for runs judged by another than the default (r3)."""
    flags = "" if result.get("implied", False) else " --no-implied"
    if judge_of(result) != DEFAULT_JUDGE:
        flags += f" --evaluator {judge_of(result)}"
    if result.get("editing") and "edit_starts" not in result:
        flags += f" --t-start {result.get('edit_t_start', 500)}"
    if result.get("editing") and "edit_levels" not in result:
        flags += f" --logit {result.get('edit_logit', 3.5):g}"
    if result.get("editing") and "edit_keeps" not in result and result.get("edit_keep") in (None, "auto"):
        flags += " --edit-keep off"  # made before the SPNN stored keeping margins (or without one)
    if result.get("multi_attribute") and "gen_travel" not in result:
        travel = result.get("edit_travel")
        flags += f" --gen-travel {','.join(map(str, travel)) if travel else 'off'}"
    return flags


def edit_section(result: dict, title: str, multi: bool = True) -> None:
    """A titled editing table from a quality run (and its multi-attribute table)."""
    print(title + "\n")
    print(edit_table(result["editing"]))
    print()
    if multi:
        print(multi_table(result["multi_attribute"]))
        print()


PRIOR_RUNS = {"shipped": "shipped prior", "ft12": "fine-tuned 12 epochs more", "os": "fine-tuned, oversampled"}


def prior_fidelity_section() -> None:
    """How often the prior's unconditional samples show each attribute against real faces, with their contrast, and
    what the same edits give with each prior (validation faces)."""
    runs = {k: f for k in PRIOR_RUNS if (f := load(f"prior-fidelity-val-{k}"))}
    if not runs:
        return
    fid = next(iter(runs.values()))
    rows = [{"attribute": r["attribute"], "real": r["real_evaluator"]} for r in fid["prior_fidelity"]]
    for key, f in runs.items():
        for row, r in zip(rows, f["prior_fidelity"]):
            row[PRIOR_RUNS[key]] = r["samples_evaluator"]
    rows.append({"attribute": "(contrast ratio)", "real": 1.0,
                 **{PRIOR_RUNS[k]: f["reconstruction"][0]["contrast_ratio"] for k, f in runs.items()}})
    print(f"**Prior fidelity** (rate of each attribute on {fid['n']} real validation faces and on as many "
          f"unconditional samples, {fid['steps']} steps, by the evaluator; contrast ratio: samples' mean per-image "
          f"pixel spread over the real faces'; {machine_of(fid)}, {fid['date']}; `quality.py --methods none --n "
          f"{fid['n']} --n-edit 0 --steps {fid['steps']} --split val [--prior PATH] --name prior-fidelity-val-NAME`; "
          "the fine-tuned prior: `spnn prior train --data avatars --init src/spnn/assets/avatars32-prior --out "
          "runs/prior-ft --epochs 12 --batch-size 64 --lr 3e-4 --seed 1`; the oversampled one: the same with `--out "
          "runs/prior-os --epochs 8 --oversample Gray_Hair=3 Black_Hair=2 Pale_Skin=2 Wearing_Hat=2`, as many steps "
          "on a training set of 38,196 images):\n")
    print(table(rows, ["attribute", "real", *(PRIOR_RUNS[k] for k in runs)]))
    print()
    for suffix in ("", "-100", "-gray150-100"):  # the default edits at 20 steps; rows the prior might move, at 100
        edits = {k: e for k in PRIOR_RUNS if (e := load(f"prior-val-{k}{suffix}"))}
        if not edits:
            continue
        e0 = next(iter(edits.values()))
        names = [r["attribute"] for r in e0["editing"] if r["attribute"] != "(no edit)"]
        sets = [r["attributes"] for r in e0["multi_attribute"]]
        rows = []
        for key, e in edits.items():
            got = {r["attribute"]: r for r in e["editing"]}
            row = {"prior": PRIOR_RUNS[key],
                   **{a: f"{got[a]['success']:.2f} / {got[a]['others_kept']:.3f}" for a in names}}
            row |= {s: f"{r['all_set']:.2f}" for s, r in zip(sets, e["multi_attribute"])}
            rows.append(row)
        only = "" if not suffix else (" --edits " + " ".join(names) + "".join(" --multi " + s.replace(" + ", " ")
                                                                               for s in sets))
        print(f"Edits with each prior (success / others kept on {e0['n_edit']} validation faces, {e0['steps']} "
              f"steps; all set for the multi-attribute sets; `quality.py --split val --methods --n {e0['n']} --n-edit "
              f"{e0['n_edit']} --steps {e0['steps']}{only} [--prior PATH] --name prior-val-NAME{suffix}`):\n")
        print(table(rows, ["prior", *names, *sets]))
        print()


TRAJECTORIES = ["trajectory-Gray_Hair-halve", "trajectory-Gray_Hair-clip", "trajectory-Bangs-halve"]
EDIT_GROUP_RUNS = [("Bangs", "colour-r2"), ("Gray_Hair", "colour-r2"), ("Blond_Hair", "colour-r2"),
                   ("Smiling", "off-mouth"), ("Bangs", "colour"), ("Bangs", "colour-level2.5"), ("Bangs", "colour-level5"),
                   ("Bangs", "style"), ("Gray_Hair", "colour"), ("Blond_Hair", "colour"), ("Bald", "style")]


def edit_groups_section() -> None:
    """Which faces an edit fails on: `edit_groups.py` runs, one table each."""
    for attribute, by in EDIT_GROUP_RUNS:
        if not (r := load(f"edit-groups-{attribute}-{by}")):
            continue
        level = f" with every bound at {r['logit']:g}" if r.get("logit") else ""
        flag = f" --logit {r['logit']:g}" if r.get("logit") else ""
        off = " turned off" if r.get("off") else ""
        print(f"**{attribute}{off} by the face's {r['group_by'].replace('_', ' ')}{level}** ({r['faces']} of {r['n']} "
              f"{r['split']} faces edited, {r['steps']} steps, success {r['success']:.3f}; SPNN level {r['level']:g}; "
              f"real faces with it among the first {r['real_n']}; labels revision {r['labels_revision']}; judge "
              f"{judge_of(r)}; "
              f"{machine_of(r)}, {r['date']}; `edit_groups.py --attribute {attribute}{' --off' if off else ''} --group-by "
              f"{r['group_by']} --n {r['n']}{flag}{'' if judge_of(r) == DEFAULT_JUDGE else ' --evaluator ' + judge_of(r)} --name "
              f"edit-groups-{attribute}-{by}`):\n")
        print(table(r["rows"], list(r["rows"][0])))
        print()


RANGE_RULE_RUNS = {"halve": ("prior-val-shipped", "halve-val-100"), "clip": ("clip-val-20", "clip-val-100")}


def range_rule_section() -> None:
    """Where edits fail along the trajectory (`edit_trajectory.py`), and the edits with each range rule (validation)."""
    for name in TRAJECTORIES:
        if not (r := load(name)):
            continue
        print(f"**Edit trajectory, {r['attribute']} (range rule {r['range_rule_used']})** (the SPNN's logit of the "
              f"attribute on the prior's x0 before each projection and on the projected image after it, median over "
              f"the faces the evaluator finally judges failed / succeeded; RMS step and max |x| after it, mean; "
              f"{r['faces']} validation faces, {r['steps']} steps, success {r['success']:.2f}; {machine_of(r)}, "
              f"{r['date']}; `edit_trajectory.py --attribute {r['attribute']} --range-rule {r['range_rule']} "
              f"--name {name}`):\n")
        print(table(r["trajectory"], list(r["trajectory"][0])))
        print()
    runs = {rule: [load(n) for n in names] for rule, names in RANGE_RULE_RUNS.items()}
    if not all(all(runs[k]) for k in runs):
        return
    rows = []
    for rule, results in runs.items():
        for res in results:
            got = {r["attribute"]: r for r in res["editing"] if r["attribute"] != "(no edit)"}
            rows.append({"range rule": rule, "steps": res["steps"],
                         **{a: f"{r['success']:.2f} / {r['others_kept']:.3f}" for a, r in got.items()},
                         **{m["attributes"]: f"{m['all_set']:.2f}" for m in res["multi_attribute"]}})
    first = runs["clip"][0]
    print(f"**The range rule** (every edit and set with the safeguard halving the step, the library's default, or "
          f"clipping the image; success / others kept on {first['n_edit']} validation faces, all set for the sets; "
          f"{machine_of(first)}, {first['date']}; `quality.py --split val --methods --n 50 --n-edit 50 --steps 20 "
          "--range-rule clip --name clip-val-20` and `--steps 100 ... clip-val-100`, `--range-rule halve --steps 100 "
          "--name halve-val-100`; the 20-step halving row is `prior-val-shipped`; the shipped SPNN stores clip for "
          "Gray_Hair, where success rose and others kept fell at neither step count):\n")
    print(table(rows, list(rows[0])))
    print()


# the judged term on Bangs (session 33, scripts/judged-bangs.sh): (row, result under r3, under spatial)
JUDGED_BANGS = [("version 3 (shipped)", "r3-shipped-val150", "judged-bangs-shipped-spatial"),
                ("+ 2 + 2 epochs (control)", "judged-bangs-finetune-short-r3", "judged-bangs-finetune-short-spatial"),
                ("+ 2 + 2 epochs with the judged term", "judged-bangs-judged-bangs-r3",
                 "judged-bangs-judged-bangs-spatial")]


def judged_section() -> None:
    """Bangs edits of version 3 fine-tuned with and without the judged term, under both judges (validation)."""
    runs = [(row, load(a), load(b)) for row, a, b in JUDGED_BANGS]
    if not all(a and b for _, a, b in runs):
        return
    rows = []
    for row, by_r3, by_spatial in runs:
        (e3,), (es,) = ([r for r in res["editing"] if r["attribute"] == "Bangs"] for res in (by_r3, by_spatial))
        rows.append({"SPNN": row, "success (r3)": f"{e3['success']:.3f}", "success (spatial)": f"{es['success']:.3f}",
                     "others kept (r3)": f"{e3['others_kept']:.3f}", "bound met": f"{e3['bound_met']:.3f}",
                     "within reach": f"{e3['within_reach']:.3f}"})
    first = runs[1][1]
    print(f"**The judged term on Bangs** (version 3 fine-tuned 2 + 2 epochs on, with the phase-1 term `judged` on its "
          f"own Bangs-on edits of 4,800 training faces labelled where r3 and spatial agree, and without it; Bangs "
          f"turned on for those of the first {first['n_edit']} validation faces that each judge reads without a "
          f"fringe, {first['steps']} steps, stored settings; {machine_of(first)}, {first['date']}; "
          "`scripts/judged-bangs.sh`; the first row: `r3-shipped-val150` and `quality.py --split val --methods --n 150 "
          "--n-edit 150 --steps 20 --edits Bangs --no-multi --evaluator spatial --name judged-bangs-shipped-spatial`):\n")
    print(table(rows, list(rows[0])))
    print()


# reconstruction from semantics, latents from the labels: settings chosen on validation faces, then run on the
# test faces (setting, validation run, its method, test run), per (step count, SPNN): 20 steps judged under r3
# (sessions 26 and 28), 100 steps under r2 for version 2 (session 25) and r3 for version 3 (session 29); the candidate
# h64-full under r3 (session 32)
RECIPES = {
    (20, "version 3 of the SPNN"): [
        ("none", "recon-r3-val-20", "nlbp-learned+labels", "quality-labels-20"),
        ("slack 0.5", "recon-r3-val-slack-20", "nlbp-learned+labels", "quality-labels-slack-20"),
        ("slack 0.5, travel (5, 2)", "recon-r3-val-slack-travel52-20", "nlbp-learned+labels+travel",
         "quality-labels-slack-travel52-20")],
    (20, "the SPNN candidate h64-full"): [
        ("none", "recon-r3-val-20-spnn-h64-full", "nlbp-learned+labels", "quality-labels-20-spnn-h64-full"),
        ("slack 0.5", "recon-r3-val-slack-20-spnn-h64-full", "nlbp-learned+labels",
         "quality-labels-slack-20-spnn-h64-full"),
        ("slack 0.5, travel (5, 2)", "recon-r3-val-slack-travel52-20-spnn-h64-full", "nlbp-learned+labels+travel",
         "quality-labels-slack-travel52-20-spnn-h64-full")],
    # chosen for version 2 of the SPNN, so its test runs are version 2's too (NAME-spnn-v2)
    (100, "version 2 of the SPNN"): [
        ("none", "recon-r2-val-100", "nlbp-learned+labels", "quality-labels-100-spnn-v2"),
        ("skip 0.11", "recon-r2-val-100", "nlbp-learned+labels+skip", None),
        ("skip 0.05", "recon-r2-val-skip0.05-100", "nlbp-learned+labels+skip", "quality-labels-skip0.05-100"),
        ("skip 0.03", "recon-r2-val-skip0.03-100", "nlbp-learned+labels+skip", None),
        ("travel (5, 2)", "recon-r2-val-100", "nlbp-learned+labels+travel", None),
        ("slack 0.5", "recon-r2-val-slack-100", "nlbp-learned+labels", "quality-labels-slack-100-spnn-v2"),
        ("slack 0.5, skip 0.11", "recon-r2-val-slack-100", "nlbp-learned+labels+skip", None),
        ("slack 0.5, travel (5, 2)", "recon-r2-val-slack-100", "nlbp-learned+labels+travel",
         "quality-labels-slack-travel52-100-spnn-v2")],
    # chosen for version 3 in session 29
    (100, "version 3 of the SPNN"): [
        ("slack 0.5, travel (5, 2)", "recon-r3-val-slack-travel52-100", "nlbp-learned+labels+travel",
         "quality-labels-slack-travel52-100"),
        ("slack 0.5, travel (25, 2)", "recon-r3-val-slack-travel252-100", "nlbp-learned+labels+travel", None),
        ("slack 1, travel (5, 2)", "recon-r3-val-slack1-travel52-100", "nlbp-learned+labels+travel",
         "quality-labels-slack1-travel52-100")],
    (100, "the SPNN candidate h64-full"): [
        ("slack 0.5, travel (5, 2)", "recon-r3-val-slack-travel52-100-spnn-h64-full", "nlbp-learned+labels+travel",
         "quality-labels-slack-travel52-100-spnn-h64-full"),
        ("slack 1, travel (5, 2)", "recon-r3-val-slack1-travel52-100-spnn-h64-full", "nlbp-learned+labels+travel",
         "quality-labels-slack1-travel52-100-spnn-h64-full")]}


def recon_recipes_section() -> None:
    """Reconstruction recipes: agreement / own nearest on validation faces and, where run, on the test faces."""
    def pick(result, method):
        if not result:
            return None
        return next(((r, i) for r, i in zip(result["reconstruction"], result["identity"]) if r["method"] == method),
                    None)

    for (steps, version), recipes in RECIPES.items():
        rows = []
        for setting, val_name, method, test_name in recipes:
            if not (val := pick(load(val_name), method)):
                continue
            test = pick(load(test_name), method) if test_name else None
            rows.append({"setting": setting, "val agreement / own nearest": f"{val[0]['agreement']:.3f} / "
                         f"{val[1]['own_nearest_pixels']:.3f}",
                         "test agreement / own nearest": f"{test[0]['agreement']:.3f} / "
                         f"{test[1]['own_nearest_pixels']:.3f}" if test else "",
                         "s_per_image (val)": round(val[0]["s_per_image"], 3)})
        if not rows:
            continue
        r = load(recipes[0][1])
        tests = {judge_of(t) for *_, name in recipes if name and (t := load(name))}
        print(f"**Reconstruction recipes at {steps} steps, {version}** (latents from the labels; 200 "
              f"validation faces judged by {judge_of(r)}, where the settings were chosen (lab notes sessions 25-26 for "
              "version 2, 28-29 for version 3, 32 for the candidate), then the test faces for those run there, "
              f"judged by {', '.join(sorted(tests))}; targets agreement >= 0.93, own nearest <= 0.10; rule: the "
              f"highest validation agreement with own nearest <= 0.10; {machine_of(r)}, {r['date']}; `quality.py --split "
              f"val --methods nlbp-learned+labels[+skip|+travel] --identity --n 200 --n-edit 0 --steps {steps} "
              "[--recon-slack D] [--skip-tol T] [--recon-travel L R] --name NAME`, the test runs without `--split "
              "val`):\n")
        print(table(rows, list(rows[0])))
        print()


# the headline runs repeated for each SPNN version, with the same faces, seeds and judge: NAME holds the shipped
# SPNN's (version 3 since session 28), NAME-SUFFIX the other's (SPNN_VERSIONS: column, suffix)
VERSION_RUNS = ["quality-implied-20", "quality-implied-100", "paper-rows-150-20", "quality-labels-20",
                "quality-labels-slack-20", "quality-labels-slack-travel52-20", "quality-labels-100",
                "quality-labels-slack-100", "quality-labels-slack-travel52-100", "recon-r3-val-20",
                "recon-r3-val-slack-20", "recon-r3-val-slack-travel52-20", "r3-shipped-val150"]
SHIPPED_COLUMN = "version 3 (shipped)"
SPNN_VERSIONS = [("version 2", "-spnn-v2"), (SHIPPED_COLUMN, ""), ("h64-full (not shipped)", "-spnn-h64-full")]


def version_cells(result: dict) -> dict:
    """The figures of a headline run that the SPNN versions are compared on: success / others kept per edit,
    all set per generated set, agreement / own nearest per reconstruction method."""
    cells = {e["attribute"]: f"{e['success']:.2f} / {e['others_kept']:.3f}" for e in result.get("editing") or []
             if e["attribute"] != "(no edit)"}
    # validation runs made before quality.py recorded gen_seed (session 30) drew their sets from the test seeds
    leak = " (test seeds)" if result.get("split") == "val" and "gen_seed" not in result else ""
    cells |= {m["attributes"]: f"{m['all_set']:.2f}{leak}" for m in result.get("multi_attribute") or []}
    identity = {r["method"]: r for r in result.get("identity") or []}
    cells |= {r["method"]: f"{r['agreement']:.3f} / {identity[r['method']]['own_nearest_pixels']:.3f}"
              for r in result.get("reconstruction") or [] if r["method"] in identity}
    return cells


def versions_section() -> None:
    """The shipped SPNN against its former version and the candidate measured for shipping, on the same headline
    runs (faces, seeds, judge)."""
    columns = [column for column, _ in SPNN_VERSIONS]
    rows = []
    for name in VERSION_RUNS:
        runs = {column: load(f"{name}{suffix}") for column, suffix in SPNN_VERSIONS}
        shipped = runs[SHIPPED_COLUMN]
        if not shipped or former_spnn(shipped) or sum(r is not None for r in runs.values()) < 2:
            continue
        cells = {column: version_cells(r) if r else {} for column, r in runs.items()}
        rows += [{"run": f"{name} ({shipped['split']}, {shipped['steps']} steps)", "row": key,
                  **{column: cells[column].get(key, "") for column in columns}}
                 for key in cells[SHIPPED_COLUMN] if sum(key in c for c in cells.values()) > 1]
    accuracy = {column: load(f"spnn_accuracy{suffix}") for column, suffix in SPNN_VERSIONS}
    if accuracy[SHIPPED_COLUMN] and not former_spnn(accuracy[SHIPPED_COLUMN]):
        rows.append({"run": "spnn_accuracy (test)", "row": "accuracy / all 22 right",
                     **{column: f"{a['accuracy']:.4f} / {a['all_correct']:.3f}" if a else ""
                        for column, a in accuracy.items()}})
    if not rows:
        return
    print("**The shipped SPNN against version 2 and the candidate h64-full** (version 3, shipped since 2026-12-07, "
          "session 28: the version-2 recipe at twice the width, `--hidden 64`, trained 10 + 3 epochs and on for 6 + 3, "
          "its own range rules, and since session 29 Bangs clipped and kept at 0.5 and Bald's implied settings bounded "
          "at 3; version 2: `src/spnn/assets/avatars32-spnn-v2.safetensors`, hidden 32; h64-full: the same width trained "
          "from scratch for the recipe's whole 20 + 5 epochs with version 3's stored choices and slack 0.5 at 100 steps, "
          "`candidates/avatars32-spnn-h64-full.safetensors`, measured for shipping in session 32 and not shipped: it "
          "lost Blond_Hair + Smiling at 100 steps on the selection seeds, 0.893 -> 0.800; each headline run repeated "
          "with the same faces, seeds and judge, the others kept as NAME-spnn-v2.json and NAME-spnn-h64-full.json; "
          "edits: success / others kept, sets: all set (validation runs from the selection seeds 40000.., but those "
          "marked, made before session 30, from the test seeds), reconstruction: agreement / own nearest; the "
          "commands are those of the tables below, with `--spnn` and the other's file; lab notes, sessions 28, 29 and "
          "32):\n")
    print(table(rows, ["run", "row", *columns]))
    print()


def main() -> None:
    versions_section()
    if q := load("quality"):
        print(f"**Reconstruction from semantics** ({q['n']} held-out faces, {q['steps']} steps, {machine_of(q)}, {q['date']}):\n")
        worst = ["consistency_max"] if any("consistency_max" in r for r in q["reconstruction"]) else []
        print(table(q["reconstruction"], ["method", "agreement", "all_correct", "agreement_vs_sign_y",
                                          "consistency_mae", *worst, "s_per_image"]))
        if per := q.get("reconstruction_per_attribute", {}).get("nlbp-learned"):
            print("\nnlbp-learned, least agreed attributes: " + least_agreed(per))
        if fid := q.get("prior_fidelity"):
            rows = largest_fidelity_gaps(fid, 6)
            print("\n**Prior fidelity**: rate of each attribute on real faces and on unconditional samples "
                  "(evaluator; SPNN on the samples), largest gaps:\n")
            print(table(rows, ["attribute", "real_evaluator", "samples_evaluator", "samples_spnn"]))
        start = ("DDIM inversion" if q.get("edit_invert") else "re-noising") + f" to t = {q.get('edit_t_start', 400)}"
        if "edit_eta" in q:
            start += f", eta {q['edit_eta']}"
        if own := q.get("edit_starts"):  # attributes whose edits took the SPNN's stored start
            start += "; " + ", ".join(f"{a} from {'DDIM inversion' if v['invert'] else 're-noising'} to t = "
                                      f"{v['t_start']}" for a, v in own.items()) + " (the SPNN's stored start)"
        print(f"\n**Editing** (flip one attribute of a real face, both directions, from {start}; "
              f"{safeguard(q, 1.2)}; success and other attributes kept, by the evaluator; "
              f"bound_met: the SPNN's logit meets the edit bound (within {BOUND_TOL}); (no edit): the same start and "
              "sampler without guidance, all attributes kept):\n")
        print(edit_table(q["editing"]))
        print("\n**Multi-attribute generation** (NLBP, rate with every requested attribute set, by the evaluator):\n")
        print(multi_table(q["multi_attribute"]))
        print()
    if e := load("quality-maxabs1.5"):
        edit_section(e, f"**Editing with the range safeguard at {e['edit_max_abs']} for every face** (same faces, "
                     "start and bounds; `quality.py ... --max-abs 1.5 --name quality-maxabs1.5`; Wearing_Hat and "
                     "Blond_Hair images come out as broken blue images (looked at, 10 faces each); the evaluator "
                     f"scores the Wearing_Hat ones as hats{spnn_of(e)}):")
    if e := load("quality-steps100"):
        edit_section(e, f"**Editing at {e['steps']} steps** (the default of `spnn edit` and the demo; same faces, "
                     f"start, bounds and {safeguard(e, 1.2)}; `quality.py --methods --n 50 "
                     f"--n-edit 50 --steps 100 ... --name quality-steps100`{spnn_of(e)}):")
    if e := load("quality-sdedit"):
        edit_section(e, f"**Editing from re-noising to t = {e['edit_t_start']}, eta {e.get('edit_eta', 0.85)}** "
                     f"(SDEdit start, same faces and bounds, {safeguard(e, 1.2)}; `quality.py "
                     f"--methods --no-invert --t-start 400 --eta 0.85 --name quality-sdedit`{spnn_of(e)}):", multi=False)
    if variants := (sorted(RESULTS.glob("spnn-variant-*.json")) + sorted(RESULTS.glob("prior-variant-*.json"))
                    + sorted(RESULTS.glob("world-*.json"))):
        print("**Model variants** (same evaluator, faces and seeds; `quality.py --spnn PATH` or `--prior PATH`, "
              "`--methods nlbp-learned --n 200 --n-edit 50 --steps 20`, the 8 edits and the first multi set above, "
              "`--name spnn-variant-NAME` / `prior-variant-NAME`; edits met: attributes with success and others kept "
              "both >= 0.90; spnn NAME: phase-1 noise_augment, --scale-bound, epochs if not 10, or gpu-* for the "
              "shipped recipe trained on the H200 with another seed / --hidden 64 / --adaptive-weights, gpu-advE with "
              "adversarial phase-1 inputs of L2 radius E (`adversarial: E` in the config); prior NAME: "
              "the GPU-trained `base` prior with the shipped SPNN; spnn shipped-identity: the shipped SPNN measured as the "
              "-identity rows; spnn recon0 / partner / partner2 / anchor / anchor0.1 / swap "
              "(-identity): the semantic-world recipes `configs/avatars32-NAME.yaml`, measured on fewer edits "
              "(n_edit faces each, the attributes in their JSON; -maxabs1.2: reconstruction with "
              "`--recon-max-abs 1.2`, which leaves g(x) = y unmet: consistency is the mean |g(x) - y|); world v2: "
              "every model on avatar dataset version "
              "2, `scripts/semantic-world-v2.sh`, its own evaluator and test faces; world v2-partner: the partner recipe "
              "there, `scripts/semantic-world-v2-partner.sh`):\n")
        rows = [variant_row(json.loads(v.read_text()), v.stem.replace("-variant-", " ").replace("world-", "world "))
                for v in variants]
        print("(own_nearest, where measured with `--identity`: the rate at which a reconstruction's nearest original "
              "among the 200 test faces is its own, in pixels; 1 means the reconstruction returns the original; hf_ratio: "
              "the reconstructions' mean squared Laplacian over the real faces', above 1 for speckle; natural_: the same "
              "with the natural pseudo-inverse, where measured.)\n")
        print(table(rows, ["variant", "agreement", "all_correct", "consistency", "own_nearest", "hf_ratio",
                           "natural_agreement", "natural_own_nearest", "edits_met", "success_mean",
                           "kept_mean", "multi_all_set", "n_edit", "max_abs"]))
        print()
    if (cd := load("counterfactual-decoding")) and "step_ratio" in cd["rows"][0]:
        print(f"**What the SPNN's step draws** ({cd['n']} test faces a and their counterfactuals b, the same face with "
              f"one part group changed, {machine_of(cd)}, {cd['date']}; `python benchmarks/counterfactual_decoding.py "
              f"--spnn {' '.join(cd['spnn'])}`; the models under runs/ are phase-2 retrainings of version 2 of the shipped SPNN: "
              "cfstep `configs/avatars32-counterfactual-step.yaml`, rself10 the paper's self target for 10 epochs, lab "
              "notes session 27). ratio: MSE(G^-1(g(b), q(a)), b) / MSE(a, b), b's logits decoded with a's latents "
              "(1: the logits draw nothing of the change); step_ratio: the same for one learned NLBP step from a to its "
              "edited logits (a's, the flipped attributes' taken from b), the move an edit makes; step_flipped_shown: "
              "the share of the flipped attributes the judge reads on that step; "
              f"[grid](results/{Path(cd['grid']).name}): rows a, b, then per SPNN the decoding and the step):\n")
        rows = [r for r in cd["rows"] if r["changed"] in ("all", "hair_color", "top", "facial_hair", "mouth")]
        print(table(rows, ["spnn", "changed", "n", "ratio", "step_ratio", "step_agrees_with_b", "step_flipped_shown"]))
        print()
    if ls := load("level_sets"):
        print(f"**Level sets of the SPNN** (logit >= {ls['logit']:g} on {ls['rows'][0]['faces']} {ls['split']} faces "
              f"without the attribute each, {machine_of(ls)}; `python benchmarks/level_sets.py --grid "
              f"docs/level-sets.png`): one NLBP step from the face against the nearest in-range image with the same "
              f"logits:\n")
        print(table(ls["rows"], ["attribute", "image", "median_max_abs", "rms_change", "success", "others_kept"]))
        print()
    if (qi := load("quality-identity")) and qi.get("identity"):
        print(f"**Does reconstruction from semantics return the original face?** ({qi['n']} test faces, {qi['steps']} "
              f"steps, {machine_of(qi)}, {qi['date']}; own_nearest: the rate at which a reconstruction's nearest original "
              f"among the {qi['n']} is its own, in pixels and in the evaluator's features, chance {1 / qi['n']:.3f}; "
              "rmse_same_attributes_real: from the original to the nearest other training face with the same 22 "
              "labels, the distance to another person with the same attributes; rmse_between_seeds: two seeds of "
              "the same reconstruction; images in [-1, 1]; the row (real, same labels), where measured: a random "
              "real training face with the original's labels, what returning another person with the same "
              "attributes scores):\n")
        print(table(qi["identity"], list(qi["identity"][0])))
        print()
    for name in ("quality-paper-edits", "quality-paper-edits-steps100"):
        if not (pe := load(name)):
            continue
        methods = " ".join(r["method"] for r in pe["reconstruction"])
        edit_section(pe, f"**The paper's edits at {pe['steps']} steps** (its single-attribute rows Eyeglasses, Smiling, "
                     f"Bangs, Gray_Hair, then the other hair and head attributes; its multi-attribute sets mapped to the "
                     f"built-in attributes; {pe['n_edit']} faces each, shipped models, "
                     f"{safeguard(pe, 'auto')}, {machine_of(pe)}, {pe['date']}; `quality.py --methods "
                     f"{methods} --identity --n {pe['n']} --n-edit {pe['n_edit']} --steps {pe['steps']}{reproduce_flags(pe)} "
                     f"--name {name}`; "
                     "nlbp-learned@B: `--latent-step B`; identity row (real, same labels): a random real training face "
                     "with the original's labels, what returning another person with the same attributes scores):")
        if pe.get("identity"):
            print(table(pe["reconstruction"], ["method", "agreement", "all_correct", "consistency_max"]))
            print()
            print(table(pe["identity"], list(pe["identity"][0])))
            print()
    for name in ("quality-implied-20", "quality-implied-100"):
        if not (qi := load(name)):
            continue
        edit_section(qi, f"**Edits that set what they imply, at {qi['steps']} steps** (`edit(..., implied=True)`, the "
                     "default: the attributes that the named one excludes or comes with in the SPNN's labels are bound "
                     "too, `spnn.implications`; others_kept: all other attributes, others_kept_free: those neither "
                     "named nor implied, implied_set: implied attributes at their implied value; the paper's rows and "
                     f"sets, the same {qi['n_edit']} test faces and seeds as the tables above, {safeguard(qi, 'auto')}, "
                     f"judge {judge_of(qi)}, {machine_of(qi)}, {qi['date']}; `quality.py --methods --n {qi['n']} --n-edit {qi['n_edit']} "
                     f"--steps {qi['steps']}{reproduce_flags(qi)} --name {name}`; `--no-implied` gives the tables above"
                     + (f"; {', '.join(qi['edit_starts'])} from the start the SPNN stores" if qi.get("edit_starts")
                        else "") + "):")
    for steps in (20, 100):  # the same edits confined to the SPNN's own region, side by side with the whole image
        base, reg = load(f"quality-implied-{steps}"), load(f"quality-region-{steps}")
        if not (base and reg):
            continue
        rows = [{"attribute": b["attribute"], "success": f"{b['success']:.2f} -> {r['success']:.2f}",
                 "others_kept": f"{b['others_kept']:.3f} -> {r['others_kept']:.3f}",
                 **({"rmse_to_original": f"{b['rmse_to_original']:.3f} -> {r['rmse_to_original']:.3f}"}
                    if "rmse_to_original" in b else {})}
                for b, r in zip(base["editing"], reg["editing"]) if b["attribute"] != "(no edit)"]
        print(f"**Edits in a region, at {steps} steps** (whole image -> confined to where the SPNN's own step moves "
              f"pixels by at least {reg['edit_region']:g} of its largest move, `edit(..., region={reg['edit_region']:g})`; "
              f"the same {reg['n_edit']} test faces and seeds, {machine_of(reg)}, {reg['date']}; `quality.py --methods "
              f"--n {reg['n']} --n-edit {reg['n_edit']} --steps {steps} --edit-region {reg['edit_region']:g} "
              f"--name quality-region-{steps}`; generation has no region, its sets are those above):\n")
        print(table(rows, list(rows[0])))
        print()
    if val := [(t, r) for t in ("0.05", "0.1", "0.15", "0.25") if (r := load(f"region-val-{t}"))]:
        base = load("editlam-val-gentle")  # the defaults on the same validation faces
        runs = ([("off", base)] if base else []) + val
        rows = [{"region": t, **{e["attribute"]: f"{e['success']:.2f} / {e['others_kept']:.3f}" for e in r["editing"]
                                 if e["attribute"] != "(no edit)"}} for t, r in runs]
        r = val[0][1]
        print(f"**Choosing the region threshold** ({r['n_edit']} validation faces per edit, {r['steps']} steps, success / "
              f"others kept, {machine_of(r)}, {r['date']}; `quality.py --split val --methods --n 50 --n-edit 50 --steps "
              f"{r['steps']} --edits Eyeglasses Smiling Bangs Gray_Hair --edit-region T --multi Blond_Hair Smiling "
              "--name region-val-T`; off: `editlam-val-gentle`, the defaults):\n")
        print(table(rows, list(rows[0])))
        print()
    keep_runs = [("defaults", ("editlam-val-gentle", "defaults-val-more"), ""),
                 ("keep 0.5", ("keep-val-0.5", "keep-val-0.5-more"), "--edit-keep 0.5"),
                 ("keep 1", ("keep-val-1",), "--edit-keep 1"), ("keep 2", ("keep-val-2",), "--edit-keep 2"),
                 ("defaults, 100 steps", ("keep-val-off-100",), "--steps 100 --edit-keep off"),
                 ("keep 0.5, 100 steps", ("keep-val-0.5-100",), "--steps 100 --edit-keep 0.5"),
                 ("keep 1, t_start 700", ("keep-val-1-700",), "--edit-keep 1 --t-start 700"),
                 ("keep 2, re-noised from 500", ("keep-val-2-noinv500",), "--edit-keep 2 --no-invert --t-start 500"),
                 ("t_start 800", ("bangs-start-val-800",), "--t-start 800"),
                 ("keep 2, t_start 800", ("keep-val-2-bangs800",), "--edit-keep 2 --t-start 800"),
                 ("travel 2,2, keep 2", ("keep-val-2-travel22",), "--edit-travel 2 2 --edit-keep 2"),
                 ("travel 1,2", ("travel12-val",), "--edit-travel 1 2"),
                 ("travel 1,2, keep 0.5", ("travel12-keep0.5-val",), "--edit-travel 1 2 --edit-keep 0.5")]
    found = [(label, runs, flags) for label, names, flags in keep_runs if (runs := [r for n in names if (r := load(n))])]
    if len(found) > 1:
        attrs = ["Eyeglasses", "Smiling", "Bangs", "Gray_Hair", "Black_Hair", "Blond_Hair", "Bald", "Wearing_Hat"]
        rows = []
        for label, runs, flags in found:
            got = {e["attribute"]: e for r in runs for e in r["editing"]}
            rows.append({"setting": label, "flags": flags or "(none)",
                         **{a: f"{got[a]['success']:.2f} / {got[a]['others_kept']:.3f}" if a in got else ""
                            for a in attrs}})
        r = found[-1][1][0]
        print(f"**Keeping the other attributes** (`edit(..., keep=MARGIN)`: every attribute neither named nor implied "
              "bound on the side of the original's logit, at most MARGIN deep; success / others kept on "
              f"{r['n_edit']} validation faces per edit, 20 steps unless said, {machine_of(r)}, 2026-12-04 (defaults) "
              f"and {r['date']}; `quality.py --split val --methods --n 50 --n-edit 50 --steps 20 --edits ... FLAGS "
              "--multi Eyeglasses`, with `--edit-keep off` for the rows without keep now that the shipped SPNN stores "
              "margins; it stores 0.5 for the attributes whose min(success, others kept) fell with it at neither 20 nor "
              "100 steps: Eyeglasses and Wearing_Hat):\n")
        print(table(rows, ["setting", "flags", *attrs]))
        print()
    for name in ("generation-travel-20", "generation-travel-20-v3", "generation-travel-20-h64-full",
                 "generation-travel-100", "generation-travel-100-v3", "generation-travel-100-h64-full"):
        if not (g := load(name)):
            continue
        print(f"**Time travel in multi-attribute generation, {g['steps']} steps** (all named attributes set, by the "
              f"evaluator {judge_of(g)}; {g['n']} samples per set from seed {g['seed']}, selection seeds apart from the tables' "
              f"10000..; {machine_of(g)}{spnn_of(g)}, {g['date']}; `python benchmarks/generation.py --travels "
              f"{' '.join(r['travel'] for r in g['rows'])} --n {g['n']} --steps {g['steps']} --name {name}`):\n")
        print(table(g["rows"], [c for c in g["rows"][0] if c != "s_per_image"]))  # calls: the cost, on any machine
        print()
    prior_fidelity_section()
    range_rule_section()
    edit_groups_section()
    judged_section()
    for name in ("quality-labels-20", "quality-labels-100"):
        if not (ql := load(name)):
            continue
        methods = " ".join(r["method"] for r in ql["reconstruction"])
        latents = ql.get("edit_latents_from", "logits")
        print(f"**Latents from the labels at {ql['steps']} steps** (`SPNNOperator(latents_from=\"labels\")`, "
              f"method suffix +labels; {ql['n']} test faces, shipped models, judge {judge_of(ql)}, {machine_of(ql)}, "
              f"{ql['date']}; "
              f"`quality.py --methods {methods} --identity --n {ql['n']} --n-edit {ql['n_edit']} --steps {ql['steps']}"
              f"{' --latents-from labels' if latents == 'labels' else ''}{reproduce_flags(ql)} --name {name}`):\n")
        print(table(ql["reconstruction"], ["method", "agreement", "all_correct", "consistency_max", "s_per_image"]))
        print()
        print(table(ql["identity"], list(ql["identity"][0])))
        print()
        if ql.get("editing"):
            edit_section(ql, f"Edits and generation of the same run, latents from the {latents} "
                         f"({safeguard(ql, 'auto')}):")
    if it := load("identity-tradeoff-labels"):
        print(f"**Choosing the label temperature** ({it['n']} {it.get('split', 'test')} faces, {it['steps']} steps, "
              f"{machine_of(it)}, {it['date']}; `identity_tradeoff.py --split {it.get('split', 'test')} --latent-steps "
              f"{' '.join(f'{b:g}' for b in it['latent_steps'])} --label-temperatures "
              f"{' '.join(f'{t:g}' for t in it['label_temperatures'])} --name identity-tradeoff-labels`):\n")
        print(table(it["rows"], ["method", "agreement", "own_nearest_pixels", "own_nearest_features",
                                 "rmse_to_original", "rmse_same_attributes_real", "rmse_between_seeds"]))
        print("\n![agreement against identification](results/identity-tradeoff-labels.png)\n")
    for name in ("quality-labels-slack-20", "quality-labels-slack-100", "quality-labels-slack-travel-100"):
        if not (qs := load(name)):
            continue
        method = qs["identity"][0]["method"]
        travel = "travel" in method.split("+")
        with_travel = f", time travel {tuple(qs['recon_travel'])}" if travel else ""
        travel_flag = f" --recon-travel {' '.join(map(str, qs['recon_travel']))}" if travel else ""
        print(f"**Latents from the labels with slack {qs['recon_slack']:g}{with_travel} at {qs['steps']} steps** (NLBP "
              f"aims at y +- slack before the last step, at y at the end; {qs['n']} test faces, judge {judge_of(qs)}, "
              f"{machine_of(qs)}, "
              f"{qs['date']}; `quality.py --methods {method} --identity --n {qs['n']} --n-edit 0 --steps {qs['steps']} "
              f"--recon-slack {qs['recon_slack']:g}{travel_flag} --name {name}`):\n")
        print(table(qs["identity"], list(qs["identity"][0])))
        print()
    recon_recipes_section()
    if slack_runs := [r for v in ("0", "0.5", "1") if (r := load(f"slack-val-{v}"))]:
        rows = [{"slack": r["recon_slack"], **{k: v for k, v in r["identity"][0].items() if k != "method"}}
                for r in slack_runs]
        r = slack_runs[0]
        print(f"**Choosing the slack** ({r['n']} val faces, {r['steps']} steps, latents from the labels, {machine_of(r)}, "
              f"{r['date']}; `quality.py --split val --methods nlbp-learned+labels --identity --n-edit 0 --steps "
              f"{r['steps']} --recon-slack S --name slack-val-S`; rule: the highest agreement with own nearest "
              "<= 0.10, the smaller slack on a tie):\n")
        print(table(rows, list(rows[0])))
        print()
    runs = [(p, q) for p in ("float32", "bfloat16") if (q := load(f"quality-precision-{p}"))]
    if runs:
        rows = []
        for p, q in runs:
            rec = next(r for r in q["reconstruction"] if r["method"] == "nlbp-learned")
            row = {"precision": p, "agreement": rec["agreement"], "all_correct": rec["all_correct"],
                   "s_per_image": rec["s_per_image"]}
            row |= {e["attribute"]: f"{e['success']:.2f} / {e['others_kept']:.3f}" for e in q["editing"]
                    if e["attribute"] != "(no edit)"}
            row |= {m["attributes"]: f"{m['all_set']:.2f}" for m in q.get("multi_attribute", [])}
            rows.append(row)
        q = runs[0][1]
        print(f"**Precision of the prior's UNet** (NLBP learned; reconstruction on {q['n']} test faces, edits: success / "
              f"others kept on 50 faces each, sets: all set, {q['steps']} steps, {machine_of(q)}, {q['date']}; the SPNN "
              f"runs in float32 in both, the UNet in bfloat16 as a copy with bfloat16 weights{spnn_of(q)}):\n")
        print(table(rows, list(rows[0])))
        print()
    if js := load("judge-spread"):
        print(f"**Judges of the same edits** (the paper's single-attribute edits of {js['n']} {js['split']} faces, each "
              f"flipped in the direction its labels allow, and {js['n']} samples of {' + '.join(js['set'])}, made "
              f"once, {js['steps']} steps, shipped models; success / others kept, the set: all set; "
              f"`benchmarks/judge_spread.py --judges {' '.join(r['judge'] for r in js['rows'])}`; {machine_of(js)}, "
              f"{js['date']}). r3 is the default, the mean of five CNNs trained alike on labels revision 3 from seeds "
              "0-4 (`runs/evaluator32-r3s*`: `spnn evaluator train --data avatars --seed S`); the single CNNs show "
              "how far one judge's verdict on edited faces moves with its seed:\n")
        rows = [{"judge": r["judge"], **{a: f"{r[a + ' success']:.3f} / {r[a + ' kept']:.3f}" for a in js["edits"]},
                 " + ".join(js["set"]): f"{r[' + '.join(js['set'])]:.3f}"} for r in js["rows"]]
        print(table(rows, list(rows[0])))
        print()
    if c := load("evaluator-casts"):
        print(f"**Colour casts** ({c['n']} real test faces with a global cast x + a c, clamped; agreement with the true "
              f"labels (revision {c.get('labels_revision', 2)}), and the attribute whose positive rate rises most; `benchmarks/evaluator_casts.py "
              f"--evaluators {' '.join(dict.fromkeys(r['evaluator'] for r in c['rows']))}`; {machine_of(c)}, "
              f"{c['date']}):\n")
        print(table(c["rows"], ["evaluator", "cast", "strength", "agreement", "most_risen", "rise"]))
        print()
    if sv := load("solvers"):
        print(f"**Solvers side by side** ({sv['settings']['n']} held-out faces per problem, {machine_of(sv)}, {sv['date']}; "
              "quality: PSNR in dB, or the evaluator's attribute agreement for semantics; consistency: |A(x) - y| / |y| "
              "with the true operator; calls per image; peak_mb: the process's peak resident memory; settings: "
              + "; ".join(f"{k} {v}" for k, v in sv["settings"].items() if k not in ("n", "daps")) + "):\n")
        print(table(sv["rows"], ["problem", "method", "budget", "psnr_db", "agreement", "consistency", "network_calls",
                                 "operator_calls", "s_per_image", "peak_mb"]))
        print("\n![quality against seconds per image](results/solvers.png)\n")
    for name in ("speed", "speed-traces-b16", "speed-traces-b1", "speed-spnn-v2", "speed-spnn-v3", "speed-gpu",
                 "speed-gpu-pinned"):  # CPU (the last two: the two SPNN versions on one machine, one day), then GPU
        if not (s := load(name)):
            continue
        graphs = any(r.get("graphs") == "on" for r in s["rows"])
        print(f"**Speed** ({s['steps']} steps, fastest of {s.get('repeats', 1)} interleaved runs, {machine_of(s)}, "
              f"{s['date']}" + ("; graphs: recorded calls (on: CUDA-graph replays on a GPU, the bfloat16 UNet's "
                                "frozen trace on a CPU) or plain calls (off), vs_plain the ratio, "
                                "max_diff the largest pixel difference of the images on against off, and of two "
                                "plain runs" if graphs else "") + "):\n")
        columns = ["method", "precision", "batch", "seconds", "s_per_image_100_steps", "vs_float32", "vs_unconditional",
                   "vs_floor", "vs_floor_in_loop", "vs_nlbp_natural", "peak_mb"]
        if graphs:
            columns[2:2] = ["graphs"]
            columns += ["vs_plain", "max_diff_vs_plain", "max_diff_plain_rerun"]
        rows = [r for r in s["rows"] if not (graphs and r["method"].startswith("floor"))]
        print(table(rows, [c for c in columns if any(c in r for r in rows)]))
        if s.get("throughput_100_steps"):
            print("\n100-step sampling of a whole batch at once:\n")
            print(table(s["throughput_100_steps"], ["method", "batch", "precision", "graphs", "seconds",
                                                    "images_per_second"]))
        for key, c in s.get("components", {}).items():
            batch, precision, *rest = key.split("-")
            spnn = c["complete_s"] + c["inverse_s"]
            setting = f"batch {batch}, UNet in {precision}" + (f", graphs {rest[-1]}" if rest else "")
            projections = (f", NLBP projection natural {c['project_natural_s'] * 1e3:.2f} ms, learned "
                           f"{c['project_learned_s'] * 1e3:.2f} ms; plain" if "project_natural_s" in c else "")
            print(f"\n{setting}, per step: UNet {c['unet_s'] * 1e3:.2f} ms{projections} SPNN completion "
                  f"{c['complete_s'] * 1e3:.2f} ms + inverse {c['inverse_s'] * 1e3:.2f} ms "
                  f"({spnn / c['unet_s']:.0%} of the UNet), r pass {c['r_pass_s'] * 1e3:.2f} ms"
                  + (f", inverse reusing s and t (natural NLBP) {c['inverse_reuse_s'] * 1e3:.2f} ms"
                     if "inverse_reuse_s" in c else ""))
        print()
    if d := load("degradations"):
        print(f"**Non-linear degradations** ({d['n']} held-out faces, {d['steps']} steps, {machine_of(d)}, {d['date']}):\n")
        print(table(d["rows"], ["degradation", "method", "psnr_db", "consistency", "s_per_image"]))
        print()
    if i := load("identities"):
        rows = [{"identity": k, "float32": v, "float64": i["reports"]["float64"][k]}
                for k, v in i["reports"]["float32"].items()]
        print(f"**Penrose identities of the shipped SPNN** ({i['n']} test faces; relative residuals, mean squares):\n")
        print(table(rows, ["identity", "float32", "float64"]))
        print()
    if t := load("train_throughput"):
        print(f"**Training throughput**, phase 1, batch {t['batch']} ({machine_of(t)}):\n")
        print(table(t["rows"], ["hidden", "parameters", "s_per_step", "images_per_s"]))
        print()
    for name in ("paper_step", "paper_step-gpu"):
        if not (p := load(name)):
            continue
        dps = ""
        if "dps_over_nlbp" in p:
            r = p["dps_over_nlbp"]
            dps = (f", {p['peak_gib_dps']:.2f} GiB with the DPS step; a DPS step costs {r['natural']:.2f}x an NLBP "
                   f"step (natural), {r['learned']:.2f}x (learned)")
        print(f"**One 256x256 NLBP step in the paper's setting**, random weights, batch {p['batch']} ({machine_of(p)}, "
              f"{p['date']}), peak memory {p['peak_gib']:.2f} GiB{dps}:\n")
        print(table(p["rows"], ["part", "seconds"]))
        if p.get("sampling"):
            print(f"\nWhole sampling runs at 256x256 ({p['sampling_steps']} steps, scaled to 100; peak memory of each "
                  "run):\n")
            print(table(p["sampling"], ["method", "precision", "graphs", "batch", "s_per_image_100_steps",
                                        "vs_unconditional", "vs_plain", "peak_gib"]))
        print()


PAGE_HEAD = """# Benchmarks

Generated by `python benchmarks/report.py --out docs/benchmarks.md` from the JSON files in
`benchmarks/results/`; each table names the machine and date of its run. The judge (the evaluator that decides
success and agreement) is r3 since 2026-12-07 (session 26): five CNNs of the shipped recipe trained from seeds 0-4 on
the built-in faces' labels revision 3 (the parts as drawn), their logits averaged, because one CNN's verdicts on
edited faces move by up to 0.28 with its training seed (table "Judges of the same edits"). Before it, r2 (one CNN on
revision 2, from the morning of 2026-12-07) and r1 (one CNN on revision 1, which misses golden blond and some red
hair; [training](training.md)); tables of runs that name no judge were judged by r1; the headline tables name theirs. The shipped SPNN is version 3 since 2026-12-07 (session 28, hidden 64); tables of runs made with an earlier one name it beside their machine ("SPNN v2: ..."; the first table compares the two on the headline runs), and reproduce with `--spnn` and that file added to their command. `quality.py` runs on validation faces (`--split val`) generate their multi-attribute sets from the selection seeds 40000.. since 2026-12-07 (session 30); before, they drew the test tables' 10000.., so the set rows of earlier validation runs are test samples. Edit runs made before the shipped SPNN
stored a start for Smiling (2026-12-03, [Sampling](sampling.md#stored-starts)) reproduce with `--t-start 500`
added to their command, and those made before it stored bound levels for Smiling and Gray_Hair (2026-12-03,
[Sampling](sampling.md#stored-levels)) with `--logit 3.5`. `success_95` and `all_set_95`: the 95% interval of
the rate on that many faces or samples (Wilson, `spnn.evaluation.metrics.rate_interval`): on 50 faces a rate of
0.80 reads 0.67-0.89, so two 50-face rows closer than about 0.15 are not told apart. The scripts that write them,
with the settings used:

```bash
python benchmarks/quality.py --n 200 --n-edit 50 --steps 20 --edits Eyeglasses Smiling Bald Wearing_Hat \\
    Sunglasses Mouth_Slightly_Open Pale_Skin Blond_Hair --multi Eyeglasses Smiling Wearing_Hat \\
    --multi Eyeglasses Smiling Mouth_Slightly_Open                    # ~4 min on 2 CPU cores
python benchmarks/speed.py --steps 20 --repeats 5 --no-memory          # ~6 min, float32 and bfloat16 UNet
python benchmarks/quality.py --methods nlbp-learned --n 200 --n-edit 50 --steps 20 --edits Eyeglasses Smiling \\
    Bangs Gray_Hair --multi Pale_Skin Black_Hair --multi Blond_Hair Smiling --multi Eyeglasses Smiling Mustache \\
    --precision bfloat16 --name quality-precision-bfloat16             # and --precision float32: ~8 min each
python benchmarks/degradations.py --n 100 --steps 50                  # ~3 min
python benchmarks/solvers.py --n 8 --plot docs/results/solvers.png    # ~20 min: NLBP, DDNM, DPS, DAPS, RED-diff
python benchmarks/quality.py --methods nlbp-learned nlbp-natural none --identity --n 200 --n-edit 10 --steps 20 \\
    --edits Eyeglasses --multi Eyeglasses --name quality-identity     # ~15 min: does reconstruction return the original?
python benchmarks/identities.py && python benchmarks/spnn_accuracy.py
python benchmarks/paper_step.py --repeats 4                           # ~3 min
bash scripts/gpu-speed.sh OUTDIR      # on a CUDA machine, ~4.5 min on an H200: the GPU tests, speed-gpu, paper_step-gpu
python benchmarks/speed.py --steps 20 --repeats 3 --batches 1 16 --precisions bfloat16 --graphs off on \\
    --throughput 256 --no-memory --name speed-gpu-pinned           # the GPU rerun after the noise change (CUDA)
python benchmarks/speed.py --batches 16 --precisions float32 bfloat16 --graphs off on --repeats 5 --no-memory \\
    --name speed-traces-b16                                            # ~5 min: the CPU's frozen UNet trace, off / on
                                                                       # (and --batches 1 --name speed-traces-b1)
python benchmarks/level_sets.py --grid docs/level-sets.png            # ~30 s
python benchmarks/evaluator_casts.py --evaluators r3 r2 r1 spatial   # ~1 min: are the judges fooled by colour casts?
python benchmarks/judge_spread.py --judges r3 r2 r1 spatial runs/evaluator32-r3s{0,1,2,3,4}/evaluator.safetensors \
    # ~3 min: the same edits scored by every judge (the r3 members: spnn evaluator train --seed S)
python benchmarks/quality.py --methods --n 50 --n-edit 50 --steps 20 --evaluator spatial \\
    --name quality-implied-20-spatial                                  # the same edits, the second judge
python benchmarks/quality.py --methods --n 50 --n-edit 50 --steps 20 --edit-region 0.1 \\
    --name quality-region-20                                           # ~3 min (and --steps 100): edits in a region
python benchmarks/edit_trajectory.py --attribute Gray_Hair --range-rule halve \\
    --name trajectory-Gray_Hair-halve                                  # ~1 min: where along the sampling an edit fails
```

What the figures mean, and what was tried to improve them, is in the [Lab notes](findings.md).
Degradation grids (rows: truth, degraded, NLBP, DPS, DDNM, pinv): [tone curve + 4x pooling](results/degradations-tone-sr4.png),
[black-box camera](results/degradations-camera.png).

"""


def write_page(path: Path) -> None:
    """The Benchmarks page: a header and every table, plus the result pictures copied beside it."""
    import contextlib
    import io
    import shutil

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main()
    pictures = path.parent / "results"
    pictures.mkdir(parents=True, exist_ok=True)
    for png in sorted(RESULTS.glob("*.png")):
        shutil.copyfile(png, pictures / png.name)
    path.write_text(PAGE_HEAD + buf.getvalue())


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="tables of benchmarks/results/")
    ap.add_argument("--out", type=Path, help="write the documentation page here")
    args = ap.parse_args()
    if args.out:
        write_page(args.out)
    else:
        main()
