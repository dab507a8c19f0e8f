"""The commands on StyleGAN-XL networks, end to end on the shared fixtures (../shared/parity_xl): generate (--class,
classes drawn per seed, class-wise --trunc, --centroids), samplesheet, mix, video, truncation, init; and their
one-line errors. Expected images re-state StyleGAN-XL's gen_utils.get_w_from_seed / w_to_img naively. Its truncation,
w_avg + (w - w_avg) psi, is our one truncation (`models.common.truncate`, a lerp, as the official mapping network
truncates) up to float32 rounding: images are compared within TOL, pixels exactly against the conversion of our output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import max_err
from PIL import Image

from stylegan import load_network
from stylegan.cli.main import main

TOL = 1e-4


@pytest.fixture(scope="module")
def g16(parity_xl_dir):
    return parity_xl_dir / "xl_g16_cond"


@pytest.fixture(scope="module")
def G(g16):
    return load_network(g16).G_ema


def official_image(G, seed: int, n: int = 1, class_idx: int | None = None, psi: float = 1.0, centroids: np.ndarray | None = None):
    """gen_utils.get_w_from_seed + G.synthesis, as StyleGAN-XL's gen_images.py / gen_class_samplesheet.py run them."""
    if class_idx is None:
        class_indices = torch.from_numpy(np.random.RandomState(seed).randint(low=0, high=G.c_dim, size=n))
        w_avg = G.mapping.w_avg.index_select(0, class_indices)
    else:
        w_avg = G.mapping.w_avg[class_idx].unsqueeze(0).repeat(n, 1)
        class_indices = torch.full((n,), class_idx)
    labels = torch.nn.functional.one_hot(class_indices, G.c_dim)
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim))
    with torch.no_grad():
        w = G.mapping(z, labels)
        if centroids is not None:
            c = torch.from_numpy(centroids)[None].repeat(n, 1, 1)
            w_avg = c[0].index_select(0, torch.norm(c - w[:, :1], dim=2, p=2).argmin(1))
        w_avg = w_avg.unsqueeze(1).repeat(1, G.mapping.num_ws, 1)
        w = w_avg + (w - w_avg) * psi
        return torch.cat([G.synthesis(w[i : i + 1], noise_mode="const") for i in range(n)]), class_indices


def xl_pixels(img: torch.Tensor) -> np.ndarray:
    """gen_utils.w_to_img: (x + 1) * 255 / 2, NHWC, clamped, truncated to uint8."""
    return ((img + 1) * 255 / 2).permute(0, 2, 3, 1).clamp(0, 255).to(torch.uint8).numpy()


def one_line_error(capsys, rc: int, *words: str) -> None:
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and all(w in err for w in words), err


