import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from spnn import SPNN
from spnn.data.common import ArrayDataset
from spnn.training.loop import LoopConfig, lr_factor
from spnn.training.spnn import SPNNTrainConfig, train_spnn


def _data(n=64, size=8, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = (images.reshape(n, -1)[:, :4] > 127).astype(np.float32)  # learnable from pixels
    return ArrayDataset(images, labels, ["a", "b", "c", "d"])


def _net():
    torch.manual_seed(0)
    return SPNN.build((3, 8, 8), (4,), hidden=8, attribute_names=["a", "b", "c", "d"])


def _cfg(phase=1, options=None, **loop):
    base = {"epochs": 3, "batch_size": 16, "lr": 1e-3, "warmup": 2, "log_every": 2, "ckpt_every": 2}
    return SPNNTrainConfig(loop=LoopConfig(**{**base, **loop}), phase=phase, eval_size=16, **(options or {}))


def test_lr_schedule():
    total = 100
    assert lr_factor(0, total, 10, 0.4) == pytest.approx(0.1)
    assert lr_factor(20, total, 10, 0.4) == 1.0
    assert lr_factor(70, total, 10, 0.4) == pytest.approx(0.5)


def test_training_reduces_loss_and_writes_outputs(tmp_path):
    net = _net()
    m = train_spnn(net, _data(), _data(32, seed=1), _cfg(epochs=6), tmp_path, progress=False)
    losses = [h["loss"] for h in m["history_tail"] if "loss" in h]
    assert m["finished"] and (tmp_path / "phase1.safetensors").exists()
    metrics = json.loads((tmp_path / "metrics-phase1.json").read_text())
    assert metrics["penrose_float64"]["learned.right_inverse"] < 1e-10
    assert "per_attribute" in metrics["val"]
    first = json.loads((tmp_path / "metrics-phase1.json").read_text())["history_tail"]
    assert losses and first
    assert SPNN.load(tmp_path / "phase1.safetensors").attribute_names == ["a", "b", "c", "d"]


def test_phase2_trains_only_r(tmp_path):
    net = _net()
    net.edit_calibration = {"logit": 3.0}  # numbers measured for the weights before training
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train_spnn(net, _data(), _data(32, seed=1), _cfg(phase=2, epochs=2), tmp_path, progress=False)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".r." in k for k in changed)
    assert net.edit_calibration is None and SPNN.load(tmp_path / "phase2.safetensors").edit_calibration is None


@pytest.mark.parametrize("options", [{}, {"invariance": 1.0, "recon_noise": 0.5, "noise_augment": 0.1},
                                     {"recon_target": "partner"}], ids=["plain", "invariance", "partner"])
def test_kill_and_resume_matches_uninterrupted(tmp_path, options):
    full = _net()
    h_full = train_spnn(full, _data(), _data(32, seed=1), _cfg(options=options), tmp_path / "full", progress=False)
    part = _net()
    m = train_spnn(part, _data(), _data(32, seed=1), _cfg(options=options, max_steps=5), tmp_path / "part",
                   progress=False)
    assert not m["finished"] and m["steps"] == 5
    resumed = _net()  # a fresh process: weights come from the checkpoint (partner draws from the restored RNG)
    m2 = train_spnn(resumed, _data(), _data(32, seed=1), _cfg(options=options), tmp_path / "part", progress=False)
    assert m2["finished"] and m2["steps"] == h_full["steps"]
    for k, v in full.state_dict().items():
        assert torch.allclose(resumed.state_dict()[k], v, atol=1e-6), k
    log_full = [h["loss"] for h in h_full["history_tail"] if "loss" in h]
    log_resumed = [h["loss"] for h in m2["history_tail"] if "loss" in h]
    assert np.allclose(log_full, log_resumed, rtol=1e-5)


