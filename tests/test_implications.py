"""Label implications: rules from labels, edits and generation that set what the named attributes imply."""

import json

import pytest
import torch

from spnn import SPNN
from spnn.calibration import EditCalibration, calibrate_edits, calibration_of
from spnn.cli.main import main
from spnn.errors import ConfigError
from spnn.implications import check_implications, label_implications, with_implied
from spnn.operators import SPNNOperator, edit_bounds
from spnn.testing import perturb_, write_tiny_models

NAMES = ["Black", "Gray", "Bangs", "Straight", "Smile"]


def labels(n=400, seed=0):
    """Black and Gray exclusive; Bangs implies Straight; Smile independent of everything."""
    g = torch.Generator().manual_seed(seed)
    hair = torch.randint(0, 3, (n,), generator=g)  # 0 black, 1 gray, 2 neither
    bangs = torch.rand(n, generator=g) < 0.2
    straight = bangs | (torch.rand(n, generator=g) < 0.4)
    smile = torch.rand(n, generator=g) < 0.5
    return torch.stack([hair == 0, hair == 1, bangs, straight, smile], 1).float()


def test_rules_from_labels_are_the_exclusions_and_inclusions_of_the_data():
    rules = label_implications(labels(), NAMES)
    assert rules["Black=1"] == {"Gray": 0} and rules["Gray=1"] == {"Black": 0}
    assert rules["Bangs=1"] == {"Straight": 1} and rules["Straight=0"] == {"Bangs": 0}
    assert not any(k.startswith("Smile") for k in rules) and all("Smile" not in v for v in rules.values())
    # a value seen on fewer than min_support images gives no rule
    assert "Bangs=1" not in label_implications(labels()[:40], NAMES, min_support=30)
    # with a looser tolerance a rare co-occurrence counts as exclusion
    noisy = labels()
    noisy[:3, :2] = 1  # three images black and gray: 2% of the black ones
    assert "Gray" not in label_implications(noisy, NAMES).get("Black=1", {})
    assert label_implications(noisy, NAMES, tol=0.05)["Black=1"] == {"Gray": 0}


def test_with_implied_adds_rules_and_names_contradictions():
    rules = label_implications(labels(), NAMES)
    assert with_implied({"Gray": 1, "Smile": 0}, rules) == {"Gray": 1.0, "Smile": 0.0, "Black": 0.0}
    assert with_implied({"Bangs": 1, "Straight": 1}, rules) == {"Bangs": 1.0, "Straight": 1.0}
    with pytest.raises(ConfigError, match="Gray=1 and Black=1 never occur together.*--no-implied"):
        with_implied({"Gray": 1, "Black": 1}, rules)
    with pytest.raises(ConfigError, match="implies X=1 but A=1 implies X=0"):
        with_implied({"A": 1, "B": 1}, {"A=1": {"X": 0}, "B=1": {"X": 1}})


@pytest.mark.parametrize("bad", [[], {"Gray": {"Black": 0}}, {"Gray=2": {"Black": 0}}, {"Gray=1": {"Black": 0.5}},
                                 {"Gray=1": {"Black": True}}, {"Gray=1": ["Black"]}])
def test_malformed_rules_are_refused(bad):
    with pytest.raises(ConfigError, match="implication"):
        EditCalibration(implications=bad)


def test_rules_naming_unknown_attributes_are_refused_at_use():
    check_implications({"Gray=1": {"Black": 0}}, NAMES)
    with pytest.raises(ConfigError, match=r"lacks: \['Purple'\]"):
        check_implications({"Gray=1": {"Purple": 0}}, NAMES)


def tiny_net(rules):
    net = perturb_(SPNN.build((3, 8, 8), (5,), hidden=8, attribute_names=NAMES), 0.1).requires_grad_(False)
    net.edit_calibration = EditCalibration(logit=2.0, implications=rules).to_dict()
    return net


def test_rules_travel_with_the_network(tmp_path):
    rules = label_implications(labels(), NAMES)
    tiny_net(rules).save(tmp_path / "net.safetensors")
    assert calibration_of(SPNN.load(tmp_path / "net.safetensors")).implications == rules


