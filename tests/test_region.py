"""Edits confined to a region: `InRegion` keeps what lies outside, `edit_region` finds where the SPNN's step goes."""

import pytest
import torch

from spnn import SPNN
from spnn.diffusion.guidance import DPS, BackProjection, Guidance, InRegion
from spnn.errors import ConfigError
from spnn.operators import SPNNOperator, edit_bounds
from spnn.tasks import edit, edit_region, full_step
from spnn.testing import perturb_


def tiny_net():
    net = SPNN.build((3, 8, 8), (4,), hidden=8, attribute_names=list("ABCD"))
    return perturb_(net, 0.1).requires_grad_(False)


class Shift(Guidance):
    """A projection that adds 1 everywhere (what the inner guidance did is easy to see)."""

    def __init__(self):
        self.calls = []

    def project(self, x0, t):
        self.calls.append(t)
        return x0 + 1


def test_outside_the_region_every_step_but_the_last_returns_the_reference():
    ref = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    region = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    region[:, :, 1:3, 1:3] = 1
    region[1, :, 0, 0] = 0.25  # a soft value: a quarter of the way from the reference
    g = InRegion(Shift(), ref, region)
    x0 = torch.randn_like(ref)
    out = g.project(x0, 50)
    inside = region.expand_as(ref) == 1
    assert torch.equal(out[inside], (x0 + 1)[inside])
    assert torch.equal(out[region.expand_as(ref) == 0], ref[region.expand_as(ref) == 0])
    assert torch.allclose(out[1, :, 0, 0], ref[1, :, 0, 0] + 0.25 * (x0[1, :, 0, 0] + 1 - ref[1, :, 0, 0]))
    assert torch.equal(g.project(x0, 0), x0 + 1)  # the last step is the inner guidance's alone
    assert g.inner.calls == [50, 0]


def test_a_region_of_ones_changes_nothing():
    net = tiny_net().double()
    op = SPNNOperator(net)
    x = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1) * 0.5
    bounds = edit_bounds(op, 3, {"B": 1.0}, 2.0, dtype=torch.float64)
    plain = BackProjection(op, None, lam=0.5, bounds=bounds)
    confined = InRegion(BackProjection(op, None, lam=0.5, bounds=bounds), x, torch.ones(3, 1, 8, 8))
    for t in (300, 0):
        assert torch.equal(confined.project(x, t), plain.project(x, t))


@pytest.mark.parametrize("region, match", [
    (torch.ones(2, 1, 5, 4), "does not fit images"),
    (torch.ones(1, 8, 8), "does not fit images"),
    (torch.full((2, 1, 4, 4), 1.5), r"in \[0, 1\]"),
    (torch.full((2, 1, 4, 4), float("nan")), r"in \[0, 1\]"),
])
def test_bad_regions_are_refused(region, match):
    with pytest.raises(ConfigError, match=match):
        InRegion(Guidance(), torch.zeros(2, 3, 4, 4), region)


def test_gradient_guidance_and_another_batch_are_refused():
    net = tiny_net()
    with pytest.raises(ConfigError, match="gradient methods have no projection"):
        InRegion(DPS(SPNNOperator(net), torch.zeros(2, 4)), torch.zeros(2, 3, 8, 8), torch.ones(2, 1, 8, 8))
    g = InRegion(Guidance(), torch.zeros(2, 3, 4, 4), torch.ones(2, 1, 4, 4))
    with pytest.raises(ConfigError, match="a region for 2 images used to sample 3"):
        g.begin(3)