def test_generate_class_matches_the_reference(parity_xl_dir, tmp_path):
    folder = parity_xl_dir / "xl_g32_sr_cond"
    ref = dict(np.load(folder / "reference.npz"))
    assert main(["generate", "--network", str(folder), "--seeds", "3", "--class", "3", "--trunc", "0.7", "--raw",
                 "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    assert max_err(np.load(tmp_path / "seed0003.npy"), ref["img_psi07"][3]) <= TOL  # reference: class = seed % 10


def test_generate_draws_a_class_per_seed_as_gen_images(g16, G, tmp_path):
    assert main(["generate", "--network", str(g16), "--seeds", "0-2,11", "--trunc", "0.6", "--raw", "--device", "cpu",
                 "--outdir", str(tmp_path)]) == 0
    classes = []
    for seed in (0, 1, 2, 11):
        img, cls = official_image(G, seed, psi=0.6)
        classes.append(int(cls))
        raw = np.load(tmp_path / f"seed{seed:04d}.npy")
        assert max_err(raw, img[0].numpy()) <= TOL
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png")), xl_pixels(torch.from_numpy(raw)[None])[0])
    assert len(set(classes)) > 1  # the classes really are drawn per seed


def test_generate_class_and_centroids(g16, G, tmp_path, capsys):
    rng = np.random.RandomState(5)
    centroids = (G.mapping.w_avg.numpy()[[1, 4, 7]] + rng.randn(3, G.w_dim)).astype(np.float32)
    np.save(tmp_path / "centroids.npy", centroids)
    out = tmp_path / "out"
    assert main(["generate", "--network", str(g16), "--seeds", "5,6", "--class", "4", "--trunc", "0.5", "--centroids",
                 str(tmp_path / "centroids.npy"), "--raw", "--device", "cpu", "--outdir", str(out)]) == 0
    for seed in (5, 6):
        img, _ = official_image(G, seed, class_idx=4, psi=0.5, centroids=centroids)
        assert max_err(np.load(out / f"seed{seed:04d}.npy"), img[0].numpy()) <= TOL
    np.save(tmp_path / "narrow.npy", centroids[:, :64])
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for bad, words in (("narrow.npy", ("expected [K, 128] float centroids", "[3, 64]")), ("objects.npy", ("not a NumPy .npy file",))):
        rc = main(["generate", "--network", str(g16), "--seeds", "0", "--centroids", str(tmp_path / bad), "--outdir", str(tmp_path / "x")])
        one_line_error(capsys, rc, "--centroids", bad, *words)
    rc = main(["generate", "--network", str(g16), "--seeds", "0", "--class", "10", "--outdir", str(tmp_path / "x")])
    one_line_error(capsys, rc, "--class 10: out of range, this network has 10 classes")
    assert not (tmp_path / "x").exists()


def test_samplesheet_rows_are_classes(g16, G, tmp_path, capsys):
    assert main(["samplesheet", "--network", str(g16), "--classes", "2,7", "--samples-per-class", "2", "--seed", "42",
                 "--trunc", "0.7", "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (2 * 16, 2 * 16, 3)
    for row, k in enumerate((2, 7)):
        img, _ = official_image(G, 42, n=2, class_idx=k, psi=0.7)
        z = torch.from_numpy(np.random.RandomState(42).randn(2, G.z_dim).astype(np.float32))
        with torch.no_grad():  # the official mapping's truncation (its lerp): the same pixels, not only within TOL
            ours = torch.cat([G.synthesis(w[None], noise_mode="const") for w in G.mapping(z, torch.eye(10)[[k, k]], truncation_psi=0.7)])
        assert max_err(ours, img.numpy()) <= TOL
        for col, px in enumerate(xl_pixels(ours)):
            assert np.array_equal(sheet[row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16], px), (k, col)
    assert main(["samplesheet", "--network", str(g16), "--classes", "2,7", "--samples-per-class", "2", "--grid-width", "5",
                 "--device", "cpu", "--outdir", str(tmp_path / "wide")]) == 0
    assert np.asarray(Image.open(tmp_path / "wide" / "sheet.png")).shape == (16, 4 * 16, 3)  # 5 -> 4: whole classes per row
    rc = main(["samplesheet", "--network", str(g16), "--classes", "3,12", "--outdir", str(tmp_path / "x")])
    one_line_error(capsys, rc, "--class 12: out of range")
    assert not (tmp_path / "x").exists()


def test_unconditional_xl_network(tmp_path, capsys):
    net = tmp_path / "xl.safetensors"
    assert main(["init", "--preset", "xl-tiny", "--out", str(net)]) == 0
    rc = main(["generate", "--network", str(net), "--seeds", "0", "--class", "1", "--outdir", str(tmp_path / "x")])
    one_line_error(capsys, rc, "--class 1: this network is unconditional")
    rc = main(["samplesheet", "--network", str(net), "--classes", "0", "--outdir", str(tmp_path / "x")])
    one_line_error(capsys, rc, "unconditional")
    assert main(["generate", "--network", str(net), "--seeds", "0-1", "--trunc", "0.5", "--device", "cpu",
                 "--outdir", str(tmp_path / "imgs")]) == 0
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["seed0000.png", "seed0001.png"]
    assert not (tmp_path / "x").exists()


def test_init_needs_a_random_embedding_beyond_1000_classes(tmp_path, capsys):
    out = tmp_path / "xl.safetensors"
    rc = main(["init", "--preset", "xl-tiny", "--c-dim", "1001", "--out", str(out)])
    one_line_error(capsys, rc, "--class-embed random")
    assert not out.exists()
    assert main(["init", "--preset", "xl-tiny", "--c-dim", "1001", "--class-embed", "random", "--resolution", "32",
                 "--out", str(out)]) == 0
    G = load_network(out).G_ema
    assert G.c_dim == 1001 and G.mapping.embed.weight.shape == (1001, 320) and G.img_resolution == 32 and G.num_ws == 17
    sg2 = tmp_path / "sg2.safetensors"
    for flags, words in ((["--resolution", "64"], ("--preset sg2-32: resolution 64", "only the StyleGAN-XL presets")),
                         (["--class-embed", "random"], ("--preset sg2-32: class_embed 'random'",))):
        one_line_error(capsys, main(["init", "--preset", "sg2-32", *flags, "--out", str(sg2)]), *words)
    assert not sg2.exists()


def test_mix_video_and_truncation_on_xl(g16, G, tmp_path):
    assert main(["mix", "--network", str(g16), "--rows", "0,1", "--cols", "2", "--styles", "0-5", "--device", "cpu",
                 "--outdir", str(tmp_path / "mix")]) == 0
    assert np.asarray(Image.open(tmp_path / "mix" / "grid.png")).shape == (3 * 16, 2 * 16, 3)
    assert main(["truncation", "--network", str(g16), "--seeds", "3", "--psi", "0,1", "--class", "5", "--device", "cpu",
                 "--cells", "--outdir", str(tmp_path / "trunc")]) == 0
    with torch.no_grad():  # psi = 0 renders the class's W average
        avg = G.synthesis(G.mapping.w_avg[5][None, None].repeat(1, G.num_ws, 1), noise_mode="const")
    got = np.asarray(Image.open(tmp_path / "trunc" / "seed0003-psi0.png"))
    assert np.array_equal(got, (avg[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy())
    assert main(["video", "--network", str(g16), "--seeds", "0,1", "--w-frames", "2", "--device", "cpu",
                 "--output", str(tmp_path / "lerp.gif")]) == 0
    assert (tmp_path / "lerp.gif").stat().st_size > 0
