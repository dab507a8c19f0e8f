"""Our StyleGAN2 networks against outputs of NVIDIA's official code (../shared/parity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import SG2_FIXTURES, reference_inputs, write_fixture_pickle

from stylegan import load_network
from stylegan.cli.main import main as cli_main

TOL = 1e-4
PSIS = {"10": 1.0, "07": 0.7}


def _max_err(a: torch.Tensor | np.ndarray, b: np.ndarray) -> float:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float32) - b).max())


def check_network_outputs(net, ref: dict[str, np.ndarray]) -> dict[str, float]:
    G, D = net.G_ema, net.D
    z, c = reference_inputs(G.z_dim, G.c_dim)
    errors = {}
    with torch.no_grad():
        for tag, psi in PSIS.items():
            ws = torch.cat([G.mapping(z[i : i + 1], c[i : i + 1], truncation_psi=psi) for i in range(8)])
            img = torch.cat([G.synthesis(ws[i : i + 1], noise_mode="const") for i in range(8)])
            logits = torch.cat([D(img[i : i + 1], c[i : i + 1]) for i in range(8)])
            logits_batch = D(img, c)
            errors[f"ws_psi{tag}"] = _max_err(ws, ref[f"ws_psi{tag}"])
            errors[f"img_psi{tag}"] = _max_err(img, ref[f"img_psi{tag}"])
            errors[f"logits_psi{tag}"] = _max_err(logits, ref[f"logits_psi{tag}"])
            errors[f"logits_batch_psi{tag}"] = _max_err(logits_batch, ref[f"logits_batch_psi{tag}"])
    return errors


@pytest.mark.parametrize("name", SG2_FIXTURES)
def test_folder_matches_official(parity_dir, name):
    net = load_network(parity_dir / name)
    errors = check_network_outputs(net, dict(np.load(parity_dir / name / "reference.npz")))
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("name", SG2_FIXTURES)
def test_official_pickle_matches_official(parity_dir, name, tmp_path):
    marker = tmp_path / "EXECUTED"
    pkl = tmp_path / "network-snapshot.pkl"
    write_fixture_pickle(parity_dir / name, pkl, marker)
    net = load_network(pkl)
    assert net.source_format == "official-pickle" and net.G is None
    errors = check_network_outputs(net, dict(np.load(parity_dir / name / "reference.npz")))
    assert max(errors.values()) <= TOL, errors
    assert not marker.exists(), "the module source stored in the pickle was executed"
    assert net.extra["training_set_kwargs"]["resolution"] == 32


@pytest.mark.parametrize("name", SG2_FIXTURES)
@pytest.mark.parametrize("tag", sorted(PSIS))
def test_generate_raw_matches_official(parity_dir, name, tag, tmp_path):
    ref = np.load(parity_dir / name / "reference.npz")[f"img_psi{tag}"]
    rc = cli_main(["generate", "--network", str(parity_dir / name), "--seeds", "0-7", "--trunc", str(PSIS[tag]),
                   "--outdir", str(tmp_path), "--raw", "--device", "cpu"])
    assert rc == 0
    for seed in range(8):
        out = np.load(tmp_path / f"seed{seed:04d}.npy")
        assert out.dtype == np.float32
        assert _max_err(out, ref[seed]) <= TOL
        assert (tmp_path / f"seed{seed:04d}.png").is_file()
