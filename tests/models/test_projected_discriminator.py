"""The StyleGAN-XL projected discriminator: official outputs (fixtures/xl_d_reference.npz, made by the official
code with timm 0.4.12 from the name-keyed weights of xl_reference.py), names, modes, spectral norm, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xl_reference as ref
from stylegan.models.projected_discriminator import (
    ProjectedDiscriminator,
    ProjectedDiscriminatorConfig,
    SNConv2d,
    official_logit_rows,
)

LITE0 = ["tf_efficientnet_lite0"]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(ref.FIXTURE) as f:
        return {k: f[k] for k in f.files}


def _rows(D: ProjectedDiscriminator, img: torch.Tensor, c: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    with torch.no_grad():
        return torch.stack(official_logit_rows(D(img, c, per_backbone=True)))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "xl_base_cond" else n for n in ref.CONFIGS])
def test_matches_official(name, reference):
    D = ref.our_official_d(name)
    assert [f"{k} {list(v.shape)}" for k, v in D.state_dict().items()] == list(reference[f"{name}/keys"])
    img, c = ref.inputs(name)
    D.eval()
    np.testing.assert_allclose(_rows(D, img, c, ref.EVAL_SEED).numpy(), reference[f"{name}/eval_rows"], rtol=0, atol=1e-4)
    D.train()
    np.testing.assert_allclose(_rows(D, img, c, ref.TRAIN_SEED).numpy(), reference[f"{name}/train_rows"], rtol=0, atol=1e-4)
    after = ref.buffer_summary(D)
    prefix = f"{name}/after_train/"
    assert sorted(after) == sorted(k[len(prefix):] for k in reference if k.startswith(prefix))
    for k, v in after.items():
        np.testing.assert_allclose(v, reference[prefix + k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_state_dict_layout():
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=["deit_tiny_distilled_patch16_224"] + LITE0, cond=True, c_dim=10))
    keys = list(D.state_dict())
    fn, dn = "feature_networks.", "discriminators."
    # first keys of each part, as the official module tree names them
    assert keys[0] == fn + "deit_tiny_distilled_patch16_224.pretrained.model.cls_token"
    assert fn + "deit_tiny_distilled_patch16_224.pretrained.layer1.4.weight" in keys  # ConvTranspose2d 4x4/4
    assert fn + "deit_tiny_distilled_patch16_224.pretrained.model.head_dist.bias" in keys
    assert fn + "tf_efficientnet_lite0.pretrained.layer0.0.weight" in keys  # conv_stem
    assert fn + "tf_efficientnet_lite0.pretrained.layer3.1.0.conv_pwl.weight" in keys  # blocks[6]
    assert fn + "tf_efficientnet_lite0.scratch.layer3_csm.out_conv.weight" in keys
    i = keys.index(dn + "tf_efficientnet_lite0.mini_discs.0.main.0.main.0.bias")
    assert keys[i:i + 4] == [dn + "tf_efficientnet_lite0.mini_discs.0.main.0.main.0." + s for s in ("bias", "weight_orig", "weight_u", "weight_v")]
    assert dn + "tf_efficientnet_lite0.mini_discs.3.embed.weight" in keys
    assert not any("conv_head" in k or "classifier" in k for k in keys)  # the EfficientNet head is not kept
    assert keys.index(dn + "deit_tiny_distilled_patch16_224.mini_discs.0.main.0.main.0.bias") > max(
        i for i, k in enumerate(keys) if k.startswith(fn))  # all feature networks first, as ModuleDicts register them


@pytest.mark.parametrize("cond", [False, True])
def test_forward_shapes_and_modes(cond):
    torch.manual_seed(0)
    embedding = torch.randn(1000, 320) if cond else None
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=LITE0, cond=cond, c_dim=10, img_resolution=32), embedding)
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.eye(10)[[3, 4]]
    D.train()
    assert not any(m.training for m in D.feature_networks.modules())
    assert all(not p.requires_grad for p in D.feature_networks.parameters())
    assert all(p.requires_grad for p in D.discriminators.parameters())
    before = {k: v.clone() for k, v in D.state_dict().items()}
    logits = D(img, c)
    assert logits.shape == (2, 4 * 16)  # four mini-discriminators, 4x4 logits each, for 224x224 features
    per = D(img, c, per_backbone=True)
    assert len(per) == 1 and per[0].shape == (2, 64)
    changed = {k for k, v in D.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("discriminators.") and k.endswith(
        ("weight_u", "weight_v", "running_mean", "running_var", "num_batches_tracked")) for k in changed)
    D.eval()
    before = {k: v.clone() for k, v in D.state_dict().items()}
    torch.manual_seed(1)
    a = D(img, c)
    torch.manual_seed(1)
    b = D(img, c)
    assert torch.equal(a, b) and all(torch.equal(v, before[k]) for k, v in D.state_dict().items())
    torch.manual_seed(2)
    assert not torch.equal(D(img, c), a)  # DiffAugment runs in eval mode too, as in the official forward
    D.requires_grad_(True)
    assert all(not p.requires_grad for p in D.feature_networks.parameters())


def test_conditioning_uses_argmax():
    torch.manual_seed(0)
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=LITE0, cond=True, c_dim=10, img_resolution=16, diffaug=False),
                              torch.randn(1000, 320)).eval()
    img = torch.rand(1, 3, 16, 16) * 2 - 1
    c3, soft = torch.eye(10)[[3]], torch.full([1, 10], 0.05).index_fill_(1, torch.tensor([3]), 0.5)
    assert torch.equal(D(img, c3), D(img, soft))
    assert not torch.equal(D(img, c3), D(img, torch.eye(10)[[4]]))


def test_random_projections_are_seeded():
    cfg = ProjectedDiscriminatorConfig(backbones=LITE0, cond=False)
    torch.manual_seed(5)
    a = ProjectedDiscriminator(cfg).state_dict()
    after_a = torch.rand(4)
    torch.manual_seed(5)
    b = ProjectedDiscriminator(cfg).state_dict()
    after_b = torch.rand(4)
    torch.manual_seed(6)
    c = ProjectedDiscriminator(cfg).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and torch.equal(after_a, after_b)
    scratch = [k for k in a if ".scratch." in k]
    assert len(scratch) == 16 and all(not torch.equal(a[k], c[k]) for k in scratch if k.endswith("weight"))
    w = a["feature_networks.tf_efficientnet_lite0.scratch.layer0_ccm.weight"]  # PyTorch's default conv init
    bound = 1 / np.sqrt(24)
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound


@pytest.mark.parametrize("training", [True, False])
def test_sn_conv_matches_torch_spectral_norm(training):
    torch.manual_seed(3)
    ours = SNConv2d(6, 5, 4, 2, 1)
    torch.manual_seed(3)
    theirs = torch.nn.utils.spectral_norm(torch.nn.Conv2d(6, 5, 4, 2, 1))
    assert list(ours.state_dict()) == list(theirs.state_dict())  # bias, weight_orig, weight_u, weight_v
    assert all(torch.equal(ours.state_dict()[k], theirs.state_dict()[k]) for k in ours.state_dict())
    ours.train(training)
    theirs.train(training)
    x = torch.randn(2, 6, 8, 8)
    for _ in range(3):
        assert torch.equal(ours(x), theirs(x))
    assert all(torch.equal(ours.state_dict()[k], theirs.state_dict()[k]) for k in ours.state_dict())


def test_bad_inputs():
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=LITE0, cond=True, c_dim=10, img_resolution=16))
    with pytest.raises(ValueError, match=r"D input image: expected shape \[\?, 3, 16, 16\], got \[1, 1, 16, 16\]"):
        D(torch.zeros(1, 1, 16, 16), torch.eye(10)[:1])
    with pytest.raises(ValueError, match=r"D input image: expected shape \[\?, 3, 16, 16\], got \[1, 3, 32, 32\]"):
        D(torch.zeros(1, 3, 32, 32), torch.eye(10)[:1])
    with pytest.raises(ValueError, match=r"D labels: expected shape \[2, 10\], got \[1, 10\]"):
        D(torch.zeros(2, 3, 16, 16), torch.eye(10)[:1])
    with pytest.raises(ValueError, match=r"c must have shape \[N, 10\], got none"):
        D(torch.zeros(2, 3, 16, 16), None)
    with pytest.raises(ValueError, match="needs c_dim >= 1"):
        ProjectedDiscriminatorConfig(backbones=LITE0, cond=True)
    with pytest.raises(ValueError, match="unsupported feature network"):
        ProjectedDiscriminatorConfig(backbones=["resnet50"])
    with pytest.raises(ValueError, match="class embedding"):
        D.set_class_embedding(torch.zeros(10, 320))


def test_channels_last_option():
    from stylegan.ops import fast_paths

    torch.manual_seed(0)
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=LITE0, cond=False, diffaug=False, img_resolution=16)).eval()
    assert not D.config.channels_last  # the official op order unless asked for
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        reference = D(img, None)
        D.feature_networks[LITE0[0]].channels_last = True
        fast = D(img, None)
        with fast_paths(False):
            assert torch.equal(D(img, None), reference)
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-4 * float(reference.abs().max()))
