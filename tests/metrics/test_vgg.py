import hashlib
import io
import math
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.metrics import vgg as vgg_module
from stylegan.metrics.detectors import DetectorUnavailable
from stylegan.metrics.vgg import LPIPS_CHANNELS, VGG16, WeightsFile, fetch_weights, load_vgg16, resize_bilinear_tf

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
POOL_AFTER = (2, 4, 7, 10, 13)  # max-pool after these convolutions (1-based count)


@pytest.fixture(scope="module")
def net() -> VGG16:
    torch.manual_seed(0)
    net = VGG16().eval().requires_grad_(False)
    for i in range(len(LPIPS_CHANNELS)):
        getattr(net, f"lin{i}").weight.abs_()  # LPIPS weights are non-negative
    return net


def _tf_resize_reference(x: np.ndarray, size: int) -> np.ndarray:
    """TensorFlow 1.x resize_bilinear (align_corners=False), one output pixel at a time."""
    n, c, h, w = x.shape
    out = np.zeros([n, c, size, size])
    for oy in range(size):
        sy = oy * (h / size)
        y0, y1, fy = int(math.floor(sy)), min(int(math.ceil(sy)), h - 1), sy - math.floor(sy)
        for ox in range(size):
            sx = ox * (w / size)
            x0, x1, fx = int(math.floor(sx)), min(int(math.ceil(sx)), w - 1), sx - math.floor(sx)
            top = x[:, :, y0, x0] + (x[:, :, y0, x1] - x[:, :, y0, x0]) * fx
            bottom = x[:, :, y1, x0] + (x[:, :, y1, x1] - x[:, :, y1, x0]) * fx
            out[:, :, oy, ox] = top + (bottom - top) * fy
    return out


@pytest.mark.parametrize("src,dst", [(5, 12), (13, 6), (7, 7)])
def test_resize_bilinear_tf(src, dst):
    x = torch.rand(2, 3, src, src, generator=torch.Generator().manual_seed(src)) * 255
    expected = _tf_resize_reference(x.double().numpy(), dst)
    np.testing.assert_allclose(resize_bilinear_tf(x, dst).numpy(), expected, rtol=0, atol=1e-3)
    if src == dst:
        assert torch.equal(resize_bilinear_tf(x, dst), x)


def _naive_fc7(state: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """fc7 from raw torchvision-named tensors, layer by layer."""
    x = torch.from_numpy(_tf_resize_reference(images.double().numpy(), 224)).float()
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    x = (x / 255 - mean) / std
    for count, idx in enumerate(CONV_INDICES, start=1):
        x = F.relu(F.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1))
        if count in POOL_AFTER:
            x = F.max_pool2d(x, 2)
    x = F.relu(F.linear(x.flatten(1), state["classifier.0.weight"], state["classifier.0.bias"]))
    return F.relu(F.linear(x, state["classifier.3.weight"], state["classifier.3.bias"]))


def test_load_torchvision_and_lpips_files(net, tmp_path):
    state = net.state_dict()
    torchvision_sd = {k: v for k, v in state.items() if not k.startswith("lin")}
    torchvision_sd["classifier.6.weight"] = torch.randn(1000, 4096)  # fc8: present in torchvision's file, ignored
    torchvision_sd["classifier.6.bias"] = torch.randn(1000)
    lpips_sd = {f"lin{i}.model.1.weight": state[f"lin{i}.weight"] for i in range(len(LPIPS_CHANNELS))}
    torch.save(torchvision_sd, tmp_path / "vgg16-397923af.pth")
    torch.save(lpips_sd, tmp_path / "vgg.pth")

    loaded = load_vgg16([tmp_path / "vgg16-397923af.pth", tmp_path / "vgg.pth"])
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    images = torch.randint(0, 256, [2, 3, 20, 20], dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    fc7 = loaded(images)
    assert fc7.shape == (2, 4096) and (fc7 >= 0).all()
    torch.testing.assert_close(fc7, _naive_fc7(torchvision_sd, images), rtol=1e-4, atol=1e-5)
    x = images.float()
    y = x.flip(3)
    assert torch.equal(loaded.lpips(x, y), net.lpips(x, y))

    fc_only = load_vgg16([tmp_path / "vgg16-397923af.pth"], lpips=False)
    assert torch.equal(fc_only(images), fc7)
    with pytest.raises(DetectorUnavailable, match="lin0.weight"):
        load_vgg16([tmp_path / "vgg16-397923af.pth"])
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5)}, tmp_path / "bad.pth")
    with pytest.raises(DetectorUnavailable, match=r"features.0.weight has shape \[64, 3, 5, 5\]"):
        load_vgg16([tmp_path / "bad.pth"], lpips=False)


