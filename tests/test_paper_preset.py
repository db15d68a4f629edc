"""The paper preset against a trajectory of the authors' own NLBP sampling loop (tests/data/authors_nlbp_32*:
their code at a901837, tiny DDIM-repository UNet and a perturbed 40-logit SPNN of theirs, 10 steps, two images;
numbers only, see shared/fixtures/README.md).

Tolerances (the fixture's measurements): per step from the stored inputs 1e-5 x max|ref|, free-running end
to end 1e-4 x max|ref|, skip flags exact.
"""

import pytest
import torch
from safetensors.torch import load_file

from spnn.convert import load_authors_spnn
from spnn.diffusion.convert_ddim import load_ddim_checkpoint
from spnn.diffusion.prior import Prior
from spnn.diffusion.sampler import noise_scale
from spnn.operators import SPNNOperator
from spnn.tasks import make_guidance, reconstruct

DATA = "tests/data/"
TRAJECTORIES = {"default": ("authors_nlbp_32.trajectory.safetensors", 0.11),
                "stop031": ("authors_nlbp_32_stop031.trajectory.safetensors", 0.31)}


@pytest.fixture(scope="module")
def models():
    net = load_authors_spnn(DATA + "authors_nlbp_32.spnn.safetensors").eval()
    prior = Prior(load_ddim_checkpoint(DATA + "ddim_model_tiny.state.safetensors", image_size=32)).eval()
    return net, prior


def _close(ours, ref, rel):
    scale = float(ref.abs().max())
    err = float((ours - ref).abs().max())
    assert err <= rel * max(scale, 1e-12), (err, scale)


@pytest.mark.parametrize("name", sorted(TRAJECTORIES))
def test_each_step_from_the_stored_inputs(models, name):
    net, prior = models
    file, stop = TRAJECTORIES[name]
    ref = load_file(DATA + file)
    op = SPNNOperator(net, mode="learned")
    y = ref["y"]
    guidance = make_guidance("nlbp", op, y, preset="paper", skip_tol=stop)
    abar = prior.alphas_cumprod.to(torch.float64)
    _close(abar.float(), ref["alpha_bar"][1:], 1e-6)
    with torch.no_grad():
        _close(net(ref["x_ref"]), y, 1e-6)
        for k, (t, t_next) in enumerate(ref["timesteps"].tolist()):
            s = f"step{k}."
            x_t = ref[s + "x_t"]
            eps = prior.eps(x_t, torch.full((2,), t))
            _close(eps, ref[s + "eps"], 1e-5)
            a_t = abar[t].float()
            a_n = abar[t_next].float() if t_next >= 0 else torch.ones(())
            x0_pred = (x_t - (1 - a_t).sqrt() * ref[s + "eps"]) / a_t.sqrt()
            _close(x0_pred, ref[s + "x0_pred"], 1e-5)
            x0_bp = guidance.project(ref[s + "x0_pred"], t)
            assert guidance.skipped.tolist() == ref[s + "skipped"].bool().tolist(), k
            _close(x0_bp, ref[s + "x0_bp"], 1e-5)
            sigma = noise_scale(a_t, a_n, None)
            _close(sigma, ref[s + "sigma"], 1e-6)
            c2 = (1 - a_n - sigma**2).clamp_min(0).sqrt()
            x_next = a_n.sqrt() * ref[s + "x0_bp"] + c2 * ref[s + "eps"] + sigma * ref[s + "noise"]
            _close(x_next, ref[s + "x_next"], 1e-5)


@pytest.mark.parametrize("name", sorted(TRAJECTORIES))
def test_free_running_reconstruction_reproduces_their_output(models, name):
    net, prior = models
    file, stop = TRAJECTORIES[name]
    ref = load_file(DATA + file)
    kwargs = {} if name == "default" else {"skip_tol": stop}
    res = reconstruct(prior, SPNNOperator(net, mode="learned"), ref["x_ref"], steps=10, seeds=[1234, 1234],
                      preset="paper", progress=False, **kwargs)
    _close(res.images, ref["output"], 1e-4)


def test_their_seed_convention_is_the_default(models):
    net, prior = models
    ref = load_file(DATA + "authors_nlbp_32.trajectory.safetensors")
    res = reconstruct(prior, SPNNOperator(net, mode="learned"), ref["x_ref"], steps=10, preset="paper",
                      progress=False)
    _close(res.images, ref["output"], 1e-4)


def test_paper_update_equals_ours_up_to_rounding(models):
    """G^-1(G(x) + lam [G(g+(y)) - G(g+(g(x)))]) written their way and ours (cached Z(y)) agree."""
    net, _ = models
    op = SPNNOperator(net, mode="learned")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.randn(2, 40)
    with torch.no_grad():
        ours = op.back_project(x, y, 0.5)
        theirs = op.back_project(x, y, 0.5, form="paper")
    _close(theirs, ours, 1e-3)


def test_cli_reconstruct_with_the_paper_preset(tmp_path, capsys):
    """`spnn reconstruct --preset paper` on the fixture's models and images gives their output."""
    import json

    import numpy as np
    from PIL import Image

    from spnn.cli.main import main

    ref = load_file(DATA + "authors_nlbp_32.trajectory.safetensors")
    (tmp_path / "in").mkdir()
    for i, img in enumerate(((ref["x_ref"] + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1)):
        Image.fromarray(np.asarray(img)).save(tmp_path / "in" / f"{i}.png")
    argv = ["reconstruct", str(tmp_path / "in"), "--preset", "paper", "--steps", "10", "--spnn",
            DATA + "authors_nlbp_32.spnn.safetensors", "--prior", DATA + "ddim_model_tiny.state.safetensors",
            "--evaluator", "none", "--out", str(tmp_path / "out"), "--cpu"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "out" / "reconstruct.json").read_text())
    assert report["consistency_max_abs"] >= 0  # ran; PNG inputs are quantised, so the output is not compared


def test_dps_paper_reduces_the_residual(models):
    """The authors' DPS step on x0 lowers ||y - A(x0)|| (one step, small zeta)."""
    from spnn.diffusion.guidance import PaperDPS

    net, _ = models
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = net(torch.rand(2, 3, 32, 32) * 2 - 1).detach()
    g = PaperDPS(SPNNOperator(net), y, zeta=1e-4)
    with torch.no_grad():
        before = (net(x) - y).norm()
        after = (net(g.project(x, 500)) - y).norm()
    assert after < before
