import pytest
import torch
from safetensors.torch import load_file

from spnn import SPNN
from spnn.data.common import ArrayDataset
from spnn.diffusion.convert_ddim import convert_ddim_state_dict, infer_ddim_config, load_ddim_checkpoint
from spnn.diffusion.guidance import DPS, BackProjection, ClassifierGuidance, paper_lam
from spnn.diffusion.prior import Prior, build_unet, resolve_precision
from spnn.diffusion.sampler import sample
from spnn.diffusion.schedule import ddim_timesteps, time_travel
from spnn.diffusion.train import train_prior
from spnn.errors import CheckpointError
from spnn.operators import AveragePool, SPNNOperator, edit_bounds
from spnn.testing import perturb_
from spnn.training.loop import LoopConfig

DATA = "tests/data/"


def tiny_prior(size=8):
    torch.manual_seed(0)
    return Prior(build_unet(size, block_out_channels=(8, 8, 8), norm_num_groups=4))


def tiny_net():
    return perturb_(SPNN.build((3, 8, 8), (5,), hidden=8), 0.1).requires_grad_(False)  # frozen, as in sampling


def test_schedules():
    assert ddim_timesteps(1000, 100)[:3] == [990, 980, 970] and ddim_timesteps(1000, 100)[-1] == 0
    assert ddim_timesteps(1000, 10, t_start=500) == [500, 400, 300, 200, 100, 0]
    assert time_travel([3, 2, 1, 0], 2, 1) == [3, 2, 1, 2, 3, 2, 1, 0]
    assert paper_lam(600) == 0.5 and paper_lam(590) == 1.0


@pytest.mark.parametrize("mode", ["learned", "natural"])
def test_nlbp_sampling_is_consistent_at_the_end(mode):
    prior, net = tiny_prior(), tiny_net()
    y = torch.randn(3, 5)
    out = sample(prior, 3, steps=10, guidance=BackProjection(net, y, mode=mode), progress=False).images
    assert float((net(out) - y).abs().max().detach()) < 1e-4
    assert float(((net(out) - y).norm() / y.norm()).detach()) < 1e-5


def test_box_bounds_are_met_and_inside_points_do_not_move():
    prior, net = tiny_prior(), tiny_net()
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    y = net(x).detach()
    lower = torch.full_like(y, -float("inf"))
    upper = torch.full_like(y, float("inf"))
    lower[:, 1], upper[:, 3] = y[:, 1] + 0.5, y[:, 3] - 0.5
    g = BackProjection(net, None, lam=1.0, bounds=(lower, upper), mode="natural")
    # a point already inside the box is a fixed point of the projection
    inside = BackProjection(net, None, lam=1.0, bounds=(y - 1, y + 1), mode="natural")
    with torch.no_grad():
        assert float((inside.project(x, 0) - x).abs().max()) < 1e-5
    out = sample(prior, 3, steps=10, guidance=g, progress=False).images
    yo = net(out)
    assert bool((yo[:, 1] >= lower[:, 1] - 1e-4).all()) and bool((yo[:, 3] <= upper[:, 3] + 1e-4).all())
    with pytest.raises(ValueError, match="either a target y or bounds"):
        BackProjection(net, y, bounds=(lower, upper))


def test_slack_aims_at_the_box_around_y_before_the_last_step_and_at_y_at_the_end():
    prior, net = tiny_prior(), tiny_net()
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    y = net(x).detach()
    near = y + 0.3 * torch.sign(torch.randn_like(y))  # within the slack of every coordinate
    g = BackProjection(net, near, lam=1.0, mode="natural", slack=0.5)
    with torch.no_grad():
        assert float((g.project(x, 50) - x).abs().max()) < 1e-5  # inside the box: a fixed point before t = 0
        assert float((net(g.project(x, 0)) - near).abs().max()) < 1e-4  # the point target at t = 0
    far = y + 2.0
    with torch.no_grad():
        ax = net(BackProjection(net, far, lam=1.0, mode="natural", slack=0.5).project(x, 50))
    assert float((ax - (far - 0.5)).abs().max()) < 1e-4  # the nearest point of the box
    out = sample(prior, 3, steps=10, guidance=BackProjection(net, far, mode="learned", slack=0.5),
                 progress=False).images
    assert float((net(out) - far).abs().max().detach()) < 1e-4
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="slack .* non-negative"):
            BackProjection(net, y, slack=bad)