def _worker(rank, world, port, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    net = _net()
    train_spnn(net, _data(), _data(32, seed=1), _cfg(), out, progress=False)
    if rank == 0:
        torch.save(net.state_dict(), os.path.join(out, "final.pt"))
    torch.distributed.destroy_process_group()


def test_two_processes_match_one_process_with_combined_batch(tmp_path):
    single = _net()
    train_spnn(single, _data(), _data(32, seed=1), _cfg(), tmp_path / "one", progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path / "two")), nprocs=2)
    state = torch.load(tmp_path / "two" / "final.pt")
    worst = max(float((state[k] - v).abs().max()) for k, v in single.state_dict().items())
    assert worst < 1e-5, worst  # gloo sums shard gradients in another order: rounding only


def test_cli_train_end_to_end(tmp_path):
    env = {**os.environ, "SPNN_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "spnn.cli.main", "train", "--data", "avatars", "--n", "80",
                          "--size", "8", "--out", str(tmp_path / "run"), "--phase", "both", "--epochs", "1",
                          "--epochs2", "1", "--batch-size", "16", "--hidden", "4", "--quiet"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [s["phase"] for s in lines] == [1, 2] and all(s["finished"] for s in lines)
    assert (tmp_path / "run" / "phase2.safetensors").exists()


def test_bf16_autocast_training_runs_and_stays_exact(tmp_path):
    net = _net()
    m = train_spnn(net, _data(), _data(32, seed=1), _cfg(epochs=2, bf16=True), tmp_path, progress=False)
    assert m["finished"] and all(np.isfinite(h["loss"]) for h in m["history_tail"] if "loss" in h)
    assert m["penrose_float64"]["inverse"] < 1e-10  # mixing stays exactly orthogonal (float32 matrix)


def test_label_smoothing_and_noise_augmentation():
    from spnn.training.spnn import phase1_loss, task_loss
    logits = torch.full((2, 3), 50.0)
    labels = torch.ones(2, 3)
    assert task_loss(logits, labels) < 1e-6
    assert task_loss(logits, labels, smoothing=0.1) > 1.0  # smoothed targets penalise saturated logits
    net = _net()
    x, y = torch.rand(4, 3, 8, 8), torch.ones(4, 4)
    torch.manual_seed(0)
    a, _ = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0}, noise=0.5)
    torch.manual_seed(1)
    b, _ = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0}, noise=0.5)
    c, _ = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0})
    assert not torch.isclose(a, b) and torch.isfinite(c)


def test_adversarial_inputs_raise_the_task_loss_within_the_radius():
    from spnn.training.spnn import adversarial_inputs, phase1_loss, task_loss
    torch.manual_seed(0)
    net = _net()
    with torch.no_grad():  # a non-trivial classifier
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x, y = torch.rand(4, 3, 8, 8), torch.randint(0, 2, (4, 4)).float()
    xa = adversarial_inputs(net, x, y, radius=0.5, steps=3)
    assert (xa - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-5
    assert task_loss(net(xa), y) > task_loss(net(x), y)
    assert all(p.grad is None for p in net.parameters()) and not xa.requires_grad
    loss, terms = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0}, adversarial=0.5)
    assert terms["task"] > task_loss(net(x), y)  # trained on the adversarial inputs
    with pytest.raises(ValueError, match="radius and steps must be positive"):
        adversarial_inputs(net, x, y, radius=0.5, steps=0)


def test_phase_config_from_yaml_and_flags():
    import argparse

    from spnn.cli.train import _phase_config

    args = argparse.Namespace(epochs=None, batch_size=None, lr=None, seed=None, max_steps=None, ckpt_every=None,
                              log_every=None, epochs2=None, bf16=False, adaptive_weights=False)
    yaml_cfg = {"phase1": {"loop": {"lr": 5e-4, "epochs": 3}, "adaptive_weights": True, "noise_augment": 0.5}}
    cfg = _phase_config(args, 1, yaml_cfg)
    assert cfg.adaptive_weights and cfg.noise_augment == 0.5 and cfg.loop.lr == 5e-4 and cfg.loop.epochs == 3
    args.adaptive_weights, args.epochs2 = True, 2
    cfg2 = _phase_config(args, 2, {})
    assert cfg2.adaptive_weights and cfg2.loop.epochs == 2 and yaml_cfg["phase1"]["adaptive_weights"]


