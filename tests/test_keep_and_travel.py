"""Edits that keep what they do not ask for (`keep_bounds`), and the time travel stored for generation and the
recipes stored for reconstruction."""

import pytest
import torch

from spnn import SPNN
from spnn.errors import ConfigError
from spnn.operators import SPNNOperator, edit_bounds, keep_bounds
from spnn.tasks import edit
from spnn.testing import perturb_

INF = float("inf")


def tiny_net():
    net = SPNN.build((3, 8, 8), (4,), hidden=8, attribute_names=list("ABCD"))
    return perturb_(net, 0.1).requires_grad_(False)


def test_keep_bounds_hold_each_free_coordinate_on_its_side_and_leave_the_named_ones():
    y0 = torch.tensor([[-5.0, 6.0, -0.5, 0.0], [1.0, -3.0, 4.0, 2.0]])
    lower = torch.tensor([[3.0, -INF, -INF, -INF]] * 2)
    upper = torch.tensor([[INF, INF, INF, -1.0]] * 2)
    lo, up = keep_bounds((lower, upper), y0, margin=2.0)
    assert lo.tolist() == [[3.0, 2.0, -INF, -INF], [3.0, -INF, 2.0, -INF]]
    assert up.tolist() == [[INF, INF, -0.5, -1.0], [INF, -2.0, INF, -1.0]]
    assert bool((lo <= torch.where(lower.isinf(), y0, lo)).all())  # the original meets every keeping bound
    # a logit at exactly 0 has no side: it stays free
    assert lo[0, 3] == -INF and up[0, 3] == -1.0


@pytest.mark.parametrize("margin", [0, -1.0, INF, float("nan"), True, "two"])
def test_a_bad_margin_is_refused(margin):
    bounds = (torch.full((1, 4), -INF), torch.full((1, 4), INF))
    with pytest.raises(ConfigError, match="keeping margin must be a finite positive logit"):
        keep_bounds(bounds, torch.zeros(1, 4), margin)


def test_an_edit_with_keep_meets_its_bounds_and_keeps_the_free_logits_on_their_sides():
    from test_diffusion import tiny_prior

    prior, net = tiny_prior(), tiny_net()
    op = SPNNOperator(net)
    x = (torch.rand(3, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 4, "seeds": range(3), "progress": False, "max_abs": None, "t_start": 300, "implied": False}
    y0 = net(x)
    res = edit(prior, op, x, {"B": 1.0}, logit=2.0, keep=1.0, **opts)
    lower, upper = keep_bounds(edit_bounds(op, 3, {"B": 1.0}, 2.0), y0, 1.0)
    assert torch.equal(res.bounds[0], lower) and torch.equal(res.bounds[1], upper)
    y = net(res.images)
    assert float(res.violation(y).max()) < 1e-4
    free = [0, 2, 3]
    assert torch.equal(y[:, free] > 0, y0[:, free] > 0)  # every free attribute on the original's side
    plain = edit(prior, op, x, {"B": 1.0}, logit=2.0, **opts)
    assert torch.isinf(plain.bounds[0][:, free]).all() and torch.isinf(plain.bounds[1][:, free]).all()


def test_keep_is_refused_before_any_work_for_a_bad_margin_or_a_method_without_bounds():
    from test_diffusion import tiny_prior

    prior, op = tiny_prior(), SPNNOperator(tiny_net())
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ConfigError, match="keeping margin"):
        edit(prior, op, x, {"B": 1.0}, logit=2.0, keep=-1, progress=False)
    with pytest.raises(ConfigError, match="dps has no bounds"):
        edit(prior, op, x, {"B": 1.0}, logit=2.0, keep=1.0, method="dps", progress=False)


def test_generation_takes_the_travel_the_calibration_stores_unless_told_otherwise():
    from test_diffusion import tiny_prior

    from spnn.calibration import EditCalibration
    from spnn.tasks import generate

    prior, net = tiny_prior(), tiny_net()
    op = SPNNOperator(net)
    opts = {"steps": 4, "seeds": range(2), "progress": False, "max_abs": None}
    net.edit_calibration = EditCalibration(logit=2.0).to_dict()
    assert generate(prior, op, {"B": 1.0}, 2, **opts).info["travel"] is None  # none stored: none
    net.edit_calibration = EditCalibration(logit=2.0, generation_travel=[1, 2]).to_dict()
    auto = generate(prior, op, {"B": 1.0}, 2, **opts)
    given = generate(prior, op, {"B": 1.0}, 2, travel=(1, 2), **opts)
    plain = generate(prior, op, {"B": 1.0}, 2, travel="off", **opts)
    assert auto.info["travel"] == (1, 2) and torch.equal(auto.images, given.images)
    assert plain.info["travel"] is None and not torch.equal(auto.images, plain.images)
    assert float(auto.violation(net(auto.images)).max()) < 1e-4  # the bounds still hold at the end
    # the authors' loop (a range safeguard: unguarded, its update form can blow this random net up with one thread)
    assert generate(prior, op, {"B": 1.0}, 2, preset="paper", **(opts | {"max_abs": 1.5})).info["travel"] is None
    for bad in ([0, 2], [1], [1, -1], [1, 2, 3, 4, 5], [1.0, 2], "1,2", [True, 2]):
        with pytest.raises(ConfigError, match="generation_travel must be"):
            EditCalibration(generation_travel=bad)
    with pytest.raises(ConfigError, match="travel must be 'auto', 'off' or L,R"):
        generate(prior, op, {"B": 1.0}, 2, travel="1;2", **opts)
    with pytest.raises(ConfigError, match=r"travel must be \(length >= 1"):
        generate(prior, op, {"B": 1.0}, 2, travel=(1,), **opts)