def test_range_safeguard_halves_the_step_then_keeps_x0():
    net = tiny_net().double()
    x = (torch.rand(4, 3, 8, 8, dtype=torch.float64) * 2 - 1) * 0.5
    y = net(x).detach()
    y_far = y.clone()
    y_far[:2] += 1e3  # unreachable inside the image range for samples 0 and 1
    free = BackProjection(net, y_far, lam=1.0, mode="natural").project(x, 0)
    assert float(free[:2].abs().max()) > 2 and torch.allclose(free[2:], x[2:], atol=1e-8)
    safe = BackProjection(net, y_far, lam=1.0, mode="natural", max_abs=1.2, backtrack=3).project(x, 0)
    assert float(safe.abs().max()) <= 1.2
    assert torch.allclose(safe[2:], free[2:], atol=1e-10)  # in-range samples are untouched by the safeguard
    # a moderate move that only fits after halving: the result is the half step, not x0
    y_mid = y.clone()
    y_mid[0] += 2.0
    full = BackProjection(net, y_mid, lam=1.0, mode="natural").project(x, 0)
    half = BackProjection(net, y_mid, lam=0.5, mode="natural").project(x, 0)
    bound = float(half[0].abs().max()) + 1e-6
    assert float(full[0].abs().max()) > bound
    guarded = BackProjection(net, y_mid, lam=1.0, mode="natural", max_abs=bound).project(x, 0)
    assert torch.allclose(guarded[0], half[0], atol=1e-10)
    per_sample = torch.tensor([1.2, 1e9, 1.2, 1.2], dtype=torch.float64)  # sample 1 unguarded
    mixed = BackProjection(net, y_far, lam=1.0, mode="natural", max_abs=per_sample, backtrack=3).project(x, 0)
    assert float(mixed[0].abs().max()) <= 1.2 and torch.equal(mixed[1], free[1])


def test_range_safeguard_clip_keeps_the_whole_step_within_the_range():
    net = tiny_net().double()
    x = (torch.rand(4, 3, 8, 8, dtype=torch.float64) * 2 - 1) * 0.5
    y = net(x).detach()
    y[:2] += 3.0  # samples 0 and 1 step out of the range, 2 and 3 stay
    free = BackProjection(net, y, lam=1.0, mode="natural").project(x, 0)
    assert float(free[:2].abs().max()) > 1.2 and torch.allclose(free[2:], x[2:], atol=1e-8)
    clipped = BackProjection(net, y, lam=1.0, mode="natural", max_abs=1.2, range_rule="clip").project(x, 0)
    assert torch.equal(clipped, free.clamp(-1.2, 1.2))  # the whole step, clipped; no halving
    per_sample = torch.tensor([1.2, 1e9, 1.2, 1.2], dtype=torch.float64)
    mixed = BackProjection(net, y, lam=1.0, mode="natural", max_abs=per_sample, range_rule="clip").project(x, 0)
    assert torch.equal(mixed[0], free[0].clamp(-1.2, 1.2)) and torch.equal(mixed[1], free[1])
    with pytest.raises(ValueError, match="range_rule = 'cut'"):
        BackProjection(net, y, max_abs=1.2, range_rule="cut")