def test_invariance_and_recon_noise_terms():
    from spnn.data.common import ArrayDataset
    from spnn.training.spnn import SameLabelPartners, SPNNTrainConfig, phase1_loss
    torch.manual_seed(0)
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    w = {"task": 1.0, "recon": 1.0, "invariance": 1.0}
    _, same = phase1_loss(net, x, y, w, partners=x)
    _, other = phase1_loss(net, x, y, w, partners=x.flip(0))
    assert same["invariance"] < 1e-12 < other["invariance"]
    assert torch.isclose(other["invariance"], torch.nn.functional.mse_loss(net(x), net(x.flip(0))))
    _, clean = phase1_loss(net, x, y, w)
    _, noisy = phase1_loss(net, x, y, w, recon_noise=1.0)
    assert "invariance" not in clean and torch.isclose(clean["task"], noisy["task"])
    assert not torch.isclose(clean["recon"], noisy["recon"])
    images = ((x.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    partners = SameLabelPartners(ArrayDataset(images, y.numpy(), list("abcd")))
    assert partners.paired == 1.0
    for _ in range(5):  # a partner always carries the same labels
        got = partners(y)
        own = (got[:, None] - torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)[None])
        match = own.flatten(2).abs().amax(2).argmin(1)
        assert (y[match] == y).all()
    with pytest.raises(ValueError, match="not in the training set"):
        partners(torch.ones(1, 4))
    with pytest.raises(ValueError, match="invariance must be a number >= 0"):
        SPNNTrainConfig(invariance=-1.0)


def test_partner_reconstruction_target():
    from spnn.training.spnn import SPNNTrainConfig, phase1_loss
    torch.manual_seed(0)
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    w, other = {"task": 1.0, "recon": 1.0}, x.flip(0)
    _, own = phase1_loss(net, x, y, w, partners=other)  # the default target is the input itself
    _, partner = phase1_loss(net, x, y, w, partners=other, recon_target="partner")
    with torch.no_grad():
        xr = net.pinv(net(x), mode="learned")
    assert torch.isclose(own["recon"], torch.nn.functional.mse_loss(xr, x))
    assert torch.isclose(partner["recon"], torch.nn.functional.mse_loss(xr, other))
    assert not torch.isclose(own["recon"], partner["recon"]) and "invariance" not in partner
    assert SPNNTrainConfig(recon_target="partner").needs_partners and not SPNNTrainConfig().needs_partners
    assert SPNNTrainConfig(phase=2, recon_target="partner").needs_partners
    with pytest.raises(ValueError, match="invariance: a phase-1 option given for phase 2"):
        SPNNTrainConfig(phase=2, invariance=1.0)  # phase 2 has no invariance term: refused, not ignored
    with pytest.raises(ValueError, match="recon_target must be 'self' or 'partner'"):
        SPNNTrainConfig(recon_target="mean")


def test_anchor_term_pulls_every_logit_to_a_fixed_margin():
    from spnn.training.spnn import SPNNTrainConfig, phase1_loss
    torch.manual_seed(0)
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    _, terms = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0, "anchor": 1.0}, anchor_logit=2.5)
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(net(x), 2.5 * (2 * y - 1))
    assert torch.isclose(terms["anchor"], expected)
    _, scaled = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0, "anchor": 1.0}, anchor_logit=5.0)
    assert scaled["anchor"] > terms["anchor"]  # the margin is fixed: logits near 0 pay more for a wider one
    with pytest.raises(ValueError, match="binary attribute labels"):
        phase1_loss(net, x, y[:, 0].long(), {"task": 1.0, "recon": 1.0, "anchor": 1.0})
    with pytest.raises(ValueError, match="anchor_logit must be a number > 0"):
        SPNNTrainConfig(anchor=1.0, anchor_logit=0)
    with pytest.raises(ValueError, match="anchor must be a number >= 0"):
        SPNNTrainConfig(anchor=-1.0)


