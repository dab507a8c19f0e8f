"""Resolution usage (StyleGAN2 Fig. 8) against a direct computation of each tRGB's upsampled contribution."""

import pytest
import torch

import stylegan
from stylegan.analysis import resolution
from stylegan.analysis.common import sample_ws
from stylegan.io.checkpoint import save_checkpoint
from stylegan.models import Generator, GeneratorConfig, MappingConfig, SynthesisConfig
from stylegan.models.registry import network_spec
from stylegan.ops import upsample2d


def tiny(arch: str = "skip", seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(channel_base=256, channel_max=32, architecture=arch))
    return Generator(cfg).eval().requires_grad_(False)


def test_matches_direct_computation():
    G = tiny()
    for b in (G.synthesis.b4, G.synthesis.b8, G.synthesis.b16):  # distinct tRGB biases make the shares differ
        b.torgb.bias.copy_(torch.randn(3))
    usage = resolution.resolution_usage(G, num_samples=40, seed=3, progress=False)
    ws = torch.cat([sample_ws(G, 32, g := torch.Generator().manual_seed(3), torch.device("cpu")), sample_ws(G, 8, g, torch.device("cpu"))])
    x = None
    terms = {}
    w_idx = 0
    for res in (4, 8, 16):  # each block run without the incoming image returns its own tRGB output
        block = getattr(G.synthesis, f"b{res}")
        x, terms[res] = block(x, None, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb], noise_mode="const")
        w_idx += block.num_conv
    for res in (4, 8):
        for up in [r for r in (8, 16) if r > res]:
            terms[res] = upsample2d(terms[res], getattr(G.synthesis, f"b{up}").resample_filter)
    img = G.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(sum(terms.values()), img, atol=1e-4, rtol=1e-4)
    std = torch.tensor([terms[r].double().std().item() for r in (4, 8, 16)], dtype=torch.float64)
    assert usage.resolutions == [4, 8, 16]
    torch.testing.assert_close(torch.tensor(usage.std, dtype=torch.float64), std, rtol=1e-4, atol=0)
    torch.testing.assert_close(torch.tensor(usage.percent, dtype=torch.float64), 100 * std / std.sum(), rtol=1e-4, atol=0)
    assert abs(sum(usage.percent) - 100) < 1e-9


def test_silenced_resolution_gets_zero_share():
    G = tiny()
    G.synthesis.b8.torgb.weight.zero_()
    G.synthesis.b8.torgb.bias.zero_()
    usage = resolution.resolution_usage(G, num_samples=8, progress=False)
    assert usage.percent[1] == 0 and usage.percent[0] > 0 and usage.percent[2] > 0


@pytest.mark.parametrize("arch", ["orig", "resnet"])
def test_non_skip_is_refused(arch):
    with pytest.raises(ValueError, match=f"skip-architecture.*'{arch}'"):
        resolution.resolution_usage(tiny(arch), num_samples=4)


def test_stylegan3_is_refused(parity_dir):
    G = stylegan.load_network(parity_dir / "sg3t_32").generator
    with pytest.raises(ValueError, match="skip-architecture StyleGAN2.*StyleGAN3"):
        resolution.resolution_usage(G, num_samples=4)


def test_run_folder(tmp_path):
    for kimg, seed in ((0, 0), (12, 1)):
        G = tiny(seed=seed)
        save_checkpoint(tmp_path / f"network-snapshot-{kimg:06d}.safetensors", {"G_ema": (network_spec(G), G.state_dict())})
    run = resolution.resolution_usage_run(tmp_path, num_samples=8)
    assert run.kimg == [0.0, 12.0] and run.snapshots == ["network-snapshot-000000.safetensors", "network-snapshot-000012.safetensors"]
    direct = resolution.resolution_usage(tiny(seed=1), num_samples=8, progress=False)
    assert run.usage[1].percent == pytest.approx(direct.percent, rel=1e-6)
    png, js = resolution.write_usage(run, tmp_path / "out")
    assert png.stat().st_size > 0 and js.stat().st_size > 0