def test_calibration_measures_rules_from_the_labels_given():
    net = tiny_net({})
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    lab = labels(8)
    cal = calibrate_edits(SPNNOperator(net), x, lab, rule_labels=labels())
    assert cal.implications == label_implications(labels(), NAMES) and "from 400 labels" in cal.source
    assert calibrate_edits(SPNNOperator(net), x, lab).implications == {}  # 8 images: below min_support


def test_edit_and_generate_bound_the_implied_attributes():
    from test_diffusion import tiny_prior

    from spnn.tasks import edit, generate

    prior, net = tiny_prior(), tiny_net(label_implications(labels(), NAMES))
    op = SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 2, "seeds": range(2), "progress": False, "max_abs": None}
    res = edit(prior, op, x, {"Gray": 1.0}, t_start=300, **opts)
    assert res.info["implied"] == {"Black": 0.0}
    lower, upper = edit_bounds(op, 2, {"Gray": 1.0, "Black": 0.0}, 2.0)
    assert torch.equal(res.bounds[0], lower) and torch.equal(res.bounds[1], upper)
    y = net(res.images)
    assert float(res.violation(y).max()) < 1e-4 and bool((y[:, 0] <= -2 + 1e-4).all())  # Black off, exactly
    plain = edit(prior, op, x, {"Gray": 1.0}, t_start=300, implied=False, **opts)
    assert plain.info["implied"] == {} and torch.isinf(plain.bounds[1][:, 0]).all()
    gen = generate(prior, op, {"Bangs": 1.0}, 2, **opts)
    assert gen.info["implied"] == {"Straight": 1.0} and bool((gen.bounds[0][:, 3] == 2.0).all())
    with pytest.raises(ConfigError, match="never occur together"):
        generate(prior, op, {"Bangs": 1.0, "Straight": 0.0}, 2, **opts)
    assert generate(prior, op, {"Bangs": 1.0, "Straight": 0.0}, 2, implied=False, **opts).info["implied"] == {}