def test_edit_takes_the_range_rule_the_calibration_stores_for_its_attributes():
    from spnn.calibration import EditCalibration
    from spnn.tasks import edit, generate, parse_range_rule

    prior = tiny_prior()
    net = perturb_(SPNN.build((3, 8, 8), (4,), hidden=8, attribute_names=list("ABCD")), 0.1).requires_grad_(False)
    cal = EditCalibration(reach_limit=2.0, reach_max=40.0, max_abs_reachable=1.1, max_abs=1.05,
                          range_rules={"B": "clip"})
    net.edit_calibration = cal.to_dict()
    op = SPNNOperator(net)
    x = (torch.rand(4, 3, 8, 8) * 2 - 1) * 0.9
    options = {"steps": 3, "t_start": 300, "seeds": range(4), "progress": False, "logit": 8.0}
    auto = edit(prior, op, x, {"B": 1.0}, **options)
    clip, halve = (edit(prior, op, x, {"B": 1.0}, range_rule=r, **options) for r in ("clip", "halve"))
    assert auto.info["range_rule"] == "clip" and halve.info["range_rule"] == "halve"
    assert torch.equal(auto.images, clip.images) and not torch.equal(clip.images, halve.images)
    assert edit(prior, op, x, {"A": 1.0}, **options).info["range_rule"] == "halve"  # none stored for A
    assert generate(prior, op, {"B": 1.0}, 2, steps=2, progress=False).info["range_rule"] == "clip"
    assert generate(prior, op, {"A": 1.0, "B": 1.0}, 2, steps=2, progress=False).info["range_rule"] == "halve"
    with pytest.raises(ValueError, match="range_rule must be 'auto', 'halve' or 'clip'"):
        parse_range_rule("cut")
    with pytest.raises(ValueError, match="the range rule of 'B' must be one of"):
        EditCalibration(range_rules={"B": "cut"})


@pytest.mark.parametrize("logit", [4.0, 8.0])  # reach 1.8-2.3 (M = 1.5 or 1.2), 3.3-4.1 (M = 1.2 or unedited)
def test_edit_range_safeguard_auto_follows_each_images_reach(logit):
    """auto: M = 1.5 for images whose one NLBP step stays within |x| <= 2, 1.2 up to 4, unedited beyond."""
    from spnn.calibration import EditCalibration
    from spnn.tasks import edit, parse_max_abs

    prior = tiny_prior()
    net = perturb_(SPNN.build((3, 8, 8), (4,), hidden=8, attribute_names=list("ABCD")), 0.1).requires_grad_(False)
    cal = EditCalibration(reach_limit=2.0, reach_max=4.0, max_abs_reachable=1.5, max_abs=1.2)
    net.edit_calibration = cal.to_dict()  # the numbers travel with the network
    op = SPNNOperator(net)
    x = (torch.rand(4, 3, 8, 8) * 2 - 1) * 0.5
    options = {"steps": 3, "t_start": 300, "seeds": range(4), "progress": False, "logit": logit}
    auto = edit(prior, op, x, {"B": 1.0}, **options)
    reach = auto.info["reach"]
    step = BackProjection(op, None, lam=1.0, bounds=edit_bounds(op, 4, {"B": 1.0}, logit)).project(x, 0)
    assert torch.allclose(reach, step.flatten(1).abs().amax(1))  # one full NLBP step from each image
    tiers = [reach <= cal.reach_limit, (reach > cal.reach_limit) & (reach <= cal.reach_max), reach > cal.reach_max]
    assert sum(int(t.any()) for t in tiers) == 2  # two of the three cases occur at each logit
    limits = torch.where(tiers[0], cal.max_abs_reachable, cal.max_abs)
    fixed = edit(prior, op, x, {"B": 1.0}, max_abs=limits, **options)
    edited = ~tiers[2]
    assert torch.equal(auto.info["edited"], edited) and "edited" not in fixed.info
    assert torch.equal(auto.images[edited], fixed.images[edited])  # the per-image M
    assert torch.equal(auto.images[~edited], x[~edited])  # out of reach: returned as given
    assert parse_max_abs("auto") == "auto" and parse_max_abs("1.5") == 1.5
    assert parse_max_abs("0") is None and parse_max_abs("off") is None and parse_max_abs(None) is None
    for bad in ("-1", "wide", "nan"):
        with pytest.raises(ValueError, match="max_abs must be 'auto'"):
            parse_max_abs(bad)


