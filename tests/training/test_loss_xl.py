"""StyleGAN-XL's loss terms against hand computations on tiny tensors, and ProjectedGANLoss against the official
ProjectedGANLoss (fixtures/xl_d_reference.npz, made by tests/models/make_xl_reference.py)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan.models.feature_networks import deit_distilled
from stylegan.training.loss_xl import (
    ProjectedGANLoss,
    XLLossConfig,
    d_hinge_loss_fake,
    d_hinge_loss_real,
    g_hinge_loss,
    guidance_input,
    guidance_loss,
    superres_trainable,
    xl_adam_settings,
    xl_blur_sigma,
    xl_ema_kimg,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
import xl_reference as ref  # noqa: E402


def test_hinge_losses_by_hand():
    rows = [torch.tensor([0.5, -2.0]), torch.tensor([3.0, -0.25]), torch.tensor([-1.5, 0.0])]
    # G: sum over rows of mean(-l)
    assert math.isclose(float(g_hinge_loss(rows)), -(0.5 - 2.0) / 2 - (3.0 - 0.25) / 2 - (-1.5 + 0.0) / 2, rel_tol=1e-6)
    # D fake: relu(1 + l) = [1.5, 0], [4, 0.75], [0, 1]; D real: relu(1 - l) = [0.5, 3], [0, 1.25], [2.5, 1]
    assert math.isclose(float(d_hinge_loss_fake(rows)), 1.5 / 2 + 4.75 / 2 + 1 / 2, rel_tol=1e-6)
    assert math.isclose(float(d_hinge_loss_real(rows)), 3.5 / 2 + 1.25 / 2 + 3.5 / 2, rel_tol=1e-6)


def test_blur_schedule_and_constants():
    assert xl_blur_sigma(0, 2, 300) == 2.0
    assert xl_blur_sigma(150_000, 2, 300) == 1.0
    assert xl_blur_sigma(300_000, 2, 300) == 0.0 and xl_blur_sigma(900_000, 2, 300) == 0.0
    assert xl_blur_sigma(0, 2, 1) == 0.0  # official: no blur unless blur_fade_kimg > 1
    lr, betas, eps = xl_adam_settings("G")
    assert math.isclose(lr, 0.0025 * 4 / 5) and betas == (0.0, 0.99 ** 0.8) and eps == 1e-8
    lr, betas, _ = xl_adam_settings("D")
    assert math.isclose(lr, 0.002 * 16 / 17) and betas == (0.0, 0.99 ** (16 / 17))
    assert xl_ema_kimg(64) == 20.0
    cfg = XLLossConfig()
    assert (cfg.blur_init_sigma, cfg.blur_fade_kimg, cfg.pl_weight, cfg.pl_start_kimg, cfg.cls_weight) == (2, 300, 2, 1000, 0)
    sr = XLLossConfig.superres(cond=True, cls_weight=1.5)
    assert (sr.pl_weight, sr.cls_weight, sr.train_head_only) == (0.0, 1.5, True)
    assert XLLossConfig.superres(cond=False, cls_weight=1.5).cls_weight == 0.0


def test_superres_freezing_rule():
    names = ["mapping.embed.weight", "mapping.fc0.weight", "mapping.w_avg_dummy", "synthesis.input.weight",
             "synthesis.input.affine.weight", "synthesis.L0_36_512.weight", "synthesis.L7_36_256.affine.bias",
             "synthesis.L9_36_256.weight", "synthesis.L16_32_3.bias"]
    layers = ["L0_36_512", "L7_36_256", "L9_36_256", "L16_32_3"]
    assert superres_trainable(names, layers, ["L9_36_256", "L16_32_3"]) == [
        "synthesis.input.weight", "synthesis.input.affine.weight", "synthesis.L9_36_256.weight", "synthesis.L16_32_3.bias"]


def test_guidance_terms_by_hand():
    img = torch.rand(2, 3, 8, 8) * 2 - 1
    x = guidance_input(img)
    assert x.shape == (2, 3, 224, 224)
    corner = ((img[:, :, 0, 0] + 1) / 2 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[:, :, 0, 0], corner)  # align_corners=False: the corner pixel is kept
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    c = torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.1, 0.7]])

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return logits

    expected = -(math.log(math.exp(0) / (math.exp(2) + 1 + math.exp(-1))) + math.log(math.exp(3) / (2 * math.exp(0.5) + math.exp(3)))) / 2
    assert math.isclose(float(guidance_loss(Fixed(), img, c)), expected, rel_tol=1e-6)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(ref.FIXTURE) as f:
        return {k: f[k] for k in f.files if k.startswith("loss/")}


@pytest.mark.parametrize("case, phase, cur_nimg, cls_weight, head_only", ref.LOSS_CASES)
def test_matches_official_loss(case, phase, cur_nimg, cls_weight, head_only, reference):
    D = ref.our_official_d("tiny_lite0_cond").train()
    G = ref.toy_g()
    cls = deit_distilled("deit_small_distilled_patch16_224")
    cls.load_state_dict(ref.recipe_state(cls, "cls."))
    loss = ProjectedGANLoss(G, D, XLLossConfig(cls_weight=cls_weight, train_head_only=head_only), cls.eval().requires_grad_(False))
    loss.pl_mean = torch.tensor(ref.PL_MEAN_START)
    trained = G if phase.startswith("G") else D
    trained.requires_grad_(True)
    z, c, real = ref.loss_inputs()
    torch.manual_seed(ref.LOSS_SEED)
    loss.accumulate_gradients(phase, real, c, z, c, gain=4, cur_nimg=cur_nimg)
    grads = ref.grad_summary(trained)
    prefix = f"loss/{case}/grad/"
    assert sorted(grads) == sorted(k[len(prefix):] for k in reference if k.startswith(prefix))
    # Exact on the CPU the fixture was made on; other CPUs' float32 kernels round differently and the deep D (DeiT
    # attention, spectral norm) carries it to 0.7-1.5 % of a gradient's scale (SSE4.1-only kernels): 5e-2 of it, and
    # 1e-6 of the largest gradient for tensors whose gradient is rounding noise (conv biases before batch norm).
    floor = 1e-6 * max(np.abs(reference[prefix + k]).max() for k in grads) + 1e-6
    for k, v in grads.items():
        r = reference[prefix + k]
        np.testing.assert_allclose(v, r, rtol=0, atol=5e-2 * np.abs(r).max() + floor, err_msg=k)
    for k, v in ref.buffer_summary(D).items():
        np.testing.assert_allclose(v, reference[f"loss/{case}/buffers/{k}"], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(float(loss.pl_mean), reference[f"loss/{case}/pl_mean"], rtol=1e-6)
    np.testing.assert_allclose(G.mapping.w_avg.numpy(), reference[f"loss/{case}/w_avg"], rtol=1e-6, atol=1e-7)
    if head_only:
        assert set(grads) == {"synthesis.input.weight", "synthesis.input.bias", "synthesis.L1_16_3.weight", "synthesis.L1_16_3.bias"}


def test_guidance_needs_a_classifier():
    G = ref.toy_g()
    with pytest.raises(ValueError, match="classifier"):
        ProjectedGANLoss(G, torch.nn.Identity(), XLLossConfig(cls_weight=1.0))