def test_cli_says_what_it_also_sets_and_no_implied_turns_it_off(tmp_path, capsys):
    root = write_tiny_models(tmp_path / "models")
    net = SPNN.load(root / "spnn.safetensors")
    net.edit_calibration = {**net.edit_calibration, "implications": {"Gray_Hair=1": {"Black_Hair": 0}}}
    net.save(root / "rules.safetensors")
    common = ["--spnn", str(root / "rules.safetensors"), "--prior", str(root / "prior"), "--evaluator", "none",
              "--steps", "2", "--n", "2", "--max-abs", "0"]
    assert main(["generate", "--set", "Gray_Hair=1", *common, "--out", str(tmp_path / "a")]) == 0
    assert "also setting Black_Hair=0" in capsys.readouterr().err
    report = json.loads((tmp_path / "a" / "generate.json").read_text())
    assert report["implied"] == {"Black_Hair": 0.0} and report["constraint_violation_max"] < 1e-4
    assert main(["generate", "--set", "Gray_Hair=1", *common, "--no-implied", "--out", str(tmp_path / "b")]) == 0
    assert "also setting" not in capsys.readouterr().err
    assert json.loads((tmp_path / "b" / "generate.json").read_text())["implied"] == {}
    code = main(["generate", "--set", "Gray_Hair=1", "Black_Hair=1", *common, "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "Gray_Hair=1 and Black_Hair=1 never occur together" in err and "Traceback" not in err
    assert not (tmp_path / "c" / "generate.png").exists()


def test_stored_editing_starts_are_validated_and_used_unless_the_caller_sets_one():
    from test_diffusion import tiny_prior

    from spnn.tasks import edit

    with pytest.raises(ConfigError, match="start of 'Gray' needs t_start in 1..999"):
        EditCalibration(starts={"Gray": {"t_start": 0, "invert": False}})
    with pytest.raises(ConfigError, match="start of 'Gray' must be"):
        EditCalibration(starts={"Gray": {"t_start": 300}})
    cal = EditCalibration(starts={"Gray": {"t_start": 300, "invert": False}, "Bangs": {"t_start": 400, "invert": True}})
    assert cal.start_for(["Gray"]) == {"t_start": 300, "invert": False}
    assert cal.start_for(["Gray", "Bangs"]) == {} and cal.start_for(["Black"]) == {}  # no shared start: defaults
    assert EditCalibration.from_dict(cal.to_dict()) == cal
    prior, net = tiny_prior(), tiny_net({})
    net.edit_calibration = EditCalibration(logit=2.0, starts={"Gray": {"t_start": 300, "invert": False}}).to_dict()
    op = SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 2, "seeds": range(2), "progress": False, "max_abs": None}
    assert edit(prior, op, x, {"Gray": 1.0}, **opts).info["start"] == {"t_start": 300, "invert": False}
    assert edit(prior, op, x, {"Bangs": 1.0}, **opts).info["start"] == {"t_start": 500, "invert": True}
    given = edit(prior, op, x, {"Gray": 1.0}, t_start=200, invert=True, **opts)
    assert given.info["start"] == {"t_start": 200, "invert": True}
    # one of the two given: the other takes the library's default, not the stored start
    assert edit(prior, op, x, {"Gray": 1.0}, t_start=200, **opts).info["start"] == {"t_start": 200, "invert": True}
    assert edit(prior, op, x, {"Gray": 1.0}, invert=True, **opts).info["start"] == {"t_start": 500, "invert": True}
    # the stored start gives the same images as asking for it
    a = edit(prior, op, x, {"Gray": 1.0}, **opts).images
    b = edit(prior, op, x, {"Gray": 1.0}, t_start=300, invert=False, **opts).images
    assert torch.equal(a, b)


def test_stored_bound_levels_are_validated_and_used_unless_the_caller_gives_a_logit():
    from test_diffusion import tiny_prior

    from spnn.tasks import edit, generate

    with pytest.raises(ConfigError, match="level of 'Gray' must be a finite positive number"):
        EditCalibration(levels={"Gray": 0})
    with pytest.raises(ConfigError, match="level of 'Gray' must be a finite positive number"):
        EditCalibration(levels={"Gray": True})
    cal = EditCalibration(logit=2.0, levels={"Gray": 3.0})
    assert EditCalibration.from_dict(cal.to_dict()) == cal
    prior, net = tiny_prior(), tiny_net({"Gray=1": {"Black": 0}})
    net.edit_calibration = EditCalibration(logit=2.0, levels={"Gray": 3.0},
                                           implications={"Gray=1": {"Black": 0}}).to_dict()
    op = SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 2, "seeds": range(2), "progress": False, "max_abs": None}
    res = edit(prior, op, x, {"Gray": 1.0}, t_start=300, **opts)
    assert res.info["levels"] == {"Gray": 3.0, "Black": 2.0}  # the implied one at the calibration's logit
    assert bool((res.bounds[0][:, 1] == 3.0).all()) and bool((res.bounds[1][:, 0] == -2.0).all())
    assert float(res.violation(net(res.images)).max()) < 1e-4  # the stored level, met
    given = edit(prior, op, x, {"Gray": 1.0}, t_start=300, logit=2.5, **opts)  # the caller's logit for all
    assert given.info["levels"] == {"Gray": 2.5, "Black": 2.5} and bool((given.bounds[0][:, 1] == 2.5).all())
    assert generate(prior, op, {"Gray": 1.0}, 2, **opts).info["levels"] == {"Gray": 3.0, "Black": 2.0}
    # a stored level gives the same images as asking for that logit where it is the only bound
    a = edit(prior, op, x, {"Gray": 1.0}, t_start=300, implied=False, **opts).images
    b = edit(prior, op, x, {"Gray": 1.0}, t_start=300, implied=False, logit=3.0, **opts).images
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="the level of 'Gray' = -1"):
        edit_bounds(op, 1, {"Gray": 1.0}, 2.0, levels={"Gray": -1})


def test_a_level_per_direction_takes_precedence_over_the_attributes_level():
    with pytest.raises(ConfigError, match="level key 'Gray=2' must be NAME"):
        EditCalibration(levels={"Gray=2": 3.0})
    with pytest.raises(ConfigError, match="level key '=1' must be NAME"):
        EditCalibration(levels={"=1": 3.0})
    net = tiny_net({})
    op = SPNNOperator(net)
    levels = {"Gray": 3.0, "Gray=0": 5.0, "Black=1": 4.0}
    assert EditCalibration(levels=levels).levels == levels
    lower, upper = edit_bounds(op, 1, {"Gray": 0, "Black": 1}, 2.0, levels=levels)
    assert float(upper[0, 1]) == -5.0 and float(lower[0, 0]) == 4.0  # each direction's own level
    lower, upper = edit_bounds(op, 1, {"Gray": 1, "Black": 0}, 2.0, levels=levels)
    assert float(lower[0, 1]) == 3.0 and float(upper[0, 0]) == -2.0  # the attribute's level, else the logit


