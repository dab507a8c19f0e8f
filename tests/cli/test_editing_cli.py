"""`stylegan mix`, `stylegan video` and `stylegan truncation` end to end on the parity fixture networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan import load_network
from stylegan.cli.common import seed_to_z
from stylegan.cli.main import main
from stylegan.editing.latents import save_projected_w
from stylegan.io.images import hwc_uint8


@pytest.fixture(scope="module")
def sg2(parity_dir):
    return parity_dir / "sg2_32"


@pytest.fixture(scope="module")
def G(sg2):
    return load_network(sg2).generator


def _image(G, ws):
    with torch.no_grad():
        return hwc_uint8(G.synthesis(ws, noise_mode="const")[0])


def _decode(path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    return meta, sum(1 for _ in gen)


def test_mix_writes_pairs_seeds_and_grid(sg2, G, tmp_path):
    assert main(["mix", "--network", str(sg2), "--rows", "0,1", "--cols", "2-4", "--styles", "0-3", "--trunc", "0.7",
                 "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"{r}-{c}.png" for r in (0, 1) for c in (2, 3, 4)} | {f"{s}-{s}.png" for s in range(5)} | {"grid.png"}
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * 32, 4 * 32, 3)
    assert (grid[:32, :32] == 0).all()  # blank corner
    with torch.no_grad():
        w = {s: G.mapping(torch.from_numpy(seed_to_z(s, G.z_dim)), None, truncation_psi=0.7) for s in (1, 3)}
    mixed = torch.cat([w[3][:, :4], w[1][:, 4:]], dim=1)  # row 1, layers 0-3 from column 3
    expected = _image(G, mixed)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "1-3.png")), expected)
    assert np.array_equal(grid[64:96, 64:96], expected)
    assert np.array_equal(grid[:32, 64:96], np.asarray(Image.open(tmp_path / "3-3.png")))  # column image on top
    assert np.array_equal(grid[64:96, :32], _image(G, w[1]))  # row image on the left


def test_mix_styles_out_of_range(sg2, tmp_path, capsys):
    assert main(["mix", "--network", str(sg2), "--rows", "0", "--cols", "1", "--styles", "6-9", "--device", "cpu",
                 "--outdir", str(tmp_path)]) == 2
    assert "--styles: layer(s) 8,9 out of range, this network has num_ws=8" in capsys.readouterr().err


def test_video_grid_on_sg2(sg2, G, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "lerp.mp4"
    assert main(["video", "--network", str(sg2), "--seeds", "0-3", "--grid", "2x1", "--w-frames", "3",
                 "--kind", "linear", "--device", "cpu", "--output", str(out)]) == 0
    assert out.read_bytes()[4:8] == b"ftyp"
    meta, n = _decode(out)
    assert n == 2 * 3 and meta["size"] == (64, 32)  # 2 keyframes per cell, 3 frames each; 2 columns, 1 row


def test_video_projected_w_and_noise_seed(sg2, G, tmp_path):
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(np.concatenate([seed_to_z(s, G.z_dim) for s in (5, 6, 7)])), None)
    save_projected_w(tmp_path / "w.npz", ws)
    for name, noise_seed in (("a.gif", "3"), ("b.gif", "3"), ("c.gif", "4")):
        assert main(["video", "--network", str(sg2), "--projected-w", str(tmp_path / "w.npz"), "--w-frames", "2",
                     "--noise-mode", "random", "--noise-seed", noise_seed, "--device", "cpu",
                     "--output", str(tmp_path / name)]) == 0
        with Image.open(tmp_path / name) as gif:
            assert gif.n_frames == 3 * 2 and gif.size == (32, 32)
    video = {name: (tmp_path / name).read_bytes() for name in ("a.gif", "b.gif", "c.gif")}
    assert video["a.gif"] == video["b.gif"] != video["c.gif"]  # random noise follows --noise-seed


def test_video_slerp_z_on_sg3(parity_dir, tmp_path):
    out = tmp_path / "slerp.mp4"
    assert main(["video", "--network", str(parity_dir / "sg3t_32"), "--seeds", "0-1", "--w-frames", "2",
                 "--kind", "slerp-z", "--trunc", "0.7", "--device", "cpu", "--output", str(out)]) == 0
    meta, n = _decode(out)
    assert n == 2 * 2 and meta["size"] == (32, 32)


def test_video_projected_w_errors(sg2, G, tmp_path, capsys):
    save_projected_w(tmp_path / "w.npz", torch.zeros([2, G.num_ws, G.w_dim]))
    base = ["video", "--network", str(sg2), "--projected-w", str(tmp_path / "w.npz"), "--output", str(tmp_path / "v.mp4")]
    assert main([*base, "--grid", "2x1"]) == 2
    assert "--grid 2x1: --projected-w makes a 1x1 video" in capsys.readouterr().err
    assert main([*base, "--kind", "slerp-z"]) == 2
    assert "--kind slerp-z interpolates z" in capsys.readouterr().err
    save_projected_w(tmp_path / "w.npz", torch.zeros([2, G.num_ws + 1, G.w_dim]))
    assert main(base) == 2
    assert "but the network takes [N, 8, 64]" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--seeds", "0-3", "--grid", "4by2"], "--grid 4by2: expected WxH"),
    (["--seeds", "0-2", "--grid", "2x1"], "3 seed(s) do not fill a 2x1 grid evenly (need a multiple of 2"),
    (["--grid", "1x1"], "pass either --seeds or --projected-w"),
])
def test_video_errors(sg2, tmp_path, capsys, argv, message):
    argv = ["video", "--network", str(sg2), "--device", "cpu", "--output", str(tmp_path / "v.mp4"), *argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_truncation_figure(sg2, G, tmp_path):
    psis = [-1.0, 0.0, 0.5, 1.0]
    assert main(["truncation", "--network", str(sg2), "--seeds", "0-2", "--psi=-1,0,0.5,1", "--cells",
                 "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    fig = Image.open(tmp_path / "truncation.png")
    assert fig.width > 4 * 32 and fig.height > 3 * 32  # cells plus label margins
    arr = np.asarray(fig.convert("RGB"))
    left, top = fig.width - 4 * 32, fig.height - 3 * 32
    with torch.no_grad():
        z = torch.from_numpy(seed_to_z(2, G.z_dim))
        for j, psi in enumerate(psis):
            expected = hwc_uint8(G(z, None, truncation_psi=psi, noise_mode="const")[0])
            assert np.array_equal(np.asarray(Image.open(tmp_path / f"seed0002-psi{psi:g}.png")), expected)
            assert np.array_equal(arr[top + 64 : top + 96, left + 32 * j : left + 32 * (j + 1)], expected)
    # psi = 0 is the image of w_avg for every seed.
    assert np.array_equal(arr[top : top + 32, left + 32 : left + 64], arr[top + 32 : top + 64, left + 32 : left + 64])
    assert (arr[:top, :left] == 255).all()  # the corner of the label margins is blank


def test_truncation_cutoff_and_errors(sg2, G, tmp_path, capsys):
    assert main(["truncation", "--network", str(sg2), "--seeds", "4", "--psi", "0.5", "--trunc-cutoff", "3", "--cells",
                 "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    with torch.no_grad():
        z = torch.from_numpy(seed_to_z(4, G.z_dim))
        expected = hwc_uint8(G(z, None, truncation_psi=0.5, truncation_cutoff=3, noise_mode="const")[0])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "seed0004-psi0.5.png")), expected)
    assert main(["truncation", "--network", str(sg2), "--trunc-cutoff", "9", "--outdir", str(tmp_path)]) == 2
    assert "--trunc-cutoff 9: must be between 0 and num_ws=8" in capsys.readouterr().err
    assert main(["truncation", "--network", str(sg2), "--psi", "0.5,x", "--outdir", str(tmp_path)]) == 2
