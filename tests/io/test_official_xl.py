"""Import of StyleGAN-XL networks: the official folder format, official pickles (dill + persistence) read without
importing or running anything, native round trips, and the one-line errors for what cannot be read."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import sys

import numpy as np
import pytest
import torch
from helpers import PSIS, max_err
from xl_pickle import FOREIGN_MODULES, ProjectedDiscriminator, _DillType, _Reduce, official_discriminator, write_xl_pickle, xl_pickle_bytes

from stylegan import load_network
from stylegan.cli.main import main as cli_main
from stylegan.io import official_xl
from stylegan.io.errors import NetworkLoadError
from stylegan.io.safe_pickle import Inert, TorchModule, safe_load
from stylegan.models import stylegan_xl
from stylegan.models.projected_discriminator import ProjectedDiscriminator as OurD
from stylegan.models.projected_discriminator import ProjectedDiscriminatorConfig

NAMES = ("xl_g16_cond", "xl_g32_sr_cond")
TOL = 1e-4


def errors_against_reference(G, folder) -> dict[str, float]:
    ref = dict(np.load(folder / "reference.npz"))
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    out = {}
    with torch.no_grad():
        for tag, psi in PSIS.items():
            ws = G.mapping(z, c, truncation_psi=psi)
            out[f"ws_psi{tag}"] = max_err(ws, ref[f"ws_psi{tag}"])
            out[f"img_psi{tag}"] = max_err(torch.cat([G.synthesis(w[None], noise_mode="const") for w in ws]), ref[f"img_psi{tag}"])
    return out


@pytest.mark.parametrize("name", NAMES)
def test_folder_matches_official(parity_xl_dir, name):
    net = load_network(parity_xl_dir / name)
    G = net.G_ema
    assert net.source_format == "official-folder" and isinstance(G, stylegan_xl.Generator) and net.G is None
    assert max(errors_against_reference(G, parity_xl_dir / name).values()) <= TOL
    history = G.config.history
    assert history.stem_resolution == 16 and history.stem.num_layers == 10 and history.stem.channel_max == 96
    assert history.stages == ([] if name == "xl_g16_cond" else [stylegan_xl.GrowthStage(2, 7)])
    assert G.config.mapping.class_embed == "imagenet" and G.config.mapping.embed_classes == 1000


def test_native_round_trip_keeps_layers_and_history(parity_xl_dir, tmp_path):
    net = load_network(parity_xl_dir / "xl_g32_sr_cond")
    net.save(tmp_path / "net.safetensors")
    back = load_network(tmp_path / "net.safetensors")
    assert back.G_ema.config == net.G_ema.config and back.G_ema.synthesis.layer_names == net.G_ema.synthesis.layer_names
    a, b = net.G_ema.state_dict(), back.G_ema.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    z, c = torch.randn(2, 64), torch.eye(10)[[3, 7]]
    with torch.no_grad():
        assert torch.equal(net.G_ema(z, c, truncation_psi=0.6), back.G_ema(z, c, truncation_psi=0.6))


def test_history_mismatch_in_an_official_folder_is_refused(parity_xl_dir, tmp_path):
    folder = tmp_path / "net"
    shutil.copytree(parity_xl_dir / "xl_g32_sr_cond", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["G_ema"]["layers"][10]["init_kwargs"]["out_cutoff"] = 9.5
    cfg["G_ema"]["layers"][11]["init_kwargs"]["in_cutoff"] = 9.5
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(NetworkLoadError, match=r"disagree with its stage history \(stem 16² with 10 layers, then x2 with 7 head "
                                               r"layers\): layer L11_52_54: out_cutoff is 9.5"):
        load_network(folder)


def test_unrecorded_stages_leave_the_history_unknown(parity_xl_dir, tmp_path):
    """A network grown more than once records only its last stage: the layers alone rebuild it."""
    folder = tmp_path / "net"
    shutil.copytree(parity_xl_dir / "xl_g32_sr_cond", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["G_ema"]["synthesis"]["init_kwargs"]["img_resolution"] = 8  # as if an 8² stem had grown x2 twice: one stage unrecorded
    (folder / "config.json").write_text(json.dumps(cfg))
    net = load_network(folder)
    assert net.G_ema.config.history is None
    assert max(errors_against_reference(net.G_ema, parity_xl_dir / "xl_g32_sr_cond").values()) <= TOL


# ----------------------------------------------------------------------------- official pickles


@pytest.mark.parametrize("name", NAMES)
def test_official_xl_pickle_loads_without_importing_or_running_anything(parity_xl_dir, tmp_path, name):
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "best_model.pkl"
    write_xl_pickle(parity_xl_dir / name, path, marker)
    assert not any(m.split(".")[0] in FOREIGN_MODULES for m in sys.modules)
    net = load_network(path)
    assert not marker.exists(), "code stored in the pickle was executed"
    assert not any(m.split(".")[0] in FOREIGN_MODULES for m in sys.modules), "a module named by the pickle was imported"
    assert net.source_format == "official-pickle" and net.D is None and "ProjectedDiscriminator" in net.extra["D_not_loaded"]
    inert = set(net.extra["inert_globals"])
    assert {"timm.models.efficientnet.EfficientNet", "dill._dill._create_function", "dill._dill._create_cell",
            "dill._dill._load_type('CodeType')", "posix.system", official_xl.XL_DISCRIMINATOR} <= inert
    for G in (net.G, net.G_ema):
        assert isinstance(G, stylegan_xl.Generator)
        assert max(errors_against_reference(G, parity_xl_dir / name).values()) <= TOL
    folder = load_network(parity_xl_dir / name).G_ema
    assert net.G_ema.config == folder.config


def _varied_d(backbones: list[str], c_dim: int, res: int, **kw) -> OurD:
    """A projected D whose every tensor is random (feature networks, BN statistics, SN vectors, class embedding)."""
    torch.manual_seed(3)
    D = OurD(ProjectedDiscriminatorConfig(backbones=backbones, cond=c_dim > 0, c_dim=c_dim, img_resolution=res, **kw))
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for t in D.state_dict().values():
            if t.is_floating_point():
                t.copy_(t + 0.1 * torch.rand(t.shape, generator=g))
    return D.eval()


@pytest.mark.parametrize("backbones, kw", [(["tf_efficientnet_lite0"], {}),
                                           (["deit_tiny_distilled_patch16_224", "tf_efficientnet_lite0"], {"proj_type": 1, "num_discs": 3})],
                         ids=["lite0", "deit_tiny+lite0-ccm"])
def test_official_xl_pickle_discriminator_loads_as_data(parity_xl_dir, tmp_path, backbones, kw):
    """An official snapshot's D (timm / pg_modules classes by reference, torch's spectral-norm hooks, dill closures):
    read from its pickled module tree, it is our D with the same state dict and the same logits."""
    D = _varied_d(backbones, 10, 32, **kw)
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "snapshot.pkl"
    write_xl_pickle(parity_xl_dir / "xl_g32_sr_cond", path, marker, D=D)
    net = load_network(path)
    assert not marker.exists() and "D_not_loaded" not in net.extra
    assert not any(m.split(".")[0] in FOREIGN_MODULES for m in sys.modules), "a module named by the pickle was imported"
    assert {"torch.nn.utils.spectral_norm.SpectralNorm", "pg_modules.projector.F_RandomProj", "posix.system",
            "timm.models.efficientnet_blocks.InvertedResidual"} <= set(net.extra["inert_globals"])
    assert isinstance(net.D, OurD) and net.D.config == D.config and not net.D.training
    ours, theirs = D.state_dict(), net.D.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    img, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.eye(10)[[1, 7]]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        want = D(img, c)
        torch.manual_seed(0)
        assert torch.equal(net.D(img, c), want)


def test_official_xl_pickle_discriminator_that_does_not_fit_is_reported(parity_xl_dir, tmp_path):
    D = _varied_d(["tf_efficientnet_lite0"], 10, 32)
    official = official_discriminator(D, tmp_path / "EXECUTED")
    disc = official._state["_modules"]["discriminators"]._state["_modules"]["tf_efficientnet_lite0"]
    del disc._state["_modules"]["mini_discs"]._state["_modules"]["3"]._state["_modules"]["embed_proj"]
    path = tmp_path / "snapshot.pkl"
    entry = json.loads((parity_xl_dir / "xl_g32_sr_cond" / "config.json").read_text())["G_ema"]
    from xl_pickle import XL_MODULE_SRC, xl_generator

    G = xl_generator(load_network(parity_xl_dir / "xl_g32_sr_cond").G_ema, entry, XL_MODULE_SRC.format(marker=tmp_path / "EXECUTED"))
    path.write_bytes(xl_pickle_bytes({"G_ema": G, "D": official}))
    net = load_network(path)
    assert net.D is None and net.G_ema is not None
    assert net.extra["D_not_loaded"].startswith(f"D: {official_xl.XL_DISCRIMINATOR} not loaded: weights do not fit the architecture: missing ")
    assert "mini_discs.3.embed_proj.weight" in net.extra["D_not_loaded"]


def test_xl_source_is_not_taken_for_stylegan3(parity_xl_dir, tmp_path):
    path = tmp_path / "net.pkl"
    write_xl_pickle(parity_xl_dir / "xl_g16_cond", path, tmp_path / "EXECUTED", with_d=False)
    with open(path, "rb") as f:
        data, _ = safe_load(f)
    from stylegan.io.load import official_module_of

    g = data["G_ema"]
    assert "class SynthesisInput" in g.module_src and official_module_of(g) == official_xl.XL_MODULE
    assert isinstance(g.submodules()["mapping"].submodules()["embed"], TorchModule)


def test_discriminator_alone_is_refused(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    alone = tmp_path / "d.pkl"
    alone.write_bytes(xl_pickle_bytes(ProjectedDiscriminator(marker)))  # the pickled object is the discriminator
    only_d = tmp_path / "only-d.pkl"
    only_d.write_bytes(xl_pickle_bytes({"D": ProjectedDiscriminator(marker), "G": None, "G_ema": None}))
    for path, what in ((alone, "a StyleGAN-XL discriminator alone"), (only_d, "only a StyleGAN-XL discriminator")):
        assert cli_main(["info", str(path)]) == 2
        err = capsys.readouterr().err
        assert what in err and err.count("\n") == 1
    assert not marker.exists()


def test_truncated_xl_pickle_is_a_one_line_error(parity_xl_dir, tmp_path, capsys):
    path = tmp_path / "net.pkl"
    write_xl_pickle(parity_xl_dir / "xl_g16_cond", path, tmp_path / "EXECUTED")
    data = path.read_bytes()
    for frac in (0.001, 0.3, 0.7, 0.999):
        cut = tmp_path / f"cut{frac}.pkl"
        cut.write_bytes(data[: int(len(data) * frac)])
        out = tmp_path / f"cut{frac}.safetensors"
        assert cli_main(["convert", str(cut), str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"stylegan convert: error: {cut}: ") and err.count("\n") == 1, err
        assert not out.exists()


# ----------------------------------------------------------------------------- class embedding pickle


def test_class_embedding_pickle_is_read_as_data(tmp_path):
    """The layout of in_embeddings/tf_efficientnet_lite0.pkl: protocol 3, {'embed': torch.nn.Embedding} whose
    non-persistent buffer set is dill's `_load_type('set')`; dill's other types stay inert."""
    torch.manual_seed(0)
    embed = torch.nn.Embedding(1000, 320)
    embed.__dict__["_non_persistent_buffers_set"] = _Reduce(_DillType("set"), [])
    path = tmp_path / "tf_efficientnet_lite0.pkl"
    with __import__("xl_pickle")._xl_names():
        path.write_bytes(pickle.dumps({"embed": embed}, protocol=3))
    w = official_xl.read_class_embedding(path)
    assert torch.equal(w, embed.weight.detach()) and w.dtype == torch.float32
    obj, inert = safe_load(io.BytesIO(xl_pickle_bytes({"code": _Reduce(_DillType("CodeType"), 1), "s": _Reduce(_DillType("set"), [1])})))
    assert isinstance(obj["code"], Inert) and obj["s"] == {1} and inert == ["dill._dill._load_type('CodeType')"]
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"embed": [1, 2]}))
    with pytest.raises(pickle.UnpicklingError, match="expected {'embed': torch.nn.Embedding}"):
        official_xl.read_class_embedding(bad)


# ----------------------------------------------------------------------------- info and convert


def test_info_and_convert(parity_xl_dir, tmp_path, capsys):
    path = tmp_path / "net.pkl"
    write_xl_pickle(parity_xl_dir / "xl_g32_sr_cond", path, tmp_path / "EXECUTED")
    assert cli_main(["info", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    g = report["networks"]["G_ema"]
    assert g["family"] == "stylegan_xl" and g["architecture"] == "stylegan_xl-t" and g["num_ws"] == 17 and g["layers"] == 16
    assert g["stages"] == "stem 16² (10 layers) -> x2 +7 head layers" and g["classes"] == 10 and g["class_embedding"] == "1000x320"
    assert "ProjectedDiscriminator" in report["not_loaded"] and set(report["networks"]) == {"G", "G_ema"}
    out = tmp_path / "net.safetensors"
    assert cli_main(["convert", str(path), str(out)]) == 0
    back = load_network(out)
    assert back.source_format == "native" and max(errors_against_reference(back.G_ema, parity_xl_dir / "xl_g32_sr_cond").values()) <= TOL
    assert cli_main(["convert", str(out), str(tmp_path / "x.pt")]) == 2
    assert "StyleGAN2 networks only, this is a stylegan_xl generator" in capsys.readouterr().err
