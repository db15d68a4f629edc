"""CUDA graphs (`spnn.graphs`): replays give the plain calls' numbers; CPU calls and gradients run plainly."""

import warnings

import pytest
import torch

from spnn import SPNN
from spnn.diffusion.guidance import BackProjection
from spnn.diffusion.prior import Prior, build_unet
from spnn.diffusion.sampler import sample
from spnn.errors import ConfigError, ShapeError
from spnn.graphs import GraphedCall, GraphedOperator, resolve_graphs
from spnn.operators import AveragePool, SPNNOperator
from spnn.testing import perturb_

# replay runs the recorded kernels; allowed: rounding of a kernel chosen differently at recording time
TOL = 1e-5


def tiny_prior(device, size=8):
    torch.manual_seed(0)
    return Prior(build_unet(size, block_out_channels=(8, 8, 8), norm_num_groups=4)).to(device)


def tiny_net(device):
    torch.manual_seed(1)
    return perturb_(SPNN.build((3, 8, 8), (5,), hidden=8), 0.1).requires_grad_(False).to(device)


def test_resolve_graphs():
    assert resolve_graphs("auto", "cuda") and resolve_graphs(True, "cuda") and resolve_graphs("on", "cuda:0")
    assert not resolve_graphs("on", "cpu") and not resolve_graphs(False, "cuda")
    with pytest.raises(ConfigError, match="unknown graphs setting 'yes'"):
        resolve_graphs("yes", "cpu")
    with pytest.raises(ConfigError, match="unknown graphs setting"):
        sample(tiny_prior("cpu"), 1, steps=2, graphs="yes", progress=False)


def test_plain_calls_where_no_graph_can_be_recorded():
    calls = []

    def fn(x):
        calls.append(1)
        return x * 2

    call = GraphedCall(fn)
    x = torch.ones(3, requires_grad=True)
    assert torch.equal(call(x), x * 2) and call(x).requires_grad  # gradients on: a plain, differentiable call
    with torch.no_grad():
        call(torch.ones(3))  # CPU tensors
    assert len(calls) == 3 and not call.graphs