def test_movement_budget_stops_projecting_and_resets_per_trajectory():
    """max_move: once a sample's summed RMS change passes the budget it is returned as it came; the sampler's
    begin() resets the budget, so the same guidance gives the same images twice."""
    net = tiny_net().double()
    x = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1) * 0.5
    y = net(x).detach()
    y[:2] += 0.5  # samples 0 and 1 must move, sample 2 is already on target
    plain = BackProjection(net, y, lam=1.0, mode="natural")
    g = BackProjection(net, y, lam=1.0, mode="natural", max_move=1e-3)
    g.begin(3)
    first = g.project(x, 10)
    assert torch.equal(first, plain.project(x, 10))  # nothing spent before the first step
    assert bool((g.moved[:2] > 1e-3).all()) and float(g.moved[2]) < 1e-3
    x2 = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1) * 0.5
    second = g.project(x2, 9)
    assert torch.equal(second[:2], x2[:2])  # spent: left alone
    assert torch.equal(second[2], plain.project(x2, 9)[2])  # within budget: projected as usual
    g.begin(3)
    assert torch.equal(g.project(x2, 9), plain.project(x2, 9))
    prior = tiny_prior().double()
    guide = BackProjection(net, y, lam=1.0, mode="natural", max_move=0.05)
    a = sample(prior, 3, steps=4, guidance=guide, progress=False).images
    b = sample(prior, 3, steps=4, guidance=guide, progress=False).images
    assert torch.equal(a, b)


def test_skip_rule_leaves_close_samples_until_the_last_step():
    net = tiny_net().double()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        y = net(x)
        y[1] += 5.0  # sample 1 is far from its target, sample 0 is at it up to a tiny offset
        y[0] += 1e-3
        g = BackProjection(net, y, lam=1.0, skip_tol=0.11, mode="natural")
        mid, end = g.project(x, 500), g.project(x, 0)
        assert torch.equal(mid[0], x[0])  # skipped: within tolerance
        assert float((net(mid[1:]) - y[1:]).abs().max().detach()) < 1e-8  # projected
        assert float((net(end) - y).abs().max().detach()) < 1e-8  # t = 0: every sample is projected (exact_at_end)
        lazy = BackProjection(net, y, lam=1.0, skip_tol=0.11, mode="natural", exact_at_end=False).project(x, 0)
        assert torch.equal(lazy[0], x[0])


def test_ddnm_linear_restoration_is_consistent():
    prior = tiny_prior()
    op = AveragePool((3, 8, 8), 2)
    y = op.A(torch.rand(2, 3, 8, 8) * 2 - 1)
    out = sample(prior, 2, steps=10, guidance=BackProjection(op, y, lam=1.0), progress=False).images
    assert torch.allclose(op.A(out), y, atol=1e-5)


@pytest.mark.parametrize("guide", ["none", "nlbp", "dps", "travel"])
def test_batch_independence(guide):
    """float32 for projection methods; DPS differentiates through the UNet, whose backward kernels depend on
    the batch size at the 1e-4 level in float32, so it is checked in float64."""
    dtype, tol = (torch.float64, 1e-10) if guide == "dps" else (torch.float32, 1e-5)
    prior, net = tiny_prior().to(dtype), tiny_net().to(dtype)
    y = torch.randn(4, 5, dtype=dtype)

    def g(rows):
        return {"none": None, "nlbp": BackProjection(net, y[rows]), "dps": DPS(net, y[rows]),
                "travel": BackProjection(net, y[rows], mode="natural")}[guide]

    travel = (2, 1) if guide == "travel" else None
    batch = sample(prior, 4, steps=8, guidance=g(slice(0, 4)), seeds=[10, 11, 12, 13], travel=travel,
                   precision="float32", progress=False).images
    alone = sample(prior, 1, steps=8, guidance=g(slice(2, 3)), seeds=[12], travel=travel, precision="float32",
                   progress=False).images
    assert float((batch[2:3] - alone).abs().max()) <= tol


def test_gradient_guidance_moves_towards_target():
    prior, net = tiny_prior(), tiny_net()
    y = net(torch.rand(2, 3, 8, 8) * 2 - 1).detach() * 3
    plain = sample(prior, 2, steps=10, seeds=[1, 2], progress=False).images
    for guidance in [DPS(net, y, zeta=2.0), ClassifierGuidance(net, y, scale=2.0)]:
        guided = sample(prior, 2, steps=10, seeds=[1, 2], guidance=guidance, progress=False).images
        assert not torch.allclose(guided, plain)
    dps = sample(prior, 2, steps=10, seeds=[1, 2], guidance=DPS(net, y, zeta=2.0), progress=False).images
    assert (net(dps) - y).norm() < (net(plain) - y).norm()


