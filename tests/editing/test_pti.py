"""Pivotal tuning (editing.pti): the locality latent, the regulariser against a naive reference, the loss going down,
exact resume through the saved file, and the file itself."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from stylegan import load_network
from stylegan.editing.pti import (LOCALITY_ALPHA, PTIFileError, _locality_term, load_pti, locality_ws, pivotal_tuning,
                                  save_pti, tuning_ids)
from stylegan.io.load import Network
from stylegan.models import Generator, GeneratorConfig, MappingConfig, SynthesisConfig


def _tiny(c_dim: int = 0) -> Generator:
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=16, img_channels=3,
                                  mapping=MappingConfig(num_layers=2), synthesis=SynthesisConfig(channel_base=256, channel_max=32)))
    return G.eval().requires_grad_(False)


def _pivot(G: Generator, seed: int = 1) -> torch.Tensor:
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    c = torch.eye(G.c_dim)[:1] if G.c_dim else None
    return G.mapping(z, c)[:, :1].repeat(1, G.num_ws, 1)


def _target(seed: int = 7) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).uniform(-1, 1, [3, 16, 16])).float()


def test_locality_ws_distance_and_direction():
    pivot, w = torch.randn(1, 6, 16), torch.randn(1, 6, 16) * 3
    w_r = locality_ws(w, pivot)
    assert float((w_r - pivot).flatten().norm()) == pytest.approx(LOCALITY_ALPHA, rel=1e-5)  # the whole tensor: alpha
    cos = torch.nn.functional.cosine_similarity((w_r - pivot).flatten(), (w - pivot).flatten(), dim=0)
    assert float(cos) == pytest.approx(1.0, abs=1e-6)
    assert float((w_r - pivot)[0, 0].norm()) < LOCALITY_ALPHA  # each layer moves less than alpha


@pytest.mark.parametrize("c_dim", [0, 3])
def test_locality_term_matches_naive_reference(c_dim):
    G = _tiny(c_dim)
    G_pti = copy.deepcopy(G)
    with torch.no_grad():
        for p in G_pti.synthesis.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    pivot = _pivot(G)
    values = {}
    for reg_input in ("xl", "rescaled"):
        gen = torch.Generator().manual_seed(11)
        values[reg_input] = float(_locality_term(G_pti, G, pivot, gen, "mse", None, 30.0, 0.5, reg_input))
        # Naive: the same draws, the latent moved by hand, the distance written out.
        ref_gen = torch.Generator().manual_seed(11)
        z = torch.randn([1, G.z_dim], generator=ref_gen)
        c = None
        if c_dim:
            c = torch.zeros(1, c_dim)
            c[0, int(torch.randint(c_dim, [1], generator=ref_gen))] = 1
        w = G.mapping(z, c, truncation_psi=0.5)
        w_r = pivot + 30.0 * (w - pivot) / (w - pivot).flatten().norm()
        a = G.synthesis(w_r, noise_mode="none", force_fp32=True).double()
        b = G_pti.synthesis(w_r, noise_mode="none", force_fp32=True).double()
        scale = 127.5 if reg_input == "rescaled" else 1.0  # 'xl': [-1, 1] pixels where [0, 255] belong
        ref = ((a - b) * scale / 127.5).square().mean().item()
        assert values[reg_input] == pytest.approx(ref, rel=1e-4)
        assert values[reg_input] > 0
    assert values["rescaled"] / values["xl"] == pytest.approx(127.5 ** 2, rel=1e-3)  # StyleGAN-XL's quirk, in numbers


def test_tuning_lowers_distance_and_leaves_the_network_untouched():
    G = _tiny()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    pivot, target = _pivot(G), _target()
    steps = []
    result = pivotal_tuning(G, target, pivot, num_steps=6, distance="mse", reg_input="rescaled", callback=steps.append)
    assert [s.step for s in steps] == list(range(1, 7)) and result.finished and not result.interrupted
    assert result.distance < 0.9 * result.distance_before
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert all(not p.requires_grad for p in result.G.parameters())
    # The mapping network is never tuned (only synthesis gets gradients, as in StyleGAN-XL's run).
    assert all(torch.equal(a, b) for a, b in zip(G.mapping.parameters(), result.G.mapping.parameters()))
    assert len(result.history["reg"]) == 6 and result.history["reg"][0] == 0.0 and result.history["reg"][1] > 0
    # The untuned network's distance is the one recorded before tuning.
    with torch.no_grad():
        d0 = (G.synthesis(pivot, noise_mode="const")[0] - target).square().mean().item()
    assert result.distance_before == pytest.approx(d0, rel=1e-5)


def test_regulariser_off_has_no_reg_term():
    G = _tiny()
    result = pivotal_tuning(G, _target(), _pivot(G), num_steps=2, distance="mse", reg_weight=0)
    assert result.history["reg"] == [0.0, 0.0]


@pytest.mark.parametrize("c_dim", [0, 3])
def test_resume_through_the_file_is_exact(c_dim, tmp_path):
    G = _tiny(c_dim)
    pivot, target = _pivot(G), _target()
    full = pivotal_tuning(G, target, pivot, num_steps=5, distance="mse", seed=4, reg_input="rescaled")
    part = pivotal_tuning(G, target, pivot, num_steps=5, distance="mse", seed=4, reg_input="rescaled",
                          callback=lambda s: s.step == 2)
    assert part.interrupted and part.step == 2
    save_pti(tmp_path / "G_pti.safetensors", part)
    state = load_pti(tmp_path / "G_pti.safetensors")
    assert state.step == 2 and not state.finished and state.rng_state is not None and state.adam_state
    # The resumed run takes its settings from the file, not from the arguments.
    resumed = pivotal_tuning(G, target, pivot, num_steps=99, distance="mse", seed=0, reg_input="xl", resume=state)
    assert resumed.step == 5 and resumed.finished and resumed.reg_input == "rescaled"
    for (name, a), b in zip(full.G.state_dict().items(), resumed.G.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.history == full.history and resumed.distance == full.distance
    with pytest.raises(PTIFileError, match="another pivot"):
        pivotal_tuning(G, target, pivot + 1, num_steps=5, distance="mse", resume=state)
    with pytest.raises(PTIFileError, match="another target"):
        pivotal_tuning(G, target * 0.5, pivot, num_steps=5, distance="mse", resume=state)
    with pytest.raises(PTIFileError, match="another network"):
        pivotal_tuning(_tiny(c_dim + 1), target, _pivot(_tiny(c_dim + 1)), num_steps=5, distance="mse", resume=state)


def test_saved_file_is_a_network_and_finished_files_carry_no_optimizer(tmp_path):
    G = _tiny()
    pivot, target = _pivot(G), _target()
    result = pivotal_tuning(G, target, pivot, num_steps=2, distance="mse")
    path = tmp_path / "G_pti.safetensors"
    save_pti(path, result)
    net = load_network(path)
    assert net.G is None and net.D is None
    for (name, a), b in zip(result.G.state_dict().items(), net.generator.state_dict().values()):
        assert torch.equal(a, b), name
    state = load_pti(path)
    assert state.finished and not state.adam_state and state.rng_state is None
    assert (state.source, state.pivot, state.target) == tuple(tuning_ids(G, target, pivot, {}).values())
    other = tmp_path / "plain.safetensors"
    Network(G_ema=G).save(other)
    with pytest.raises(PTIFileError, match="no pivotal-tuning state"):
        load_pti(other)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(PTIFileError, match="junk.safetensors"):
        load_pti(tmp_path / "junk.safetensors")


def test_bad_arguments():
    G = _tiny()
    pivot, target = _pivot(G), _target()
    with pytest.raises(ValueError, match="num_steps"):
        pivotal_tuning(G, target, pivot, num_steps=0, distance="mse")
    with pytest.raises(ValueError, match="needs vgg"):
        pivotal_tuning(G, target, pivot, num_steps=1)
    with pytest.raises(ValueError, match="pivot has shape"):
        pivotal_tuning(G, target, pivot[:, :1], num_steps=1, distance="mse")
    with pytest.raises(ValueError, match="target has shape"):
        pivotal_tuning(G, target[:, :8], pivot, num_steps=1, distance="mse")
    with pytest.raises(ValueError, match="reg_input"):
        pivotal_tuning(G, target, pivot, num_steps=1, distance="mse", reg_input="other")


def test_xl_projected_w_layout_is_read(tmp_path):
    """StyleGAN-XL's run_inversion.py saves w as [1, 1, w_dim]: read as that w for every layer."""
    from stylegan.editing.latents import LatentFileError, load_projected_w

    G = _tiny()
    w = torch.randn(1, 1, G.w_dim)
    np.savez(tmp_path / "xl.npz", w=w.numpy())
    ws = load_projected_w(tmp_path / "xl.npz", G)
    assert ws.shape == (1, G.num_ws, G.w_dim) and torch.equal(ws, w.repeat(1, G.num_ws, 1))
    np.savez(tmp_path / "bad.npz", w=torch.randn(1, 2, G.w_dim).numpy())
    with pytest.raises(LatentFileError, match="bad.npz"):
        load_projected_w(tmp_path / "bad.npz", G)
