"""The contract every registered network keeps, checked on the tiny configs each family registers
(`models.registry.register`): spec JSON round trip, native save and load, num_ws and the official attributes,
truncation and the W average, label errors, shape errors, and forward and backward without float64.
A new family gets these tests by registering."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import NoFloat64

from stylegan import load_network
from stylegan.io.load import Network
from stylegan.models.common import Generator
from stylegan.models.registry import NETWORKS, NetworkSpec, build_network, network_spec

C_DIM = 3
CASES = [pytest.param(family, kind, variant, id=f"{family}-{kind}-{variant}")
         for (family, kind), entry in NETWORKS.items() for variant in entry.tiny(0)]
GENERATORS = [case for case in CASES if case.values[1] == "generator"]


def _net(family: str, kind: str, variant: str, c_dim: int = 0, seed: int = 0, vary: bool = False) -> torch.nn.Module:
    """The tiny network; `vary` also moves every constant-initialised parameter and buffer (zero noise strengths and
    biases, W average, magnitude EMAs, level of detail) off its initial value, so that every one of them matters."""
    entry = NETWORKS[(family, kind)]
    torch.manual_seed(seed)
    net = entry.network(entry.tiny(c_dim)[variant])
    if vary:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for t in list(net.parameters()) + list(net.buffers()):
                if t.is_floating_point() and t.numel() > 0 and bool((t == t.flatten()[0]).all()):
                    t.add_(0.25 * torch.rand(t.shape, generator=g))
    return net


def _inputs(net: torch.nn.Module, kind: str, n: int = 4) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(7)
    c = torch.eye(net.c_dim)[torch.arange(n) % net.c_dim] if net.c_dim else None
    if kind == "generator":
        return torch.randn(n, net.z_dim, generator=g), c
    return torch.randn(n, net.img_channels, net.img_resolution, net.img_resolution, generator=g), c


def _run(net: torch.nn.Module, kind: str, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """One call; every call sees the same random stream (StyleGAN-XL's D augments its input in eval mode too)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        return net(x, c, noise_mode="const") if kind == "generator" else net(x, c)


def _logits(net: torch.nn.Module) -> int:
    """Logits per image of a discriminator: one, or for StyleGAN-XL's projected D a (feature_res / 32 - 3)² map from
    each mini-discriminator (they downsample their stage by 8 / 2^stage, the 4x4 output conv takes 3 off)."""
    cfg = net.config
    if hasattr(cfg, "backbones"):
        return len(cfg.backbones) * cfg.num_discs * (cfg.feature_res // 32 - 3) ** 2
    return 1


@pytest.mark.parametrize("family, kind, variant", CASES)
def test_spec_json_round_trip(family, kind, variant):
    net = _net(family, kind, variant, C_DIM)
    spec = network_spec(net)
    assert (spec["family"], spec["kind"]) == (family, kind) and NetworkSpec.of(net).config is net.config
    again = build_network(json.loads(json.dumps(spec)))
    assert type(again) is type(net) and again.config == net.config
    assert NetworkSpec.from_dict(spec).config == net.config and type(net.config).from_dict(net.config.to_dict()) == net.config
    data = net.config.to_dict()
    with pytest.raises(ValueError, match=r"unknown field\(s\) bogus"):
        type(net.config).from_dict({**data, "bogus": 1})
    for key, value in data.items():  # nested configs name their path
        if isinstance(value, dict):
            with pytest.raises(ValueError, match=rf"\.{key}: unknown field\(s\) bogus"):
                type(net.config).from_dict({**data, key: {**value, "bogus": 1}})
    with pytest.raises(ValueError, match=f"unknown network family/kind {family}/nothing"):
        build_network({**spec, "kind": "nothing"})


@pytest.mark.parametrize("family, kind, variant", CASES)
def test_save_and_load_native(family, kind, variant, tmp_path):
    net = _net(family, kind, variant, C_DIM, vary=True).eval()
    Network(**{"G_ema" if kind == "generator" else "D": net}).save(tmp_path / "net.safetensors")
    back = load_network(tmp_path / "net.safetensors")
    loaded = back.G_ema if kind == "generator" else back.D
    assert type(loaded) is type(net) and loaded.config == net.config and not loaded.training
    a, b = net.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x, c = _inputs(net, kind)
    with torch.no_grad():
        assert torch.equal(_run(loaded, kind, x, c), _run(net, kind, x, c))


@pytest.mark.parametrize("family, kind, variant", CASES)
def test_attributes_num_ws_and_shape_errors(family, kind, variant):
    net = _net(family, kind, variant)
    cfg = net.config
    assert (net.c_dim, net.img_resolution, net.img_channels) == (cfg.c_dim, cfg.img_resolution, cfg.img_channels)
    x, c = _inputs(net, kind, n=2)
    if kind == "discriminator":
        assert net(x, c).shape == (2, _logits(net))
        r, ch = net.img_resolution, net.img_channels
        with pytest.raises(ValueError, match=rf"D input image: expected shape \[\?, {ch}, {r}, {r}\], got \[2, {ch}, {r - 1}, {r}\]"):
            net(x[:, :, :-1], c)
        return
    assert isinstance(net, Generator) and (net.z_dim, net.w_dim) == (cfg.z_dim, cfg.w_dim)
    ws = net.mapping(x, c)
    assert ws.shape == (2, net.num_ws, net.w_dim) and net.mapping.num_ws == net.num_ws == net.synthesis.num_ws
    assert net.synthesis(ws, noise_mode="none").shape == (2, net.img_channels, net.img_resolution, net.img_resolution)
    with pytest.raises(ValueError, match=rf"z: expected shape \[\?, {net.z_dim}\], got \[2, {net.z_dim + 1}\]"):
        net(torch.randn(2, net.z_dim + 1), c)
    with pytest.raises(ValueError, match=r"ws: expected shape"):
        net.synthesis(ws[:, 1:])


@pytest.mark.parametrize("family, kind, variant", GENERATORS)
def test_truncation_and_w_average(family, kind, variant):
    G = _net(family, kind, variant)
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    z, _ = _inputs(G, kind, n=3)
    w = G.mapping(z, None)
    w_half = G.mapping(z, None, truncation_psi=0.5)
    torch.testing.assert_close(w_half, G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg))
    w_cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(w_cut[:, :2], w_half[:, :2])
    assert torch.equal(w_cut[:, 2:], w[:, 2:])
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.0), G.mapping.w_avg.expand_as(w))
    avg = G.mapping.w_avg.clone()
    G.mapping(z, None, update_emas=True)  # w_avg <- lerp(mean w, w_avg, beta)
    beta = G.config.mapping.w_avg_beta
    torch.testing.assert_close(G.mapping.w_avg, w[:, 0].mean(0) + (avg - w[:, 0].mean(0)) * beta)
    moved = G.mapping.w_avg.clone()
    G(z, None, update_emas=False)
    assert torch.equal(G.mapping.w_avg, moved)