def test_a_failed_recording_falls_back_to_plain_calls_with_one_warning(monkeypatch):
    """If CUDA cannot capture a call, that signature runs plainly from then on (one warning, no second attempt);
    the capture itself needs a GPU, so it is made to fail here and the CPU tensors are let through the gate."""
    calls, records = [], []

    def fn(x, scale):
        calls.append(1)
        return x * scale

    def failing_record(self, spec, inputs):
        records.append(spec)
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(GraphedCall, "graphable", staticmethod(lambda leaves: True))
    monkeypatch.setattr(GraphedCall, "_warm_up", lambda self, spec, leaves: [t.clone() for t in leaves])
    monkeypatch.setattr(GraphedCall, "_record", failing_record)
    call = GraphedCall(fn)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="could not be recorded \\(operation not permitted"):
        assert torch.equal(call(torch.ones(3), 2.0), torch.full((3,), 2.0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, no second attempt for the same signature
        assert torch.equal(call(torch.ones(3), 2.0), torch.full((3,), 2.0))
        with pytest.raises(RuntimeWarning):  # another signature is tried on its own
            call(torch.ones(4), 2.0)
    assert len(records) == 2 and len(calls) == 2 and not call.graphs and len(call.failed) == 2


def test_an_error_of_the_call_itself_is_not_taken_for_a_recording_failure(monkeypatch):
    """The plain warm-up calls come first and outside the fallback: a broken call raises as it is, no warning."""
    def broken(x):
        raise RuntimeError("shapes cannot be multiplied")

    def warm_up(self, spec, leaves):
        self.fn(*leaves)

    monkeypatch.setattr(GraphedCall, "graphable", staticmethod(lambda leaves: True))
    monkeypatch.setattr(GraphedCall, "_warm_up", warm_up)
    call = GraphedCall(broken)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
            call(torch.ones(3))
    assert not call.failed and not call.graphs


@pytest.mark.parametrize("mode", ["learned", "natural"])
def test_graphed_operator_equals_the_operator(device, mode):
    net = tiny_net(device)
    op = SPNNOperator(net, mode=mode)
    graphed = GraphedOperator(op)
    x = torch.rand(4, 3, 8, 8, device=device) * 2 - 1
    y = torch.randn(4, 5, device=device)
    with torch.no_grad():
        for lam in (0.5, 1.0, torch.tensor([1.0, 0.5, 0.25, 0.0], device=device)):
            for _ in range(2):  # the second call replays
                ref = op.back_project(x, y, lam, completion=op.complete(x))
                out = graphed.back_project(x, y, lam, completion=graphed.complete(x))
                assert float((out - ref).abs().max()) <= TOL
        assert float((graphed.A(x) - net(x)).abs().max()) <= TOL
        assert graphed.mode == mode and graphed.net is net  # everything else is the operator's own
    if device.type == "cuda":
        # one graph per signature: completion, the back-projection (every lam is a per-sample tensor) and A
        assert len(graphed.complete.graphs) == 1 and len(graphed._back_project.graphs) == 1


def test_graphed_replays_keep_earlier_outputs_and_follow_the_batch(device):
    if device.type != "cuda":
        pytest.skip("graphs are recorded on CUDA devices only")
    call = GraphedCall(lambda x: torch.sin(x) * 3)
    with torch.no_grad():
        a = torch.randn(4, 5, device=device)
        out_a = call(a)
        out_b = call(torch.randn(4, 5, device=device))  # replay overwrites the graph's own output
        assert torch.equal(out_a, torch.sin(a) * 3) and not torch.equal(out_a, out_b)
        c = torch.randn(7, 5, device=device)
        assert torch.equal(call(c), torch.sin(c) * 3) and len(call.graphs) == 2


def test_graphed_spnn_checks_its_input_before_replay(device):
    net = tiny_net(device)
    graphed = GraphedOperator(SPNNOperator(net))
    x = torch.rand(2, 3, 8, 8, device=device)
    with torch.no_grad():
        graphed.complete(x)
        x[0, 0, 0, 0] = float("nan")
        with pytest.raises(ShapeError, match="SPNN input: contains 1 NaN/inf values"):
            graphed.complete(x)


@pytest.mark.parametrize("guide", ["none", "learned", "natural", "max_abs", "ddnm"])
def test_sampling_with_graphs_equals_sampling_without(device, guide):
    prior, net = tiny_prior(device), tiny_net(device)
    torch.manual_seed(2)
    y = torch.randn(3, 5, device=device)

    def guidance():
        if guide == "none":
            return None
        if guide == "ddnm":
            return BackProjection(AveragePool((3, 8, 8), 2), torch.rand(3, 3, 4, 4, device=device) * 2 - 1)
        if guide == "max_abs":  # unreachable targets: the backtracking retries replay the same graph
            return BackProjection(net, y * 20, max_abs=1.2, mode="learned")
        return BackProjection(net, y, mode=guide)

    g = guidance()
    runs = [sample(prior, 3, steps=6, guidance=g, graphs=graphs, progress=False, precision="float32").images
            for graphs in ("off", "on", "on")]  # the second "on" run replays the graphs recorded by the first
    assert float((runs[1] - runs[0]).abs().max()) <= TOL and torch.equal(runs[1], runs[2])
    if guide in ("learned", "natural"):
        assert float((net(runs[1]) - y).abs().max()) < 1e-4
    if device.type == "cuda" and g is not None:
        assert g._graphed is not None and g._active is None  # kept for the next run, off outside sample


def test_only_known_code_is_recorded():
    """A user's operator or network may synchronise with the host: they are called plainly."""

    class MyPool(AveragePool):  # a linear operator of one's own
        pass

    y = torch.rand(2, 3, 4, 4)
    own, mine = BackProjection(AveragePool((3, 8, 8), 2), y), BackProjection(MyPool((3, 8, 8), 2), y)
    for g in (own, mine):
        g.use_graphs(True)
    assert isinstance(own._active, GraphedOperator) and mine._active is None
    own.use_graphs(False)
    assert own._active is None and own._graphed is not None

    class MyUNet(torch.nn.Module):
        config = tiny_prior("cpu").unet.config

        def forward(self, x, t):
            return type("Out", (), {"sample": x * 0})()

    assert isinstance(tiny_prior("cpu").graphed_eps(), GraphedCall)
    plain = Prior(MyUNet()).graphed_eps()
    assert not isinstance(plain, GraphedCall) and torch.equal(plain(torch.ones(1, 3, 8, 8), torch.tensor([3])),
                                                              torch.zeros(1, 3, 8, 8))


def test_changed_weights_are_recorded_again():
    """The graphs hold values derived from the weights (the mixing matrices): an in-place change records anew."""
    net = tiny_net("cpu")
    g = BackProjection(net, torch.randn(2, 5), mode="learned")
    g.use_graphs(True)
    first = g._graphed
    g.use_graphs(True)
    assert g._graphed is first
    with torch.no_grad():
        next(net.parameters()).add_(0.01)
    g.use_graphs(True)
    assert g._graphed is not first
