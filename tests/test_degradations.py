import pytest
import torch

from spnn.backproject import nlbp
from spnn.data.common import ArrayDataset
from spnn.degradations import EXACT_TASKS, AsinhCurve, BlackBoxCamera, ToneCurve, exact_operator, train_emulator
from spnn.diffusion.guidance import BackProjection
from spnn.diffusion.prior import Prior, build_unet
from spnn.diffusion.sampler import sample


@pytest.mark.parametrize("phi", [ToneCurve(0.6, 2.0), ToneCurve(2.0, 5.0), AsinhCurve(4.0)])
def test_curves_are_exact_bijections(phi):
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    assert torch.allclose(phi.inverse(phi(x)), x, atol=1e-12)
    assert (phi(x[1:]) > phi(x[:-1])).all()


@pytest.mark.parametrize("task", EXACT_TASKS)
def test_exact_operator_nlbp_and_pinv(task):
    op = exact_operator(task, (3, 8, 8)).double()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1
    y = op.A(torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1)
    assert torch.allclose(op.A(nlbp(op, x, y)), y, atol=1e-12)
    assert torch.allclose(op.A(op.pinv(y)), y, atol=1e-12)
    half = nlbp(op, x, y, lam=0.5)
    assert not torch.allclose(op.A(half), y)


def test_exact_operator_in_the_sampler():
    torch.manual_seed(0)
    prior = Prior(build_unet(8, block_out_channels=(8, 8, 8), norm_num_groups=4))
    op = exact_operator("tone-sr4", (3, 8, 8))
    y = op.A(torch.rand(2, 3, 8, 8) * 2 - 1)
    out = sample(prior, 2, steps=5, guidance=BackProjection(op, y, lam=1.0), progress=False).images
    assert float((op.A(out) - y).abs().max()) < 1e-5


def test_black_box_camera_shape_and_range():
    cam = BlackBoxCamera()
    y = cam(torch.rand(2, 3, 32, 32) * 4 - 2)
    assert y.shape == (2, 3, 8, 8) and y.min() >= -1 and y.max() <= 1


def test_emulator_learns(tmp_path, device):
    import numpy as np
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (256, 4, 4, 3)).astype(np.uint8)
    images = coarse.repeat(4, axis=1).repeat(4, axis=2)  # smooth images: the degradation keeps signal
    data = ArrayDataset(images, np.zeros((256, 1), np.float32), ["x"])
    cam = BlackBoxCamera()
    net, res = train_emulator(cam, data, data, tmp_path, output_shape=(3, 4, 4), hidden=8, epochs=6,
                              batch_size=32, progress=False, device=device)
    assert next(net.parameters()).device.type == torch.device(device).type
    x = data.tensors()[0][:64]
    baseline = float(((cam(x) - cam(x).mean()) ** 2).mean())
    assert res["val_loss"] < 0.5 * baseline
    assert (tmp_path / "emulator.safetensors").exists()
