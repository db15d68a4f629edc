"""Shared fixtures: every test that takes ``device`` runs on CPU and, when present, on CUDA."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tf32_allowed():
    """TF32 switched on for cuDNN convolutions (PyTorch's default) and float32 matmuls; restored afterwards."""
    cudnn = torch.backends.cudnn
    before, precision = cudnn.allow_tf32, torch.get_float32_matmul_precision()
    cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        cudnn.allow_tf32 = before
        torch.set_float32_matmul_precision(precision)