@pytest.mark.parametrize("family, kind, variant", CASES)
def test_label_errors(family, kind, variant):
    net = _net(family, kind, variant, C_DIM)
    x, c = _inputs(net, kind, n=2)
    assert _run(net, kind, x, c).shape[0] == 2
    for bad in (None, c[:, :-1], c[0]):
        with pytest.raises(ValueError, match=rf"conditional: c must have shape \[N, {C_DIM}\]"):
            _run(net, kind, x, bad)


@pytest.mark.parametrize("c_dim", [0, C_DIM])
@pytest.mark.parametrize("family, kind, variant", CASES)
def test_forward_backward_without_float64(family, kind, variant, c_dim):
    """Every parameter that influences the output gets a finite gradient; nothing computes in float64."""
    net = _net(family, kind, variant, c_dim, vary=True).train()
    x, c = _inputs(net, kind)
    with NoFloat64():
        if kind == "generator":
            out = net(x, c, truncation_psi=0.7, update_emas=True)
            assert out.shape == (4, net.img_channels, net.img_resolution, net.img_resolution) and out.dtype == torch.float32
            loss = out.square().mean()
        else:
            out = net(x, c)
            assert out.shape == (4, _logits(net)) and out.dtype == torch.float32
            loss = torch.nn.functional.softplus(-out).mean()
        loss.backward()
    assert torch.isfinite(out).all()
    unused = []
    for name, p in net.named_parameters():
        if not p.requires_grad:  # frozen by design (StyleGAN-XL's feature networks): no gradient, never trained
            assert p.grad is None, name
        elif p.grad is None:
            unused.append((name, p))
        else:
            assert torch.isfinite(p.grad).all(), name
    net.eval()
    with torch.no_grad():
        before = _run(net, kind, x, c)
        for name, p in unused:  # a parameter outside the graph must not change the output
            p.add_(1.0)
            assert torch.equal(_run(net, kind, x, c), before), f"{name} has no gradient but changes the output"
    grads = {n: p.grad for n, p in net.named_parameters()}
    if kind == "generator":
        assert grads["mapping.fc0.weight"].abs().sum() > 0
    for name, g in grads.items():
        if name.startswith("mapping.embed") and c_dim:  # (StyleGAN-XL keeps its class embedding without labels, unused)
            assert g is not None and g.abs().sum() > 0, name  # labels reach the loss