def test_the_region_is_where_the_step_moves_pixels_grown_by_one():
    x = torch.zeros(2, 3, 16, 16)
    stepped = x.clone()
    stepped[0, :, 4:6, 8:10] = 1.0  # image 0: a 2 x 2 move
    stepped[0, :, 12, 2] = 0.1  # and a small one, below the threshold
    stepped[1] = 0.3  # image 1: everything moves alike
    m = edit_region(x, stepped, threshold=0.6)
    assert m.shape == (2, 1, 16, 16) and set(m.unique().tolist()) <= {0.0, 1.0}
    # the 3 x 3 average of the 2 x 2 move peaks (4/9) on the block, its edges reach half (2/9): the block alone,
    # grown by one pixel: 4 x 4
    block = torch.zeros(16, 16)
    block[4:6, 8:10] = 1
    assert torch.equal(edit_region(x, stepped, 0.6, grow=0)[0, 0], block)
    grown = torch.zeros(16, 16)
    grown[3:7, 7:11] = 1
    assert torch.equal(m[0, 0], grown)
    assert bool(m[1].eq(1).all())  # relative to each image's own largest move
    assert not edit_region(x, x, 0.5).any()  # a step that moves nothing: nothing to change
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ConfigError, match="region threshold"):
            edit_region(x, stepped, bad)


def test_a_confined_edit_meets_its_bounds_and_keeps_the_region_it_was_given():
    from test_diffusion import tiny_prior

    prior, net = tiny_prior(), tiny_net()
    op = SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 4, "t_start": 500, "seeds": range(2), "progress": False, "max_abs": None, "logit": 4.0}
    free = edit(prior, op, x, {"B": 1.0}, **opts)
    ones = edit(prior, op, x, {"B": 1.0}, region=torch.ones(2, 1, 8, 8), **opts)
    assert torch.equal(ones.images, free.images)  # nothing kept: the same edit
    confined = edit(prior, op, x, {"B": 1.0}, region=0.8, **opts)  # a random SPNN's step moves most pixels
    bounds = edit_bounds(op, 2, {"B": 1.0}, 4.0)
    region = confined.info["region"]
    assert torch.equal(region, edit_region(x, full_step(op, x, bounds), 0.8)) and 0 < float(region.mean()) < 1
    assert float(confined.violation(net(confined.images)).max()) < 1e-4  # the last step is exact
    assert not torch.equal(confined.images, free.images)
    for bad, match in [(2.0, "region must be 'auto', 'off' or a fraction"), ("wide", "region must be"),
                       (torch.ones(3, 1, 8, 8), "does not fit images")]:
        with pytest.raises(ConfigError, match=match):
            edit(prior, op, x, {"B": 1.0}, region=bad, **opts)
    with pytest.raises(ConfigError, match="dps has none"):
        edit(prior, op, x, {"B": 1.0}, region=0.5, method="dps", **opts)


def test_the_calibration_stores_the_region_and_auto_takes_it():
    from test_diffusion import tiny_prior

    from spnn.calibration import EditCalibration

    prior, net = tiny_prior(), tiny_net()
    op = SPNNOperator(net)
    x = (torch.rand(2, 3, 8, 8) * 2 - 1) * 0.5
    opts = {"steps": 3, "t_start": 400, "seeds": range(2), "progress": False, "max_abs": None}
    net.edit_calibration = EditCalibration(logit=4.0).to_dict()
    assert "region" not in edit(prior, op, x, {"B": 1.0}, **opts).info  # none stored: the whole image
    net.edit_calibration = EditCalibration(logit=4.0, region=0.8).to_dict()
    auto = edit(prior, op, x, {"B": 1.0}, **opts)
    given = edit(prior, op, x, {"B": 1.0}, region=0.8, **opts)
    assert torch.equal(auto.info["region"], given.info["region"]) and torch.equal(auto.images, given.images)
    assert "region" not in edit(prior, op, x, {"B": 1.0}, region="off", **opts).info
    assert "region" not in edit(prior, op, x, {"B": 1.0}, method="dps", **opts).info  # auto: NLBP only
    for bad in (0, 1.0, -0.2, True, "0.5"):
        with pytest.raises(ConfigError, match="region must be a fraction"):
            EditCalibration(region=bad)

