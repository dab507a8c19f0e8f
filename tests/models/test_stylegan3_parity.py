"""Our StyleGAN3 generator against outputs of NVIDIA's official code (../shared/parity/sg3t_32).

The fixture pairs a StyleGAN3-T generator with a StyleGAN2 (resnet) discriminator.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import PSIS, max_err, reference_errors, reference_inputs, shared_missing, write_fixture_pickle

from stylegan import load_network
from stylegan.cli.main import main as cli_main
from stylegan.models.stylegan3 import make_transform, set_transform

NAME = "sg3t_32"
TOL = 1e-4


def check_outputs(net, ref: dict[str, np.ndarray]) -> dict[str, float]:
    """The StyleGAN2 reference outputs (helpers.reference_errors) plus the transformed images."""
    G = net.G_ema
    z, c = reference_inputs(G.z_dim, G.c_dim)
    errors = reference_errors(net, ref)
    with torch.no_grad():
        G.synthesis.input.transform.copy_(torch.from_numpy(ref["transform_matrix_inv"]))
        img = torch.cat([G(z[i : i + 1], c[i : i + 1]) for i in range(4)])
        G.synthesis.input.transform.copy_(torch.eye(3))
        errors["img_transformed_psi10"] = max_err(img, ref["img_transformed_psi10"])
    return errors


@pytest.fixture
def ref(parity_dir) -> dict[str, np.ndarray]:
    if not (parity_dir / NAME).is_dir():
        shared_missing(f"parity fixture {NAME}")
    return dict(np.load(parity_dir / NAME / "reference.npz"))


def test_folder_matches_official(parity_dir, ref):
    net = load_network(parity_dir / NAME)
    assert type(net.G_ema).__module__ == "stylegan.models.stylegan3"
    errors = check_outputs(net, ref)
    assert max(errors.values()) <= TOL, errors


def test_official_pickle_matches_official(parity_dir, ref, tmp_path):
    marker = tmp_path / "EXECUTED"
    pkl = tmp_path / "network-snapshot.pkl"
    write_fixture_pickle(parity_dir / NAME, pkl, marker)
    net = load_network(pkl)
    assert net.source_format == "official-pickle" and type(net.G_ema).__module__ == "stylegan.models.stylegan3"
    errors = check_outputs(net, ref)
    assert max(errors.values()) <= TOL, errors
    assert not marker.exists(), "the module source stored in the pickle was executed"


def test_native_round_trip(parity_dir, tmp_path):
    net = load_network(parity_dir / NAME)
    net.save(tmp_path / "net.safetensors")
    back = load_network(tmp_path / "net.safetensors")
    assert back.G_ema.config == net.G_ema.config
    a, b = net.G_ema.state_dict(), back.G_ema.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    z = torch.randn([1, net.G_ema.z_dim])
    with torch.no_grad():
        assert torch.equal(net.G_ema(z), back.G_ema(z))


def test_transform_matrix_matches_gen_images(ref):
    m = np.linalg.inv(make_transform((0.25, 0), 10))
    assert max_err(m.astype(np.float32), ref["transform_matrix_inv"]) == 0


@pytest.mark.parametrize("tag", sorted(PSIS))
def test_generate_raw_matches_official(parity_dir, ref, tag, tmp_path):
    rc = cli_main(["generate", "--network", str(parity_dir / NAME), "--seeds", "0-7", "--trunc", str(PSIS[tag]),
                   "--outdir", str(tmp_path), "--raw", "--device", "cpu"])
    assert rc == 0
    for seed in range(8):
        assert max_err(np.load(tmp_path / f"seed{seed:04d}.npy"), ref[f"img_psi{tag}"][seed]) <= TOL


def test_generate_transformed_matches_official(parity_dir, ref, tmp_path):
    rc = cli_main(["generate", "--network", str(parity_dir / NAME), "--seeds", "0-3", "--translate", "0.25,0",
                   "--rotate", "10", "--outdir", str(tmp_path), "--raw", "--device", "cpu"])
    assert rc == 0
    for seed in range(4):
        assert max_err(np.load(tmp_path / f"seed{seed:04d}.npy"), ref["img_transformed_psi10"][seed]) <= TOL


def test_transform_refused_for_stylegan2(parity_dir, tmp_path, capsys):
    rc = cli_main(["generate", "--network", str(parity_dir / "sg2_32"), "--seeds", "0", "--rotate", "10",
                   "--outdir", str(tmp_path), "--device", "cpu"])
    assert rc == 2 and "only StyleGAN3" in capsys.readouterr().err
    with pytest.raises(ValueError, match="only StyleGAN3"):
        set_transform(load_network(parity_dir / "sg2_32").G_ema, (0.1, 0), 0)


def test_info_describes_stylegan3(parity_dir, capsys):
    assert cli_main(["info", str(parity_dir / NAME), "--json"]) == 0
    g = json.loads(capsys.readouterr().out)["networks"]["G_ema"]
    assert g["family"] == "stylegan3" and g["architecture"] == "stylegan3-t" and g["num_ws"] == 16
    assert g["conv_kernel"] == 3 and g["use_radial_filters"] is False


def test_convert_to_rosinality_refused(parity_dir, tmp_path, capsys):
    rc = cli_main(["convert", str(parity_dir / NAME), str(tmp_path / "x.pt"), "--to", "rosinality"])
    assert rc == 2 and "StyleGAN2 networks only" in capsys.readouterr().err
    assert cli_main(["generate", "--network", str(parity_dir / NAME), "--seeds", "0", "--translate", "1",
                     "--outdir", str(tmp_path)]) == 2