def test_swap_term_decodes_a_partners_logits_with_the_inputs_latents():
    from spnn.training.spnn import SPNNTrainConfig, phase1_loss
    torch.manual_seed(0)
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    w, other = {"task": 1.0, "recon": 1.0, "swap": 1.0}, x[[1, 0, 3, 2]]
    _, terms = phase1_loss(net, x, y, w, partners=other)
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(net.inverse(net(other), net.complete(x)[1]), x)
    assert torch.isclose(terms["swap"], expected) and terms["swap"] > 1e-4
    _, own = phase1_loss(net.double(), x.double(), y.double(), w, partners=x.double())  # x' = x: G^-1(G(x)) = x
    assert own["swap"] < 1e-20
    assert SPNNTrainConfig(swap=1.0).needs_partners and not SPNNTrainConfig(phase=2).needs_partners
    with pytest.raises(ValueError, match="swap must be a number >= 0"):
        SPNNTrainConfig(swap=-1.0)


def test_counterfactual_term_decodes_each_ones_logits_with_the_others_latents():
    from spnn.training.spnn import SPNNTrainConfig, phase1_loss
    torch.manual_seed(0)
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    a, b = torch.rand(3, 3, 8, 8) * 2 - 1, torch.rand(3, 3, 8, 8) * 2 - 1
    w = {"task": 1.0, "recon": 1.0, "counterfactual": 1.0}
    _, terms = phase1_loss(net, x, y, w, counterfactuals=(a, b))
    with torch.no_grad():
        (ya, qa), (yb, qb) = net.complete(a), net.complete(b)
        expected = 0.5 * (torch.nn.functional.mse_loss(net.inverse(yb, qa), b)
                          + torch.nn.functional.mse_loss(net.inverse(ya, qb), a))
    assert torch.isclose(terms["counterfactual"], expected) and terms["counterfactual"] > 1e-4
    _, off = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0}, counterfactuals=(a, b))
    assert "counterfactual" not in off
    _, same = phase1_loss(net.double(), x.double(), y.double(), w, counterfactuals=(a.double(), a.double()))
    assert same["counterfactual"] < 1e-20  # a pair of one face: G^-1(G(a)) = a
    net = net.float()
    _, rel = phase1_loss(net, x, y, w, counterfactuals=(a, b), counterfactual_relative=True)
    with torch.no_grad():
        def err(d, t):
            return (d - t).pow(2).flatten(1).mean(1) / (a - b).pow(2).flatten(1).mean(1)
        expected = 0.5 * (err(net.inverse(yb, qa), b) + err(net.inverse(ya, qb), a)).mean()
    assert torch.isclose(rel["counterfactual"], expected)
    with pytest.raises(ValueError, match="counterfactual_relative must be true or false"):
        SPNNTrainConfig(counterfactual_relative="yes")
    with pytest.raises(ValueError, match="counterfactual must be a number >= 0"):
        SPNNTrainConfig(counterfactual=-1.0)
    with pytest.raises(ValueError, match="counterfactual_batch must be an integer >= 1"):
        SPNNTrainConfig(counterfactual=1.0, counterfactual_batch=0)


def test_counterfactual_logits_term_compares_only_the_kept_attributes():
    from spnn.training.spnn import SPNNTrainConfig, phase1_loss
    torch.manual_seed(0)
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    a, b = torch.rand(3, 3, 8, 8) * 2 - 1, torch.rand(3, 3, 8, 8) * 2 - 1
    kept = torch.tensor([[1.0, 1, 0, 1], [0, 1, 1, 1], [1, 0, 1, 1]])
    w = {"task": 1.0, "recon": 1.0, "counterfactual_logits": 1.0}
    _, terms = phase1_loss(net, x, y, w, counterfactuals=(a, b, kept))
    with torch.no_grad():
        d2 = (net(a) - net(b)) ** 2
        scale = 0.5 * (net(a) ** 2 + net(b) ** 2).mean()
    assert torch.isclose(terms["counterfactual_logits"], (d2 * kept).sum() / kept.sum() / scale)
    assert "counterfactual" not in terms  # the decoding term has its own weight
    # the changed attributes are free: moving b's logits there alone leaves the term at zero
    _, same = phase1_loss(net, x, y, w, counterfactuals=(a, a, kept))
    assert same["counterfactual_logits"] == 0
    with pytest.raises(ValueError, match="needs a mask of the kept attributes"):
        phase1_loss(net, x, y, w, counterfactuals=(a, b))
    with pytest.raises(ValueError, match="counterfactual_logits must be a number >= 0"):
        SPNNTrainConfig(counterfactual_logits=-1.0)


