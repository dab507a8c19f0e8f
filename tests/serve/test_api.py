"""The explorer's API through Starlette's TestClient: frames against independent computations and `stylegan generate`,
bad input answered with one line while the server keeps serving, uploads, projection, and the worker's coalescing."""

from __future__ import annotations

import io
import re
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from stylegan.cli.main import main  # noqa: E402
from stylegan.io.load import load_network  # noqa: E402
from stylegan.serve.app import STATIC, create_app  # noqa: E402
from stylegan.serve.explorer import Explorer  # noqa: E402
from stylegan.serve.worker import SUPERSEDED, RenderWorker  # noqa: E402


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("nets")
    assert main(["init", "--preset", "sg2-32", "--seed", "1", "--out", str(d / "sg2.safetensors")]) == 0
    net = load_network(d / "sg2.safetensors")
    with torch.no_grad():  # fresh networks have zero noise strengths; noise maps must matter here
        for name, p in net.G_ema.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    net.save(d / "sg2.safetensors")
    assert main(["init", "--preset", "sg2-32", "--seed", "2", "--c-dim", "3", "--out", str(d / "cond.safetensors")]) == 0
    return d


@pytest.fixture(scope="module")
def client(nets):
    explorer = Explorer(torch.device("cpu"), max_upload=64 << 10)
    explorer.load(str(nets / "sg2.safetensors"))
    explorer.load(str(nets / "cond.safetensors"))
    with TestClient(create_app(explorer)) as c:
        c.explorer = explorer
        yield c
    explorer.close()