def test_trajectory_and_editing_start():
    prior = tiny_prior()
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    r = sample(prior, 2, steps=10, x_start=x, t_start=300, return_trajectory=True, progress=False)
    assert r.timesteps[0] == 300 and len(r.trajectory) == len(r.timesteps)
    with pytest.raises(ValueError, match="x_start has shape"):
        sample(prior, 2, steps=10, x_start=torch.zeros(2, 3, 4, 4), t_start=300, progress=False)
    travelled = sample(prior, 2, steps=10, x_start=x, t_start=300, travel=(1, 1), progress=False)
    assert travelled.timesteps[:4] == [300, 200, 300, 200]  # re-noised once after each step below the start
    with pytest.raises(ValueError, match=r"travel = \(5,\): give \(length, repeats"):
        sample(prior, 2, steps=10, travel=(5,), progress=False)


class ConstantEpsPrior(Prior):
    """eps(x, t) independent of x: DDIM inversion and eta = 0 sampling are then exact inverses."""

    def eps(self, x, t):
        grid = torch.arange(x[0].numel(), dtype=x.dtype).view(x.shape[1:])
        return torch.sin(t.to(x.dtype).view(-1, 1, 1, 1) / 100 + grid)


def test_ddim_inversion_round_trip():
    prior = ConstantEpsPrior(build_unet(8, block_out_channels=(8, 8, 8), norm_num_groups=4)).double()
    x = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 1.6 - 0.8)
    r = sample(prior, 3, steps=20, x_start=x, t_start=600, invert=True, eta=0.0, clip_x0=False,
               clip_guided=False, progress=False)
    assert torch.allclose(r.images, x, atol=1e-9)
    # the real (x-dependent) network: inversion is approximate but far closer than re-noising
    prior = tiny_prior()
    x = x.float()
    inverted = sample(prior, 3, steps=50, x_start=x, t_start=300, invert=True, eta=0.0, progress=False).images
    noised = sample(prior, 3, steps=50, x_start=x, t_start=300, progress=False).images
    assert (inverted - x).abs().mean() < 0.5 * (noised - x).abs().mean()
    with pytest.raises(ValueError, match="needs x_start"):
        sample(prior, 3, steps=5, invert=True, progress=False)


def test_prior_train_save_load_sample(tmp_path):
    prior = tiny_prior()
    images = (torch.rand(64, 8, 8, 3) * 255).byte().numpy()
    data = ArrayDataset(images, torch.zeros(64, 1).numpy(), ["x"])
    cfg = LoopConfig(epochs=2, batch_size=16, lr=1e-3, warmup=2, log_every=4, ckpt_every=4)
    res = train_prior(prior, data, tmp_path, cfg, sample_every=4, sample_steps=3, progress=False)
    assert res["finished"] and (tmp_path / "samples-000004.png").exists()
    loaded = Prior.load(tmp_path / "prior")
    assert loaded.image_shape == (3, 8, 8)
    out = sample(loaded, 2, steps=3, progress=False).images
    assert out.shape == (2, 3, 8, 8) and torch.isfinite(out).all()
    from spnn.diffusion.train import export_ema
    exported = export_ema(tmp_path / "checkpoints" / "last.safetensors", tmp_path / "exported")
    for a, b in zip(exported.unet.parameters(), loaded.unet.parameters()):
        assert torch.equal(a, b)  # the EMA weights, as exported at the end of training
    # resume: a finished run does nothing more
    res2 = train_prior(tiny_prior(), data, tmp_path, cfg, sample_every=0, progress=False)
    assert res2["steps"] == res["steps"]


