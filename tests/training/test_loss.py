"""Losses and regularisers against direct re-computation on tiny networks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.models.stylegan2 import Discriminator, Generator
from stylegan.training.presets import network_preset
from stylegan.training.loss import (
    LossConfig,
    StyleGAN2Loss,
    blur_images,
    blur_sigma,
    d_logistic_loss,
    ema_beta,
    g_nonsaturating_loss,
    lazy_regularization,
    path_length_noise,
    path_length_penalty,
    path_lengths,
    r1_penalty,
    style_mixing_cutoff,
)


def test_logistic_losses_match_their_formulas():
    real, fake = torch.randn(16), torch.randn(16)
    assert torch.allclose(g_nonsaturating_loss(fake), -torch.log(torch.sigmoid(fake)), atol=1e-6)
    expected = -torch.log(torch.sigmoid(real)) - torch.log(1 - torch.sigmoid(fake))
    assert torch.allclose(d_logistic_loss(real, fake), expected, atol=1e-5)
    assert torch.allclose(d_logistic_loss(None, fake), F.softplus(fake))
    with pytest.raises(ValueError):
        d_logistic_loss(None, None)


def test_r1_of_a_linear_critic_is_the_squared_weight_norm_and_its_gradient_is_2w():
    w = torch.randn(2, 4, 4, requires_grad=True)
    x = torch.randn(5, 2, 4, 4, requires_grad=True)
    logits = (x * w).sum(dim=[1, 2, 3])
    penalty = r1_penalty(logits, x)
    assert torch.allclose(penalty, w.detach().square().sum().expand(5), rtol=1e-5)
    penalty.sum().backward()
    assert torch.allclose(w.grad, 5 * 2 * w.detach(), rtol=1e-5)


def test_r1_on_a_real_discriminator_matches_per_sample_gradients():
    torch.manual_seed(0)
    _, dcfg = network_preset("sg2-32", img_channels=1)
    dcfg.mbstd_group_size = 1  # samples independent: per-sample gradients are well defined
    D = Discriminator(dcfg)
    x = torch.randn(3, 1, 32, 32, requires_grad=True)
    penalty = r1_penalty(D(x), x)
    for i in range(3):
        xi = x[i:i + 1].detach().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xi).sum(), xi)
        assert math.isclose(float(penalty[i].detach()), float(g.square().sum()), rel_tol=1e-4)
    # the penalty is differentiable with respect to D's weights (the double backward R1 needs)
    penalty.sum().backward()
    weights = {n: p.grad for n, p in D.named_parameters() if n.endswith("weight")}
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in weights.values())


def test_path_lengths_of_a_linear_synthesis():
    # img = A @ w (per ws entry): J^T y = A^T y for every ws; length = sqrt(mean_ws ||A^T y||^2).
    torch.manual_seed(0)
    A = torch.randn(3, 6)  # w_dim 3 -> 6 "pixels"
    ws = torch.randn(4, 5, 3, requires_grad=True)  # batch 4, num_ws 5
    img = (ws @ A).sum(dim=1).reshape(4, 1, 2, 3)
    noise = path_length_noise(img)
    assert noise.shape == img.shape
    lengths = path_lengths(img, ws, noise)
    direct = (noise.reshape(4, 6) @ A.T).square().sum(dim=1).sqrt()  # same gradient for all 5 ws
    assert torch.allclose(lengths, direct, rtol=1e-5)


def test_path_length_noise_is_scaled_by_inverse_sqrt_of_pixels():
    torch.manual_seed(0)
    noise = path_length_noise(torch.zeros(64, 3, 16, 16))
    assert abs(float(noise.std()) * 16 - 1) < 0.02


def test_path_length_penalty_and_target():
    lengths = torch.tensor([1.0, 2.0, 3.0])
    penalty, target = path_length_penalty(lengths, torch.tensor(4.0), decay=0.01)
    assert math.isclose(float(target), 4.0 + 0.01 * (2.0 - 4.0), rel_tol=1e-6)
    assert torch.allclose(penalty, (lengths - target).square())


def test_lazy_regularization_adjustment():
    lr, betas = lazy_regularization(0.002, (0.0, 0.99), 16)
    c = 16 / 17
    assert math.isclose(lr, 0.002 * c) and betas[0] == 0.0 and math.isclose(betas[1], 0.99**c)
    assert lazy_regularization(0.002, (0.0, 0.99), None) == (0.002, (0.0, 0.99))


def test_style_mixing_cutoff_distribution():
    torch.manual_seed(0)
    n, num_ws = 20000, 10
    counts = torch.bincount(torch.tensor([style_mixing_cutoff(num_ws, 0.9) for _ in range(n)]), minlength=num_ws + 1)
    assert counts[0] == 0
    assert abs(counts[num_ws] / n - 0.1) < 0.01  # no mixing with probability 1 - 0.9
    for k in range(1, num_ws):  # the cutoff is uniform over 1 .. num_ws-1 when mixing
        assert abs(counts[k] / n - 0.9 / 9) < 0.01
    assert all(style_mixing_cutoff(num_ws, 0.0) == num_ws for _ in range(50))


def test_ema_beta_half_life_and_rampup():
    beta = ema_beta(32, 10, None, 10**6)
    assert math.isclose(beta ** (10_000 / 32), 0.5, rel_tol=1e-9)  # half-life of 10 kimg
    assert math.isclose(ema_beta(32, 10, 0.05, 1000), 0.5 ** (32 / 50))  # ramp-up caps at 0.05 * 1000 images
    assert ema_beta(32, 10, 0.05, 0) < 1e-6


def test_blur_sigma_fades_and_blur_preserves_constants():
    assert blur_sigma(0, 10, 200) == 10 and blur_sigma(100_000, 10, 200) == 5 and blur_sigma(300_000, 10, 200) == 0
    assert blur_sigma(0, 10, 0) == 0
    x = torch.full([1, 3, 32, 32], 0.3)
    inner = (..., slice(6, -6), slice(6, -6))  # 3 sigma from the zero-padded border
    assert torch.allclose(blur_images(x, 2.0)[inner], x[inner], atol=1e-6)
    y = torch.randn(1, 1, 16, 16)
    assert torch.equal(blur_images(y, 0.2), y)
    assert float(blur_images(y, 2.0).std()) < float(y.std())


def _tiny_pair(c_dim: int = 0) -> tuple[Generator, Discriminator]:
    gcfg, dcfg = network_preset("sg2-32", img_channels=1, c_dim=c_dim)
    gcfg.synthesis.channel_max = dcfg.channel_max = 16
    return Generator(gcfg), Discriminator(dcfg)


@pytest.mark.parametrize("phase,trained", [("Gmain", "G"), ("Greg", "G"), ("Dmain", "D"), ("Dreg", "D")])
def test_each_phase_backpropagates_into_its_network(phase, trained):
    torch.manual_seed(0)
    G, D = _tiny_pair()
    module = G if trained == "G" else D
    G.requires_grad_(False)
    D.requires_grad_(False)
    module.requires_grad_(True)
    loss = StyleGAN2Loss(G, D, LossConfig(r1_gamma=1.0, pl_weight=2.0, style_mixing_prob=0.9))
    z, c, real = torch.randn(4, G.z_dim), torch.zeros(4, 0), torch.randn(4, 1, 32, 32)
    loss.accumulate_gradients(phase, real, c, z, c, gain=1.0, cur_nimg=0)
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_path_length_target_moves_once_per_minibatch_with_the_mean_over_chunks():
    torch.manual_seed(0)
    G, D = _tiny_pair()
    G.requires_grad_(True)
    seen: dict[str, list[torch.Tensor]] = {}
    loss = StyleGAN2Loss(G, D, LossConfig(pl_weight=2.0, pl_decay=0.5), report=lambda n, v: seen.setdefault(n, []).append(v.detach()))
    c = torch.zeros(4, 0)
    for _ in range(2):  # two accumulation rounds: the target stays put in between
        loss.accumulate_gradients("Greg", torch.zeros(4, 1, 32, 32), c, torch.randn(4, G.z_dim), c, gain=0.5, cur_nimg=0)
        assert float(loss.pl_mean) == 0.0
    # Each round's penalty is (l - lerp(0, mean l of the round, 0.5))^2: recover the lengths from it.
    means = []
    for pen in seen["Loss/pl_penalty"]:
        # penalty_i = (l_i - 0.5 mean l)^2 with l_i > 0 and the mean of l_i - 0.5 mean l = 0.5 mean l
        means.append(float(pen.sqrt().mean()) * 2)
    loss.update_pl_mean()
    assert math.isclose(float(loss.pl_mean), 0.5 * sum(means) / 2, rel_tol=1e-4)
    assert loss._pl_count == 0


def test_unknown_phase():
    G, D = _tiny_pair()
    with pytest.raises(ValueError, match="unknown phase"):
        StyleGAN2Loss(G, D, LossConfig()).accumulate_gradients("Gfoo", None, None, None, None, 1.0, 0)