def _png(client, **params) -> np.ndarray:
    r = client.post("/api/render", json={"format": "png", **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and float(r.headers["x-render-ms"]) > 0
    return np.asarray(Image.open(io.BytesIO(r.content)))


def _u8(img: torch.Tensor) -> np.ndarray:
    return (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def _z(seed: int, z_dim: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim).astype(np.float32))


def test_page_and_static_files_are_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "<script src=\"/static/app.js\">" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for path in STATIC.iterdir():  # nothing fetched from another host: no CDN, works offline
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path.name


def test_networks_info(client):
    info = {n["name"]: n for n in client.get("/api/networks").json()["networks"]}
    assert set(info) == {"sg2", "cond"}
    assert info["cond"]["c_dim"] == 3 and info["sg2"]["c_dim"] == 0
    assert info["sg2"]["family"] == "stylegan2" and info["sg2"]["num_ws"] == 8 and not info["sg2"]["has_transform"]
    layers = info["sg2"]["layers"]  # modules with [N, C, H, W] outputs (blocks return (x, img) pairs)
    assert info["sg2"]["has_noise"] and "b32.conv1" in layers and "b4.torgb" in layers and "b32" not in layers


def test_seed_frames_equal_stylegan_generate(client, nets, tmp_path):
    assert main(["generate", "--network", str(nets / "cond.safetensors"), "--seeds", "7", "--trunc", "0.6", "--class", "2",
                 "--trunc-cutoff", "4", "--outdir", str(tmp_path), "--device", "cpu"]) == 0
    expected = np.asarray(Image.open(tmp_path / "seed0007.png"))
    got = _png(client, network="cond", x=7, psi=0.6, class_idx=2, cutoff=4)
    assert np.array_equal(got, expected)


@pytest.fixture(scope="module")
def xl_client(tmp_path_factory):
    """An explorer serving a tiny conditional StyleGAN-XL network (5 classes) with distinct class-wise W averages."""
    path = tmp_path_factory.mktemp("xl") / "xl.safetensors"
    assert main(["init", "--preset", "xl-tiny", "--c-dim", "5", "--seed", "3", "--out", str(path)]) == 0
    net = load_network(path)
    with torch.no_grad():
        net.G_ema.mapping.w_avg.normal_(generator=torch.Generator().manual_seed(4))
    net.save(path)
    explorer = Explorer(torch.device("cpu"))
    explorer.load(str(path))
    with TestClient(create_app(explorer)) as c:
        c.path = path
        yield c
    explorer.close()


def test_stylegan_xl_frames_and_class_selector(xl_client, tmp_path):
    """XL through the generator interface: the class selector picks the label (and the class's W average), frames equal
    `stylegan generate --class` (StyleGAN-XL's (x + 1) * 255 / 2 pixels), its Fourier input takes the transform."""
    info = xl_client.get("/api/networks").json()["networks"]
    assert [(n["name"], n["family"], n["c_dim"], n["num_ws"], n["has_transform"]) for n in info] == [("xl", "stylegan_xl", 5, 12, True)]
    G = load_network(xl_client.path).generator
    frames = {}
    for k in (0, 3):
        with torch.no_grad():
            img = G(_z(7, G.z_dim), torch.eye(5)[[k]], truncation_psi=0.6, noise_mode="const")
        frames[k] = _png(xl_client, network="xl", x=7, psi=0.6, class_idx=k)
        assert np.array_equal(frames[k], ((img[0] + 1) * 255 / 2).permute(1, 2, 0).clamp(0, 255).to(torch.uint8).numpy())
        assert main(["generate", "--network", str(xl_client.path), "--seeds", "7", "--class", str(k), "--trunc", "0.6",
                     "--translate", "0.1,0", "--outdir", str(tmp_path / str(k)), "--device", "cpu"]) == 0
        moved = _png(xl_client, network="xl", x=7, psi=0.6, class_idx=k, translate=[0.1, 0])
        assert np.array_equal(moved, np.asarray(Image.open(tmp_path / str(k) / "seed0007.png"))) and not np.array_equal(moved, frames[k])
    assert np.abs(frames[0].astype(int) - frames[3]).mean() > 1  # another class, another image
    r = xl_client.post("/api/render", json={"network": "xl", "class_idx": 5})
    assert r.status_code == 400 and "class 5: this network has 5 classes" in r.json()["error"]


def test_latent_plane_blends_four_seeds_in_w(client, nets):
    G = load_network(nets / "sg2.safetensors").generator
    x, y = 3.25, 0.5  # corners: seeds 3, 4, 1003, 1004 with weights .375 .125 .375 .125
    with torch.no_grad():
        ws = sum(wt * G.mapping(_z(s, G.z_dim), None, truncation_psi=0.8)
                 for s, wt in ((3, 0.375), (4, 0.125), (1003, 0.375), (1004, 0.125)))
        expected = _u8(G.synthesis(ws, noise_mode="const"))
    got = _png(client, network="sg2", x=x, y=y, psi=0.8)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_style_mixing_and_noise_modes(client, nets):
    G = load_network(nets / "sg2.safetensors").generator
    with torch.no_grad():
        ws = G.mapping(_z(5, G.z_dim), None)
        ws[:, 2:5] = G.mapping(_z(9, G.z_dim), None)[:, 2:5]
        expected = _u8(G.synthesis(ws, noise_mode="none"))
        torch.manual_seed(11)
        random = _u8(G.synthesis(G.mapping(_z(5, G.z_dim), None), noise_mode="random"))
    assert np.array_equal(_png(client, network="sg2", x=5, mix_seed=9, mix_layers=[2, 4], noise_mode="none"), expected)
    assert np.array_equal(_png(client, network="sg2", x=5, noise_mode="random", noise_seed=11), random)


def test_feature_maps_and_formats(client):
    fmap = _png(client, network="sg2", x=1, layer="b8.conv1", channel=3)
    assert fmap.shape == (32, 32) and fmap.std() > 0  # 8x8 maps, nearest-upscaled, grayscale
    rms = _png(client, network="sg2", x=1, layer="b8.conv1")
    assert rms.min() >= 0 and rms.max() == 255
    for fmt, mime in (("jpeg", "image/jpeg"), ("webp", "image/webp")):
        r = client.post("/api/render", json={"network": "sg2", "x": 1, "format": fmt})
        assert r.status_code == 200 and r.headers["content-type"] == mime
        assert Image.open(io.BytesIO(r.content)).size == (32, 32)


@pytest.mark.parametrize("params, message", [
    ({"network": "nope"}, "network: 'nope' is not loaded"),
    ({"network": "sg2", "x": -1}, "seed -1"),
    ({"network": "sg2", "x": 2**32}, "seeds are 0..4294967295"),
    ({"network": "sg2", "psi": "a lot"}, "psi: expected a number"),
    ({"network": "sg2", "psi": True}, "psi: expected a number"),
    ({"network": "sg2", "cutoff": 9}, "cutoff 9: must be between 0 and num_ws=8"),
    ({"network": "sg2", "class_idx": 1}, "this network is unconditional"),
    ({"network": "cond", "class_idx": 3}, "class 3: this network has 3 classes"),
    ({"network": "sg2", "translate": [0.1, 0]}, "StyleGAN3-type networks only"),
    ({"network": "sg2", "mix_seed": 1, "mix_layers": [3, 8]}, "mix_layers 3-8"),
    ({"network": "sg2", "layer": "b64"}, "layer: 'b64'"),
    ({"network": "sg2", "layer": "b8.conv1", "channel": 999}, "channel 999: the layer has"),
    ({"network": "sg2", "format": "gif"}, "format: 'gif'"),
    ({"network": "sg2", "noise_mode": "loud"}, "noise_mode: 'loud'"),
    ({"network": "sg2", "latent": "w99"}, "latent: 'w99' is not loaded"),
])
def test_bad_render_input_is_one_line_and_the_server_keeps_serving(client, params, message):
    r = client.post("/api/render", json=params)
    assert r.status_code == 400 and message in r.json()["error"] and "\n" not in r.json()["error"]
    assert client.post("/api/render", json={"network": "sg2"}).status_code == 200


def test_loading_networks(client, nets, tmp_path):
    r = client.post("/api/networks", json={"path": str(tmp_path / "missing.pkl")})
    assert r.status_code == 400 and "missing.pkl: no such file" in r.json()["error"]
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    assert client.post("/api/networks", json={"path": str(tmp_path / "junk.pkl")}).status_code == 400
    r = client.post("/api/networks", json={"path": str(nets / "sg2.safetensors")})
    assert r.status_code == 200 and r.json()["name"] == "sg2-2"  # names stay unique
    assert "sg2-2" in {n["name"] for n in client.get("/api/networks").json()["networks"]}


def test_save_w_upload_it_and_render_it(client, nets):
    G = load_network(nets / "sg2.safetensors").generator
    r = client.post("/api/ws", json={"network": "sg2", "x": 4, "psi": 0.5})
    assert r.status_code == 200
    w = np.load(io.BytesIO(r.content))["w"]
    with torch.no_grad():
        expected_w = G.mapping(_z(4, G.z_dim), None, truncation_psi=0.5).numpy()
    assert w.shape == (1, 8, 64) and np.array_equal(w, expected_w)
    r = client.post("/api/latents?network=sg2", content=r.content)
    assert r.status_code == 200 and r.json()["count"] == 1
    got = _png(client, network="sg2", latent=r.json()["latent"])
    assert np.array_equal(got, _png(client, network="sg2", x=4, psi=0.5))


def test_bad_uploads(client):
    r = client.post("/api/latents?network=sg2", content=b"not an npz")
    assert r.status_code == 400 and "not a NumPy" in r.json()["error"]
    buf = io.BytesIO()
    np.savez(buf, w=np.zeros([1, 5, 64], np.float32))
    r = client.post("/api/latents?network=sg2&filename=mine.npz", content=buf.getvalue())
    assert r.status_code == 400 and r.json()["error"].startswith("mine.npz: 'w' has shape [1, 5, 64]")
    r = client.post("/api/latents?network=sg2", content=b"x" * (65 << 10))
    assert r.status_code == 413 and "limit of" in r.json()["error"]
    r = client.post("/api/project?network=sg2", content=b"GIF89a not really")
    assert r.status_code == 400 and r.json()["error"].startswith("image: ")
    assert client.get("/api/networks").status_code == 200


def test_projection_in_the_background(client):
    img = Image.fromarray(_png(client, network="sg2", x=2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    r = client.post("/api/project?network=sg2&steps=3&distance=mse", content=buf.getvalue())
    assert r.status_code == 200, r.text
    job = r.json()
    deadline = time.monotonic() + 120
    while not job["done"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
        job = client.get(f"/api/project/{job['id']}").json()
    assert job["error"] is None and job["step"] == 3 and job["distance"] >= 0
    projected = _png(client, network="sg2", latent=job["latent"])
    # Its ws alone (downloaded, uploaded again) render with the network's stored noise maps, not the optimised ones.
    w_file = client.post("/api/ws", json={"network": "sg2", "latent": job["latent"]}).content
    bare = client.post("/api/latents?network=sg2", content=w_file).json()["latent"]
    assert not np.array_equal(_png(client, network="sg2", latent=bare), projected)
    assert np.array_equal(_png(client, network="sg2", latent=bare, noise_mode="none"),
                          _png(client, network="sg2", latent=job["latent"], noise_mode="none"))
    assert client.get("/api/project/p999").status_code == 404
    r = client.post("/api/project?network=sg2&steps=0", content=buf.getvalue())
    assert r.status_code == 400 and "steps 0" in r.json()["error"]


def test_worker_keeps_only_the_newest_waiting_job_per_client():
    worker = RenderWorker()
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = worker.submit("a", lambda: gate.wait(30))
        time.sleep(0.1)  # the worker is now busy with it
        futures = {name: worker.submit(client, lambda n=name: ran.append(n) or n)
                   for client, name in (("b", "b1"), ("c", "c1"), ("b", "b2"), ("b", "b3"))}
        gate.set()
        assert blocker.result(30) is True
        results = {name: f.result(30) for name, f in futures.items()}
    finally:
        worker.stop()
    assert results == {"b1": SUPERSEDED, "b2": SUPERSEDED, "c1": "c1", "b3": "b3"}
    assert ran == ["c1", "b3"]  # clients in turn: c had waited longer than b's newest job
    assert worker.superseded == 2


def test_worker_reports_errors_and_keeps_running():
    worker = RenderWorker()
    try:
        with pytest.raises(ZeroDivisionError):
            worker.submit("a", lambda: 1 / 0).result(30)
        assert worker.call(lambda: 42) == 42
    finally:
        worker.stop()


def test_cli_serve_warns_off_localhost_and_refuses_bad_networks(monkeypatch, nets, capsys):
    uvicorn = pytest.importorskip("uvicorn")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert main(["serve", "--network", str(nets / "sg2.safetensors"), "--host", "0.0.0.0", "--device", "cpu"]) == 0
    assert calls == [{"host": "0.0.0.0", "port": 7860, "log_level": "warning"}]
    assert "warning: --host 0.0.0.0 makes the explorer reachable from other machines" in capsys.readouterr().err
    assert main(["serve", "--network", str(nets / "sg2.safetensors"), "--device", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["serve", "--network", str(nets / "missing.pkl"), "--device", "cpu"]) == 2
    assert "missing.pkl: no such file" in capsys.readouterr().err