def test_ddim_converter_matches_original_network():
    """Fixture: the DDIM-repository Model with random weights and its outputs, from the original code."""
    state = load_file(DATA + "ddim_model_tiny.state.safetensors")
    io = load_file(DATA + "ddim_model_tiny.io.safetensors")
    unet = load_ddim_checkpoint(DATA + "ddim_model_tiny.state.safetensors", image_size=32)
    with torch.no_grad():
        eps = unet(io["x"], io["t"]).sample
    assert float((eps - io["eps"]).abs().max()) <= 1e-4
    converted, cfg = convert_ddim_state_dict(state)
    assert cfg["ch_mult"] == [1, 2, 2] and cfg["attn_levels"] == [1] and cfg["num_res_blocks"] == 1
    own = unet.state_dict()
    assert set(converted) == set(own)  # every key mapped
    assert all(converted[k].shape == own[k].shape for k in own)


def ddim_layout(ch, ch_mult, num_res_blocks, attn_res, resolution, out_ch=3, in_ch=3):
    """Key -> shape of the DDIM-repository Model, following its constructor (no weights, no code)."""
    shapes = {"conv_in.weight": (ch, in_ch, 3, 3), "conv_in.bias": (ch,),
              "temb.dense.0.weight": (4 * ch, ch), "temb.dense.0.bias": (4 * ch,),
              "temb.dense.1.weight": (4 * ch, 4 * ch), "temb.dense.1.bias": (4 * ch,)}

    def resnet(prefix, cin, cout):
        shapes.update({f"{prefix}.norm1.weight": (cin,), f"{prefix}.norm1.bias": (cin,),
                       f"{prefix}.conv1.weight": (cout, cin, 3, 3), f"{prefix}.conv1.bias": (cout,),
                       f"{prefix}.temb_proj.weight": (cout, 4 * ch), f"{prefix}.temb_proj.bias": (cout,),
                       f"{prefix}.norm2.weight": (cout,), f"{prefix}.norm2.bias": (cout,),
                       f"{prefix}.conv2.weight": (cout, cout, 3, 3), f"{prefix}.conv2.bias": (cout,)})
        if cin != cout:
            shapes.update({f"{prefix}.nin_shortcut.weight": (cout, cin, 1, 1), f"{prefix}.nin_shortcut.bias": (cout,)})

    def attn(prefix, c):
        shapes.update({f"{prefix}.norm.weight": (c,), f"{prefix}.norm.bias": (c,)})
        for part in ("q", "k", "v", "proj_out"):
            shapes.update({f"{prefix}.{part}.weight": (c, c, 1, 1), f"{prefix}.{part}.bias": (c,)})

    in_mult = (1, *ch_mult)
    res, block_in = resolution, ch
    for i, m in enumerate(ch_mult):
        block_in, block_out = ch * in_mult[i], ch * m
        for j in range(num_res_blocks):
            resnet(f"down.{i}.block.{j}", block_in, block_out)
            block_in = block_out
            if res in attn_res:
                attn(f"down.{i}.attn.{j}", block_in)
        if i != len(ch_mult) - 1:
            shapes.update({f"down.{i}.downsample.conv.weight": (block_in, block_in, 3, 3),
                           f"down.{i}.downsample.conv.bias": (block_in,)})
            res //= 2
    resnet("mid.block_1", block_in, block_in)
    attn("mid.attn_1", block_in)
    resnet("mid.block_2", block_in, block_in)
    for i in reversed(range(len(ch_mult))):
        block_out, skip_in = ch * ch_mult[i], ch * ch_mult[i]
        for j in range(num_res_blocks + 1):
            if j == num_res_blocks:
                skip_in = ch * in_mult[i]
            resnet(f"up.{i}.block.{j}", block_in + skip_in, block_out)
            block_in = block_out
            if res in attn_res:
                attn(f"up.{i}.attn.{j}", block_in)
        if i != 0:
            shapes.update({f"up.{i}.upsample.conv.weight": (block_in, block_in, 3, 3),
                           f"up.{i}.upsample.conv.bias": (block_in,)})
            res *= 2
    shapes.update({"norm_out.weight": (block_in,), "norm_out.bias": (block_in,),
                   "conv_out.weight": (out_ch, block_in, 3, 3), "conv_out.bias": (out_ch,)})
    return shapes