def test_counterfactual_step_term_is_one_learned_nlbp_step_to_the_edited_logits():
    from spnn.operators import SPNNOperator
    from spnn.training.spnn import SPNNTrainConfig, phase2_loss
    torch.manual_seed(0)
    net = _net().double()
    with torch.no_grad():  # a non-trivial r, so that the latents' move is not zero
        for name, p in net.named_parameters():
            if ".r." in f".{name}":
                p.add_(0.3 * torch.randn_like(p))
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64) * 2 - 1
    a, b = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1 for _ in range(2))
    same = torch.tensor([[1.0, 1, 0, 1], [0, 1, 1, 1], [1, 0, 1, 1]], dtype=torch.float64)
    w = {"norm": 0.1, "recon": 1.0, "counterfactual_step": 1.0}
    _, terms = phase2_loss(net, x, w, None, counterfactuals=(a, b, same))
    with torch.no_grad():
        edited = torch.where(same.bool(), net(a), net(b))
        stepped = SPNNOperator(net).back_project(a, edited)  # the sampler's own step, lambda = 1
    assert torch.isclose(terms["counterfactual_step"], torch.nn.functional.mse_loss(stepped, b), rtol=1e-9)
    assert terms["counterfactual_step"] > 1e-4
    # a pair of one face: no attribute changes, the step is the identity
    _, none = phase2_loss(net, x, w, None, counterfactuals=(a, a, torch.ones_like(same)))
    assert none["counterfactual_step"] < 1e-20
    _, off = phase2_loss(net, x, {"norm": 0.1, "recon": 1.0}, None, counterfactuals=(a, b, same))
    assert "counterfactual_step" not in off
    with pytest.raises(ValueError, match="counterfactual_step must be a number >= 0"):
        SPNNTrainConfig(phase=2, counterfactual_step=-1.0)
    # a term of the other phase would be ignored: refused, naming the section it belongs in
    with pytest.raises(ValueError, match="counterfactual_step: a phase-2 option given for phase 1; move it to the "
                                         "phase2 section"):
        SPNNTrainConfig(phase=1, counterfactual_step=1.0)
    with pytest.raises(ValueError, match="swap: a phase-1 option given for phase 2"):
        SPNNTrainConfig(phase=2, swap=1.0)


def test_every_shipped_training_config_parses_for_both_phases():
    import argparse
    from pathlib import Path

    from spnn.cli.train import _phase_config, _read_config
    args = argparse.Namespace(**dict.fromkeys(("epochs", "batch_size", "lr", "seed", "max_steps", "ckpt_every",
                                               "log_every", "epochs2"), None), bf16=False, adaptive_weights=False)
    paths = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    assert len(paths) > 20
    for path in paths:
        cfg = _read_config(str(path))
        for phase in (1, 2):
            assert _phase_config(args, phase, cfg).phase == phase, path.name


def test_counterfactual_pairs_mask_the_attributes_the_change_keeps():
    from spnn.data.avatars import AvatarFaces
    from spnn.data.counterfactual import CounterfactualPairs
    ds = AvatarFaces(n=30, split="test", root=None, progress=False)
    pairs = CounterfactualPairs(ds, root=None, workers=1)
    torch.manual_seed(3)
    a, b, kept = pairs(8, kept=True)
    torch.manual_seed(3)
    a2, b2 = pairs(8)  # the same draw without the mask
    assert torch.equal(a, a2) and torch.equal(b, b2) and kept.shape == (8, 22)
    assert ((kept == 0).any(1)).all() and ((kept == 1).sum(1) >= 14).all()  # one part group changed