def test_lpips_properties(net):
    rng = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 32, 32, generator=rng) * 255
    y = torch.rand(3, 3, 32, 32, generator=rng) * 255
    d = net.lpips(x, y)
    assert d.shape == (3,) and (d > 0).all()
    torch.testing.assert_close(net.lpips(y, x), d)
    assert net.lpips(x, x).abs().max() == 0
    e0, e1 = net.lpips_embedding(torch.cat([x, y])).chunk(2)
    torch.testing.assert_close((e0 - e1).square().sum(1), d, rtol=1e-4, atol=1e-7)
    assert e0.shape[1] == sum(c * (32 >> i) ** 2 for i, c in enumerate(LPIPS_CHANNELS))


def test_lpips_matches_formula(net):
    """LPIPS v0.1: pixels [0,255] -> [-1,1] -> scaling layer; sum over layers of mean_hw sum_c w_c (f̂x - f̂y)^2."""
    rng = torch.Generator().manual_seed(3)
    x, y = (torch.rand(2, 3, 16, 16, generator=rng) * 255).chunk(2)
    shift = torch.tensor([-0.030, -0.088, -0.188]).reshape(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).reshape(1, 3, 1, 1)
    taps = []
    for img in (x, y):
        h = (img / 127.5 - 1 - shift) / scale
        feats = []
        for i, layer in enumerate(net.features[:30]):
            h = layer(h)
            if i in (3, 8, 15, 22, 29):
                feats.append(h / (h.square().sum(1, keepdim=True).sqrt() + 1e-10))
        taps.append(feats)
    expected = sum((getattr(net, f"lin{i}").weight.reshape(1, -1, 1, 1) * (fx - fy).square()).sum(1).mean()
                   for i, (fx, fy) in enumerate(zip(*taps)))
    torch.testing.assert_close(net.lpips(x, y), expected.reshape(1))


def _offline(url, timeout=None):
    raise urllib.error.URLError("offline for the test")


def test_missing_weights_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    with pytest.raises(DetectorUnavailable) as info:
        load_vgg16(what="ppl2_wend")
    message = str(info.value)
    assert "\n" not in message and message.startswith("ppl2_wend needs weights")
    for file in (vgg_module.TORCHVISION_VGG16, vgg_module.LPIPS_VGG):
        assert f"{file.url} as {tmp_path / 'detectors' / file.filename}" in message
    monkeypatch.delenv("STYLEGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(DetectorUnavailable) as info:
        load_vgg16(lpips=False, what="pr50k3_full")
    assert vgg_module.LPIPS_VGG.url not in str(info.value)
    assert str(tmp_path / "xdg" / "stylegan" / "detectors" / vgg_module.TORCHVISION_VGG16.filename) in str(info.value)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


def test_fetch_weights_checks_sha256(monkeypatch, tmp_path):
    payload = b"weights"
    good = WeightsFile("w.pth", "https://example.invalid/w.pth", hashlib.sha256(payload).hexdigest())
    bad = WeightsFile("v.pth", "https://example.invalid/v.pth", "0" * 64)
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    assert fetch_weights([good], "test", tmp_path) == [tmp_path / "w.pth"]
    assert (tmp_path / "w.pth").read_bytes() == payload
    assert fetch_weights([good], "test", tmp_path) == [tmp_path / "w.pth"] and len(calls) == 1  # cached
    with pytest.raises(DetectorUnavailable, match="sha256"):
        fetch_weights([bad], "test", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]  # nothing half-written
    (tmp_path / "w.pth").write_bytes(b"damaged")
    with pytest.raises(DetectorUnavailable, match="delete it"):
        fetch_weights([good], "test", tmp_path)