def test_layout_generator_matches_the_real_fixture():
    state = load_file(DATA + "ddim_model_tiny.state.safetensors")
    layout = ddim_layout(32, (1, 2, 2), 1, (16,), 32)
    assert {k: tuple(v.shape) for k, v in state.items()} == layout


def test_ddim_converter_key_coverage_paper_layout():
    """Every key of the celeba_hq.ckpt layout (ch 128, ch_mult 1,1,2,2,4,4, 2 blocks, attention at 16) maps
    onto the diffusers UNet with the same shape."""
    from diffusers import UNet2DModel

    from spnn.diffusion.convert_ddim import ddim_to_diffusers_config
    layout = ddim_layout(128, (1, 1, 2, 2, 4, 4), 2, (16,), 256)
    synthetic = {k: torch.empty(s, device="meta") for k, s in layout.items()}
    converted, cfg = convert_ddim_state_dict(synthetic)
    assert cfg["attn_levels"] == [4] and cfg["ch_mult"] == [1, 1, 2, 2, 4, 4]
    with torch.device("meta"):
        unet = UNet2DModel(**ddim_to_diffusers_config(cfg, 256))
    target = unet.state_dict()
    assert set(converted) == set(target)
    assert all(tuple(converted[k].shape) == tuple(target[k].shape) for k in target)
    assert sum(v.numel() for v in target.values()) > 100e6
    with pytest.raises(CheckpointError, match="not a DDPM/DDIM"):
        infer_ddim_config({"weight": torch.zeros(1)})


def test_prior_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such prior"):
        Prior.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a diffusers UNet folder"):
        Prior.load(tmp_path / "empty")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        Prior.load(bad)


def test_bfloat16_unet_keeps_the_spnn_exact():
    """precision="bfloat16" changes only the UNet's arithmetic: the SPNN's constraint still holds to float32."""
    from spnn.operators import SPNNOperator
    from spnn.tasks import reconstruct

    prior, net = tiny_prior(), tiny_net()
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    runs = {p: reconstruct(prior, SPNNOperator(net), x, steps=6, precision=p, progress=False)
            for p in ("float32", "bfloat16")}
    for res in runs.values():
        assert float((net(res.images) - res.targets).abs().max()) <= 1e-4
    diff = float((runs["float32"].images - runs["bfloat16"].images).abs().mean())
    assert 0 < diff < 0.1  # different arithmetic, the same images up to bfloat16 rounding
    assert resolve_precision("auto", "cpu", 16, dtype=torch.float64) == "float32"


def test_auto_precision_follows_the_pixels_of_a_call(monkeypatch):
    import spnn.diffusion.prior as prior_module

    monkeypatch.setattr(prior_module, "cpu_has_bfloat16", lambda: True)
    assert [resolve_precision("auto", "cpu", b) for b in (1, 3, 4)] == ["float32", "float32", "bfloat16"]
    assert resolve_precision("auto", "cpu", 1, pixels=256 * 256) == "bfloat16"  # one large image
    assert resolve_precision("auto", "cpu", 1, preset="paper", pixels=256 * 256) == "float32"
    # a run that calls the bfloat16 UNet as a frozen trace: bfloat16 from one 32 x 32 image
    assert [resolve_precision("auto", "cpu", b, traced=True) for b in (1, 4)] == ["bfloat16", "bfloat16"]
    assert resolve_precision("auto", "cpu", 8, pixels=8 * 8, traced=True) == "float32"
    prior = tiny_prior()
    assert not prior.will_trace("bfloat16")  # not yet on the CPU's channels-last layout
    prior.for_inference()
    assert prior.will_trace("bfloat16") and not prior.will_trace("float32")
    assert prior.at_precision("bfloat16").traced
    monkeypatch.setattr(prior_module, "cpu_has_bfloat16", lambda: False)
    assert resolve_precision("auto", "cpu", 64, pixels=256 * 256) == "float32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("half", "cpu", 1)