def test_colour_blends_label_in_between_shades_neither_colour():
    from spnn.data.avatars import AvatarFaces
    from spnn.data.counterfactual import HAIR_COLOURS, CounterfactualPairs
    ds = AvatarFaces(n=60, split="test", root=None, progress=False)
    pairs = CounterfactualPairs(ds, root=None, workers=1)
    colours = [ds.attribute_names.index(a) for a in HAIR_COLOURS]
    torch.manual_seed(5)
    x, labels = pairs.blends(64, colours)
    torch.manual_seed(5)
    draws = (torch.rand(64, dtype=torch.float64), torch.rand(64, 1, 1, 1))  # the same random stream: picks, alpha
    alpha = draws[1].flatten()
    original, cf = torch.as_tensor(ds.labels).float(), torch.as_tensor(pairs.labels).float()
    differ = (original != cf)
    eligible = (differ.any(1) & ~differ[:, [j for j in range(22) if j not in colours]].any(1)).nonzero().flatten()
    picks = eligible[(draws[0] * len(eligible)).long().clamp(max=len(eligible) - 1)]
    a, b = original[picks], cf[picks]
    assert differ[picks][:, colours].any(1).all()  # every pair differs in a hair colour and nothing else
    for k in range(64):  # near either end the end's labels; in between both colours off
        want = a[k] if alpha[k] < 0.25 else b[k] if alpha[k] > 0.75 else a[k] * b[k]
        assert torch.equal(labels[k], want)
    mid = (alpha > 0.25) & (alpha < 0.75)
    assert mid.any() and (labels[mid][:, colours].sum(1) == 0).all()
    from spnn.data.common import to_tensor_images
    blend = (1 - draws[1]) * to_tensor_images(ds.images[picks.numpy()]) + draws[1] * to_tensor_images(
        pairs.images[picks.numpy()])
    assert torch.allclose(x, blend)
    with pytest.raises(ValueError, match="blend band"):
        pairs.blends(2, colours, band=0.7)
    with pytest.raises(ValueError, match="no counterfactual pair differs only"):
        pairs.blends(2, [])


def test_colour_blends_term_is_the_task_loss_on_the_blends():
    from spnn.training.spnn import SPNNTrainConfig, phase1_loss, task_loss
    torch.manual_seed(0)
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    xb, yb = torch.rand(3, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]])
    w = {"task": 1.0, "recon": 1.0, "colour_blends": 2.0}
    loss, terms = phase1_loss(net, x, y, w, smoothing=0.1, blends=(xb, yb))
    with torch.no_grad():
        assert torch.isclose(terms["colour_blends"], task_loss(net(xb), yb, None, 0.1))
    assert torch.isclose(loss, sum(w[k] * terms[k] for k in terms))
    _, off = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0}, blends=(xb, yb))
    assert "colour_blends" not in off
    with pytest.raises(ValueError, match="colour_blends must be a number >= 0"):
        SPNNTrainConfig(colour_blends=-1.0)