def test_reconstruction_from_labels_takes_the_recipe_stored_for_the_nearest_step_count_unless_told_otherwise():
    from test_diffusion import tiny_prior

    from spnn.calibration import EditCalibration
    from spnn.tasks import reconstruct

    prior, net = tiny_prior(), tiny_net()
    labels, logits = SPNNOperator(net, latents_from="labels"), SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"seeds": range(2), "progress": False}
    recipes = {"4": {"slack": 0.5, "travel": [1, 1]}, "40": {"slack": 1.0, "travel": None}}
    net.edit_calibration = EditCalibration(logit=2.0, reconstruction_recipes=recipes).to_dict()
    auto = reconstruct(prior, labels, x, steps=5, **opts)  # 5 is nearest 4
    given = reconstruct(prior, labels, x, steps=5, slack=0.5, travel=(1, 1), **opts)
    assert auto.info == {"slack": 0.5, "travel": (1, 1), "recipe_steps": 4} and torch.equal(auto.images, given.images)
    assert float((net(auto.images) - auto.targets).abs().max()) < 1e-4  # g(x) = y still holds at the end
    plain = reconstruct(prior, labels, x, steps=5, slack="off", travel="off", **opts)
    assert plain.info["slack"] is None and plain.info["travel"] is None and not torch.equal(plain.images, auto.images)
    half = reconstruct(prior, labels, x, steps=5, travel="off", **opts)  # each "auto" on its own
    assert half.info == {"slack": 0.5, "travel": None, "recipe_steps": 4}
    assert reconstruct(prior, labels, x, steps=20, **opts).info == {"slack": 1.0, "travel": None, "recipe_steps": 40}
    # where it was not measured: none (the logits' latents, as in the paper's loop; another method)
    assert reconstruct(prior, logits, x, steps=5, **opts).info["recipe_steps"] is None
    assert reconstruct(prior, labels, x, steps=5, method="dps", **opts).info["slack"] is None
    net.edit_calibration = EditCalibration(logit=2.0).to_dict()  # none stored: none
    assert reconstruct(prior, labels, x, steps=5, **opts).info == {"slack": None, "travel": None, "recipe_steps": None}
    bad_recipes = [({"20": {"slack": 0.5}}, "must be {'slack'"),
                   ({"twenty": {"slack": 0.5, "travel": None}}, "key 'twenty' must be a step count"),
                   ({"20": {"slack": -1, "travel": None}}, "finite positive"),
                   ({"20": {"slack": True, "travel": None}}, "finite positive"),
                   ({"20": {"slack": None, "travel": [0, 2]}}, "travel of the 20-step"), ([1], "must be a mapping")]
    for bad, match in bad_recipes:
        with pytest.raises(ConfigError, match=match):
            EditCalibration(reconstruction_recipes=bad)
    with pytest.raises(ConfigError, match="slack must be 'auto', 'off' or a number >= 0, got 'wide'"):
        reconstruct(prior, labels, x, steps=5, slack="wide", **opts)
    with pytest.raises(ConfigError, match="daps has its own loop without time travel"):
        reconstruct(prior, labels, x, steps=5, method="daps", travel=(1, 1), **opts)


def test_an_edit_takes_the_keeping_margin_the_calibration_stores_for_its_attributes():
    from test_diffusion import tiny_prior

    from spnn.calibration import EditCalibration

    prior, net = tiny_prior(), tiny_net()
    op = SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 3, "seeds": range(2), "progress": False, "max_abs": None, "t_start": 300, "implied": False}
    net.edit_calibration = EditCalibration(logit=2.0, keeps={"B": 0.5, "C": 1.0}).to_dict()
    auto = edit(prior, op, x, {"B": 1.0}, **opts)
    given = edit(prior, op, x, {"B": 1.0}, keep=0.5, **opts)
    assert auto.info["keep"] == 0.5 and torch.equal(auto.images, given.images)
    assert torch.equal(auto.bounds[0], given.bounds[0]) and torch.equal(auto.bounds[1], given.bounds[1])
    assert edit(prior, op, x, {"B": 1.0}, keep="off", **opts).info["keep"] is None
    assert edit(prior, op, x, {"B": 1.0, "C": 0.0}, **opts).info["keep"] is None  # no shared margin: free
    assert edit(prior, op, x, {"D": 1.0}, **opts).info["keep"] is None  # none stored for D
    assert edit(prior, op, x, {"B": 1.0}, method="dps", **opts).info["keep"] is None  # auto: NLBP only
    for bad in ({"B": 0}, {"B": -1.0}, {"B": float("inf")}, {"B": True}, {"B": "0.5"}, [0.5]):
        with pytest.raises(ConfigError, match="keep"):
            EditCalibration(keeps=bad)