def test_bfloat16_copy_of_the_prior_is_kept_and_follows_the_weights():
    """`Prior.at_precision("bfloat16")`: a copy whose UNet weights are bfloat16, kept while the weights stay the
    same, rebuilt after an update; its noise prediction is the float32 one to bfloat16 rounding, and gradients reach
    the input (DPS) but not the copy's weights."""
    from spnn.diffusion.prior import predict_eps

    prior = tiny_prior()
    assert prior.at_precision("float32") is prior
    twin = prior.at_precision("bfloat16")
    assert twin is not prior and twin.bfloat16_weights and twin.at_precision("bfloat16") is twin
    assert {p.dtype for p in twin.unet.parameters()} == {torch.bfloat16}
    assert prior.at_precision("bfloat16") is twin  # kept
    x, t = torch.rand(2, 3, 8, 8, requires_grad=True), torch.tensor([10, 700])
    eps = predict_eps(twin, x, t, "bfloat16")
    ref = prior.eps(x, t)
    assert eps.dtype == torch.float32 and float((eps - ref).detach().norm() / ref.detach().norm()) < 0.05
    eps.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in twin.unet.parameters())
    with torch.no_grad():
        next(prior.unet.parameters()).add_(1.0)  # a training step on the prior
    assert prior.at_precision("bfloat16") is not twin


def test_the_cpu_bfloat16_copy_calls_a_frozen_trace_per_input_signature():
    """On the CPU the bfloat16 copy of a diffusers UNet replays a frozen TorchScript trace, one per input
    signature: the eager call's numbers to bfloat16 rounding, eager again when gradients are needed or traces are
    off (the sampler's graphs="off"), and the same images from a sampling run either way to bfloat16 rounding."""
    from spnn.diffusion.prior import predict_eps

    prior = tiny_prior().for_inference()
    twin = prior.at_precision("bfloat16")
    assert twin._traces == {} and prior._traces is None  # only the CPU copy in bfloat16 is traced
    x, t = torch.rand(2, 3, 8, 8) * 2 - 1, torch.tensor([10, 700])
    with torch.no_grad():
        traced = predict_eps(twin, x, t, "bfloat16")
        assert len(twin._traces) == 1 and next(iter(twin._traces.values())) is not None
        predict_eps(twin, x * 0.5, torch.tensor([3, 999]), "bfloat16")  # the same signature: replayed
        assert len(twin._traces) == 1
        predict_eps(twin, x[:1], t[:1], "bfloat16")  # another batch size: its own trace
        assert len(twin._traces) == 2
        twin.use_traces = False
        eager = predict_eps(twin, x, t, "bfloat16")
        twin.use_traces = True
    assert float((traced - eager).norm() / eager.norm()) < 0.02  # (equal where the CPU fuses nothing in bfloat16)
    xg = x.clone().requires_grad_(True)
    predict_eps(twin, xg, t, "bfloat16").square().sum().backward()  # DPS: eager, gradients reach the input
    assert xg.grad is not None and xg.grad.abs().sum() > 0 and len(twin._traces) == 2
    runs = {g: sample(prior, 2, steps=4, seeds=[0, 1], precision="bfloat16", graphs=g, progress=False).images
            for g in ("auto", "off")}
    assert twin.use_traces  # restored after the run
    assert float((runs["auto"] - runs["off"]).abs().max()) < 0.1


def test_prior_train_init_starts_from_the_given_weights(tmp_path, monkeypatch):
    """`spnn prior train --init PRIOR`: the run starts from PRIOR's weights (fine-tuning on other data)."""
    from spnn.cli.main import main
    from spnn.models import load_prior

    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    shipped = load_prior()
    from spnn.models import DEFAULT_PRIOR

    assert main(["prior", "train", "--init", str(DEFAULT_PRIOR), "--size", "8", "--n", "20", "--max-steps", "1",
                 "--lr", "1e-9", "--warmup", "0", "--batch-size", "4", "--out", str(tmp_path / "run"), "--quiet",
                 "--cpu"]) == 0
    tuned = Prior.load(tmp_path / "run" / "prior")
    for a, b in zip(tuned.unet.parameters(), shipped.unet.parameters()):
        assert torch.allclose(a, b, atol=1e-6)  # one step at lr 1e-9 from the shipped weights
