"""ONNX and TorchScript export: every family round-trips through the exported file within 1e-4 of the eager
network (checked here independently of the export's own verification, at a batch size it was not traced with),
graphs hold standard operators only, StyleGAN-XL's labels still enter through argmax, and the shared-weight
modulated convolution equals the grouped one."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from stylegan.cli.main import main
from stylegan.io.export import ExportedGenerator, export_generator, input_transform
from stylegan.io.load import load_network
from stylegan.models import stylegan1, stylegan2, stylegan3, stylegan_xl
from stylegan.models.registry import NETWORKS
from stylegan.models.stylegan3 import make_transform
from stylegan.ops import fast_paths
from stylegan.ops.modconv import grouped_modconv, grouped_modconv_enabled

TOL = 1e-4
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


def _perturbed(G: torch.nn.Module) -> torch.nn.Module:
    """Nonzero biases, noise strengths and W average, so every term of the network shows in its output, and a
    non-uniform learned constant (a freshly initialised StyleGAN (2019) one is all ones: its instance norm then
    divides by the noise alone, which makes the network ill-conditioned in float32)."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(("bias", "noise_strength", "const")) and "affine" not in name:
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
        G.mapping.w_avg.add_(0.3 * torch.randn(G.mapping.w_avg.shape, generator=gen))
    return G.eval().requires_grad_(False)


def _sg2(architecture: str, c_dim: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = stylegan2.GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=16,
                                    mapping=stylegan2.MappingConfig(num_layers=2),
                                    synthesis=stylegan2.SynthesisConfig(channel_base=256, channel_max=16, architecture=architecture))
    return _perturbed(stylegan2.Generator(cfg))


