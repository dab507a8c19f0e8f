"""Our StyleGAN2 networks against outputs of NVIDIA's official code (../shared/parity)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import PSIS, SG2_FIXTURES, max_err, reference_errors, write_fixture_pickle

from stylegan import load_network
from stylegan.cli.main import main as cli_main

TOL = 1e-4


@pytest.mark.parametrize("name", SG2_FIXTURES)
def test_folder_matches_official(parity_dir, name):
    net = load_network(parity_dir / name)
    errors = reference_errors(net, dict(np.load(parity_dir / name / "reference.npz")))
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("name", SG2_FIXTURES)
def test_official_pickle_matches_official(parity_dir, name, tmp_path):
    marker = tmp_path / "EXECUTED"
    pkl = tmp_path / "network-snapshot.pkl"
    write_fixture_pickle(parity_dir / name, pkl, marker)
    net = load_network(pkl)
    assert net.source_format == "official-pickle" and net.G is None
    errors = reference_errors(net, dict(np.load(parity_dir / name / "reference.npz")))
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
        assert max_err(out, ref[seed]) <= TOL
        assert (tmp_path / f"seed{seed:04d}.png").is_file()
