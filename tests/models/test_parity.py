"""Our StyleGAN2 networks against outputs of NVIDIA's official code (../shared/parity)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import PSIS, SG2_FIXTURES, max_err, parity_references, reference_errors, write_fixture_pickle

from stylegan import load_network
from stylegan.cli.main import main as cli_main



@pytest.mark.parametrize("name", SG2_FIXTURES)
def test_folder_matches_official(parity_dir, name):
    net = load_network(parity_dir / name)
    for label, ref, force_fp32, tol in parity_references(parity_dir / name):
        errors = reference_errors(net, ref, force_fp32)
        assert max(errors.values()) <= tol, (label, errors)


@pytest.mark.parametrize("name", SG2_FIXTURES)
def test_official_pickle_matches_official(parity_dir, name, tmp_path):
    marker = tmp_path / "EXECUTED"
    pkl = tmp_path / "network-snapshot.pkl"
    write_fixture_pickle(parity_dir / name, pkl, marker)
    net = load_network(pkl)
    assert net.source_format == "official-pickle" and net.G is None
    for label, ref, force_fp32, tol in parity_references(parity_dir / name):
        errors = reference_errors(net, ref, force_fp32)
        assert max(errors.values()) <= tol, (label, errors)
    assert not marker.exists(), "the module source stored in the pickle was executed"
    assert net.extra["training_set_kwargs"]["resolution"] == 32


@pytest.mark.parametrize("name", SG2_FIXTURES)
@pytest.mark.parametrize("tag", sorted(PSIS))
def test_generate_raw_matches_official(parity_dir, name, tag, tmp_path):
    for label, refs, force_fp32, tol in parity_references(parity_dir / name):
        ref = refs[f"img_psi{tag}"]
        outdir = tmp_path / label
        rc = cli_main(["generate", "--network", str(parity_dir / name), "--seeds", "0-7", "--trunc", str(PSIS[tag]),
                       "--outdir", str(outdir), "--raw", "--device", "cpu"] + (["--fp32"] if force_fp32 else []))
        assert rc == 0
        for seed in range(8):
            out = np.load(outdir / f"seed{seed:04d}.npy")
            assert out.dtype == np.float32
            assert max_err(out, ref[seed]) <= tol, (label, seed)
            assert (outdir / f"seed{seed:04d}.png").is_file()