def test_judged_term_is_the_cross_entropy_over_the_agreed_entries_only():
    from spnn.training.spnn import phase1_loss
    net = _net()
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1, 1, 0]] * 2)
    xj, yj = torch.rand(3, 3, 8, 8) * 2 - 1, torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]])
    mask = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1]])
    w = {"task": 1.0, "recon": 1.0, "judged": 2.0}
    loss, terms = phase1_loss(net, x, y, w, smoothing=0.1, judged=(xj, yj, mask))
    with torch.no_grad():
        logits = net(xj)
    target = yj * 0.9 + 0.05
    by_hand = [torch.nn.functional.binary_cross_entropy_with_logits(logits[i, j], target[i, j])
               for i, j in mask.nonzero().tolist()]
    assert torch.isclose(terms["judged"], torch.stack(by_hand).mean(), rtol=1e-5)
    assert torch.isclose(loss, sum(w[k] * terms[k] for k in terms))
    # entries outside the mask carry no gradient: a judged image with none agreed does not move
    extra = torch.cat([xj, torch.rand(1, 3, 8, 8)]).requires_grad_(True)
    only, _ = phase1_loss(net, x, y, {"task": 0.0, "recon": 0.0, "judged": 1.0},
                          judged=(extra, torch.cat([yj, torch.ones(1, 4)]), torch.cat([mask, torch.zeros(1, 4)])))
    (grad,) = torch.autograd.grad(only, extra)
    assert grad[3].abs().max() == 0 and (grad[:3].flatten(1).abs().sum(1) > 0).all()
    _, off = phase1_loss(net, x, y, {"task": 1.0, "recon": 1.0}, judged=(xj, yj, mask))
    assert "judged" not in off


def test_judged_term_moves_the_masked_logit_towards_the_judges(tmp_path):
    from spnn.data.common import to_tensor_images
    from spnn.data.judged import save_judged
    data = _data()
    images = data.images[:16]  # uint8 (16, 8, 8, 3), as datasets hold them
    labels = torch.zeros(16, 4)
    mask = torch.zeros(16, 4)
    mask[:, 0] = 1  # the judges agree attribute "a" is off on all 16, whatever the training labels say
    path = tmp_path / "judged.safetensors"
    save_judged(path, images, labels, mask, ["a", "b", "c", "d"])
    x = to_tensor_images(images)
    runs = {}
    for weight in (0.0, 4.0):
        net = _net()
        options = {"judged": weight, "judged_path": str(path), "judged_batch": 16} if weight else {}
        train_spnn(net, data, _data(32, seed=1), _cfg(epochs=6, options=options), tmp_path / str(weight),
                   progress=False)
        with torch.no_grad():
            runs[weight] = net(x)
    assert runs[4.0][:, 0].mean() < runs[0.0][:, 0].mean() - 0.5  # "a" pushed towards off on the judged images


def test_judged_images_refuse_bad_files_with_one_line_errors(tmp_path):
    from spnn.data.judged import JudgedImages, save_judged
    from spnn.errors import CheckpointError, DataError
    from spnn.io import save_tensors
    with pytest.raises(CheckpointError, match="no such file"):
        JudgedImages(tmp_path / "missing.safetensors")
    path = tmp_path / "judged.safetensors"
    save_judged(path, torch.zeros(2, 3, 4, 4), torch.zeros(2, 2), torch.ones(2, 2), ["a", "b"])
    with pytest.raises(DataError, match=r"labelled for attributes \['a', 'b'\], the network has \['a', 'c'\]"):
        JudgedImages(path, ["a", "c"])
    save_tensors(tmp_path / "partial.safetensors", {"images": torch.zeros(2, 3, 4, 4, dtype=torch.uint8)},
                 {"attribute_names": ["a", "b"]})
    with pytest.raises(DataError, match="lacks labels, mask"):
        JudgedImages(tmp_path / "partial.safetensors")
    save_tensors(tmp_path / "channels-first.safetensors", {"images": torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
                 "labels": torch.zeros(2, 2), "mask": torch.ones(2, 2)}, {"attribute_names": ["a", "b"]})
    with pytest.raises(DataError, match="inconsistent shapes"):  # images are stored (N, H, W, 3)
        JudgedImages(tmp_path / "channels-first.safetensors")
    with pytest.raises(DataError, match="expected images"):
        save_judged(path, torch.zeros(2, 3, 4, 4), torch.zeros(3, 2), torch.ones(2, 2), ["a", "b"])
    with pytest.raises(ValueError, match="judged > 0 needs judged_path"):
        SPNNTrainConfig(judged=1.0)
    with pytest.raises(ValueError, match="judged: a phase-1 option given for phase 2"):
        SPNNTrainConfig(phase=2, judged=1.0, judged_path=str(path))