def test_a_stored_implied_level_bounds_what_an_edit_implies_unless_the_caller_gives_a_logit():
    from test_diffusion import tiny_prior

    from spnn.tasks import edit, generate

    with pytest.raises(ConfigError, match="implied_levels key 'Gray' must be NAME=1"):
        EditCalibration(implied_levels={"Gray": 3.0})
    with pytest.raises(ConfigError, match="implied level of 'Gray=1' must be a finite positive number"):
        EditCalibration(implied_levels={"Gray=1": -1})
    rules = {"Gray=1": {"Black": 0}}
    cal = EditCalibration(logit=2.0, levels={"Black=0": 4.0}, implied_levels={"Gray=1": 3.0}, implications=rules)
    assert EditCalibration.from_dict(cal.to_dict()) == cal
    prior, net = tiny_prior(), tiny_net(rules)
    net.edit_calibration = cal.to_dict()
    op = SPNNOperator(net)
    black = NAMES.index("Black")
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 2, "seeds": range(2), "progress": False, "max_abs": None}
    res = edit(prior, op, x, {"Gray": 1.0}, t_start=300, **opts)
    assert res.info["levels"] == {"Gray": 2.0, "Black": 3.0}  # the implied level over Black's own 4
    assert bool((res.bounds[1][:, black] == -3.0).all())
    assert float(res.violation(net(res.images)).max()) < 1e-4
    assert edit(prior, op, x, {"Black": 0.0}, t_start=300, **opts).info["levels"] == {"Black": 4.0}  # named: its own
    assert edit(prior, op, x, {"Gray": 1.0}, t_start=300, logit=2.5, **opts).info["levels"] == {"Gray": 2.5,
                                                                                                  "Black": 2.5}
    assert generate(prior, op, {"Gray": 1.0}, 2, **opts).info["levels"] == {"Gray": 2.0, "Black": 3.0}
    # the same images as storing that level for the implied setting itself
    net.edit_calibration = EditCalibration(logit=2.0, levels={"Black=0": 3.0}, implications=rules).to_dict()
    assert torch.equal(res.images, edit(prior, op, x, {"Gray": 1.0}, t_start=300, **opts).images)


def test_edit_and_generate_take_time_travel_and_still_meet_the_bounds():
    from test_diffusion import tiny_prior

    from spnn.tasks import edit, generate

    prior, net = tiny_prior(), tiny_net({})
    op = SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 4, "seeds": range(2), "progress": False, "max_abs": None}
    plain = edit(prior, op, x, {"Gray": 1.0}, t_start=500, **opts)
    travelled = edit(prior, op, x, {"Gray": 1.0}, t_start=500, travel=(1, 1), **opts)
    assert not torch.equal(plain.images, travelled.images)
    assert float(travelled.violation(net(travelled.images)).max()) < 1e-4
    gen = generate(prior, op, {"Gray": 1.0}, 2, travel=(1, 1), **opts)
    assert float(gen.violation(net(gen.images)).max()) < 1e-4


@pytest.mark.parametrize("field", ["starts", "levels", "implied_levels", "keeps", "range_rules",
                                   "reconstruction_recipes"])
def test_every_mapping_field_of_a_calibration_refuses_a_list_by_its_name(field):
    with pytest.raises(ConfigError, match=f"edit calibration: {field} must be a mapping, got list"):
        EditCalibration(**{field: [1]})


@pytest.mark.parametrize("field, stored", [("levels", {"Gray": True}), ("implied_levels", {"Gray=1": True}),
                                           ("keeps", {"Gray": True}),
                                           ("reconstruction_recipes", {"20": {"slack": True, "travel": None}}),
                                           ("levels", {"Gray": "3"}), ("keeps", {"Gray": float("nan")})])
def test_a_stored_level_is_a_plain_finite_positive_number_not_a_bool_or_a_string(field, stored):
    with pytest.raises(ConfigError, match="must be a finite positive number"):
        EditCalibration(**{field: stored})