def _sg3(config: str, c_dim: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    return _perturbed(stylegan3.Generator(stylegan3.stylegan3_config(config, 16, z_dim=16, w_dim=16, c_dim=c_dim,
                                                                       channel_base=256, channel_max=16)))


def _sg1(style: str, c_dim: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    return _perturbed(stylegan1.Generator(stylegan1.GeneratorConfig(
        z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=16, mapping=stylegan1.MappingConfig(num_layers=2),
        synthesis=stylegan1.SynthesisConfig(style=style, channel_base=128, channel_max=16))))


def _xl(c_dim: int = 0) -> torch.nn.Module:
    """The registered tiny StyleGAN-XL generator grown once (8² stem -> 16²)."""
    torch.manual_seed(0)
    return _perturbed(stylegan_xl.Generator(NETWORKS[("stylegan_xl", "generator")].tiny(c_dim)["x2"]))


FAMILIES = {  # name -> (the fixtures it reads) -> generator
    "sg2-orig": lambda fx: _sg2("orig"),
    "sg2-skip-parity": lambda fx: load_network(fx("parity_dir") / "sg2_32").generator,
    "sg2-resnet-cond": lambda fx: _sg2("resnet", c_dim=3),
    "sg3-t-parity": lambda fx: load_network(fx("parity_dir") / "sg3t_32").generator,
    "sg3-r-cond": lambda fx: _sg3("stylegan3-r", c_dim=2),
    "sg1-adain-cond": lambda fx: _sg1("adain", c_dim=3),
    "sg1-demod": lambda fx: _sg1("demod"),
    "xl-parity-cond": lambda fx: load_network(fx("parity_xl_dir") / "xl_g32_sr_cond").generator,
    "xl-tiny": lambda fx: _xl(),
}


def _inputs(G: torch.nn.Module, n: int, psi: float = 0.6) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(42)
    c = torch.zeros([n, G.c_dim])
    if G.c_dim:
        c[torch.arange(n), torch.arange(n) % G.c_dim] = 1
    return {"z": torch.randn([n, G.z_dim], generator=gen), "c": c, "psi": torch.full([n], psi),
            "transform": torch.from_numpy(np.linalg.inv(make_transform((-0.2, 0.1), -20))).float()}


def _eager(G: torch.nn.Module, x: dict[str, torch.Tensor], psi: float, **kwargs) -> np.ndarray:
    """G's own forward (default ops, grouped modconv), with the transform set as `stylegan generate` sets it."""
    buf = input_transform(G)
    with torch.no_grad():
        if buf is not None:
            buf.copy_(x["transform"])
        img = G(x["z"], x["c"] if G.c_dim else None, truncation_psi=psi, noise_mode="const", force_fp32=True, **kwargs)
        if buf is not None:
            buf.copy_(torch.eye(3))
    return img.numpy()


def _run(path, fmt: str, names: list[str], x: dict[str, torch.Tensor]) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == names
        return session.run(None, {n: x[n].numpy() for n in names})[0]
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(*[x[n] for n in names]).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_export_round_trip(family, fmt, request, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    G = FAMILIES[family](request.getfixturevalue)
    path = tmp_path / f"g.{fmt}"
    result = export_generator(G, path, fmt)
    names = ["z"] + (["c"] if G.c_dim else []) + ["psi"] + (["transform"] if input_transform(G) is not None else [])
    assert list(result.inputs) == names and result.inputs["z"] == ["N", G.z_dim]
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOL and result.batch_sizes == [3, 1]
    x = _inputs(G, 4)  # traced at batch 2, verified at 3 and 1; 4 here
    expected = _eager(G, x, psi=0.6)
    got = _run(path, fmt, names, x)
    assert expected.shape == (4, G.img_channels, G.img_resolution, G.img_resolution) and expected.std() > 0.01
    err = float(np.abs(got - expected).max())
    print(f"{family} {fmt}: max |Δ| {err:.3g} (export's own check: {result.max_abs_diff:.3g})")
    assert err <= TOL
    if fmt == "onnx":
        import onnx

        model = onnx.load(str(path))
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}  # no custom ops
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch size


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_synthesis_part_and_baked_settings(fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    G = _sg2("skip", c_dim=3)
    synth = export_generator(G, tmp_path / "s", fmt, part="synthesis", noise_mode="none")
    assert list(synth.inputs) == ["ws"] and synth.inputs["ws"] == ["N", G.num_ws, G.w_dim] and synth.max_abs_diff <= TOL
    x = _inputs(G, 5)
    with torch.no_grad():
        ws = G.mapping(x["z"], x["c"], truncation_psi=0.5) + 0.1
        expected = G.synthesis(ws, noise_mode="none").numpy()
        noisy = G.synthesis(ws, noise_mode="const").numpy()
    got = _run(tmp_path / "s", fmt, ["ws"], {"ws": ws})
    assert np.abs(got - expected).max() <= TOL < np.abs(noisy - expected).max()
    cut = export_generator(G, tmp_path / "g", fmt, truncation_cutoff=3)
    assert cut.max_abs_diff <= TOL
    psi = torch.tensor([0.2, 1.0, -0.5])  # per-sample psi
    y = {k: (v[:3] if k != "psi" else psi) for k, v in _inputs(G, 3).items()}
    expected = np.concatenate([_eager(G, {k: v[i:i + 1] for k, v in y.items()}, psi=float(psi[i]), truncation_cutoff=3)
                               for i in range(3)])
    assert np.abs(_run(tmp_path / "g", fmt, ["z", "c", "psi"], y) - expected).max() <= TOL


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_xl_labels_enter_the_graph_through_argmax(fmt, tmp_path):
    """Soft, all-zero and tied label rows: the exported XL generator takes argmax(c) (first maximum) as the eager one."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    G = _xl(c_dim=3)
    result = export_generator(G, tmp_path / "xl", fmt)
    assert list(result.inputs) == ["z", "c", "psi", "transform"] and result.max_abs_diff <= TOL
    x = _inputs(G, 5)
    x["c"] = torch.tensor([[0.0, 0, 0], [0.2, 0.5, 0.3], [0, 2, 2], [0, 0, 1], [0.4, 0.4, 0.1]])
    expected = _eager(G, x, psi=0.6)
    x_hard = {**x, "c": torch.eye(3)[[0, 1, 1, 2, 0]]}
    assert np.array_equal(expected, _eager(G, x_hard, psi=0.6))
    names = list(result.inputs)
    got = _run(tmp_path / "xl", fmt, names, x)
    assert np.abs(got - expected).max() <= TOL and np.array_equal(got, _run(tmp_path / "xl", fmt, names, x_hard))


def test_fp16_blocks_export_in_float32(parity_dir, tmp_path):
    """stylegan2-ada networks run their fp16 blocks in fp16 on the CPU; the export is the float32 network."""
    G = load_network(parity_dir / "ada_sg2_32").generator
    result = export_generator(G, tmp_path / "ada.pt", "torchscript")
    ref = np.load(parity_dir / "ada_sg2_32" / "reference_fp32.npz")["img_psi07"]
    z = torch.from_numpy(np.concatenate([np.random.RandomState(s).randn(1, G.z_dim) for s in range(8)]).astype(np.float32))
    got = _run(tmp_path / "ada.pt", "torchscript", ["z", "psi"], {"z": z, "psi": torch.full([8], 0.7)})
    assert result.max_abs_diff <= TOL and np.abs(got - ref).max() <= TOL  # NVIDIA's float32 outputs


@pytest.mark.parametrize("make", [lambda: _sg2("skip"), lambda: _sg1("demod"), lambda: _sg3("stylegan3-t"),
                                  lambda: _sg3("stylegan3-r")])
def test_shared_weight_modconv_equals_grouped(make):
    """The export's formulation of the modulated convolution (one weight for the batch) against NVIDIA's grouped one,
    on the reference ops, whole networks, batch 3."""
    G = make()
    ws = torch.randn([3, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), fast_paths(False):
        grouped = G.synthesis(ws, noise_mode="const")
        with grouped_modconv(False):
            assert not grouped_modconv_enabled()
            shared = G.synthesis(ws, noise_mode="const")
        assert grouped_modconv_enabled()
    assert grouped.std() > 0.01 and (shared - grouped).abs().max() <= TOL


def test_exported_module_is_a_copy_with_a_static_lod():
    G = _sg1("adain")
    result_module = ExportedGenerator(G)
    assert isinstance(result_module.G.synthesis.lod, float) and "lod" not in dict(result_module.G.synthesis.named_buffers())
    with pytest.raises(ValueError, match="part must be one of"):
        ExportedGenerator(_sg2("skip"), part="mapping")
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        ExportedGenerator(_sg2("skip"), noise_mode="random")


def test_failed_verification_writes_nothing(tmp_path, monkeypatch):
    import stylegan.io.export as export

    monkeypatch.setattr(export, "verify", lambda *a, **k: (0.5, [3, 1]))
    with pytest.raises(RuntimeError, match="max |Δ| = 0.5"):
        export.export_generator(_sg2("skip"), tmp_path / "g.pt", "torchscript")
    assert not (tmp_path / "g.pt").exists()


def test_cli_export(tmp_path, capsys):
    net = tmp_path / "net.safetensors"
    assert main(["init", "--preset", "sg2-32", "--seed", "1", "--out", str(net)]) == 0
    out = tmp_path / "g.pt"
    assert main(["export", "--network", str(net), "--format", "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "inputs: z ['N', 64], psi ['N']" in printed and "max |Δ| = " in printed
    module = torch.jit.load(io.BytesIO(out.read_bytes()))
    assert tuple(module(torch.randn(2, 64), torch.ones(2)).shape) == (2, 3, 32, 32)
    assert main(["export", "--network", str(net), "--format", "onnx", "--opset", "16", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "argument --opset: must be >= 17, got 16" in capsys.readouterr().err
    assert main(["export", "--network", str(net), "--format", "torchscript", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "--out " + str(tmp_path / "x.onnx") + ": a torchscript file ends in .pt or .pth" in capsys.readouterr().err
    assert main(["export", "--network", str(net), "--format", "torchscript", "--trunc-cutoff", "99", "--out", str(tmp_path / "y.pt")]) == 2
    assert "--trunc-cutoff 99" in capsys.readouterr().err
    assert main(["export", "--network", str(tmp_path / "none.pkl"), "--format", "torchscript", "--out", str(tmp_path / "z.pt")]) == 2
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.pt").exists() and not (tmp_path / "z.pt").exists()
