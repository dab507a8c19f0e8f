"""StyleGAN-XL against the official code (../shared/parity_xl): the growth function against schedule.json, and
ws / images of both networks rebuilt from each layer's own constructor arguments, with the default fast ops and
with the reference ops."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import PSIS, max_err

from stylegan.models import stylegan3
from stylegan.models.stylegan_xl import (
    Generator, GeneratorConfig, GrowthStage, LayerConfig, MappingConfig, StageHistory, SynthesisConfig, grow_generator, history_layers,
)
from stylegan.ops import fast_paths

NAMES = ("xl_g16_cond", "xl_g32_sr_cond")
TOL = 1e-4
SPEC_FIELDS = ("tmp_sampling_rate", "up_factor", "down_factor", "up_taps", "down_taps", "down_radial", "conv_kernel", "padding")


def fixture_config(folder) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    entry = json.loads((folder / "config.json").read_text())["G_ema"]
    state = {k.removeprefix("G_ema."): v for k, v in load_file(str(folder / "weights.safetensors")).items()}
    return entry, state


def rebuild(folder, history: StageHistory | None = None) -> Generator:
    """The generator from the fixture's per-layer kwargs + weights (strict), as the README says an XL pickle is rebuilt;
    with `history`, the layers must also equal the ones it grows."""
    entry, state = fixture_config(folder)
    attrs = entry["attributes"]
    layers = [LayerConfig(name=item["name"], **{k: v for k, v in item["init_kwargs"].items() if k != "w_dim"}) for item in entry["layers"]]
    mapping = MappingConfig(num_layers=entry["mapping"]["init_kwargs"]["num_layers"])
    cfg = GeneratorConfig(z_dim=attrs["z_dim"], c_dim=attrs["c_dim"], w_dim=attrs["w_dim"], img_resolution=attrs["img_resolution"],
                          img_channels=attrs["img_channels"], mapping=mapping, synthesis=SynthesisConfig(layers=layers), history=history)
    G = Generator(cfg).eval()
    G.load_state_dict(state, strict=True)
    return G


def provenance_history(folder) -> StageHistory:
    prov = json.loads((folder / "schedule.json").read_text())["provenance"]
    entry = json.loads((folder / "config.json").read_text())["G_ema"]
    stem_kwargs = entry["stem"]["init_kwargs"] if "stem" in entry else entry["init_kwargs"]
    s = dict(prov["stem"])
    stem = stylegan3.SynthesisConfig(
        channel_base=s["channel_base"], channel_max=s["channel_max"], num_layers=s["num_layers"], num_critical=s["num_critical"],
        first_cutoff=s["first_cutoff"], first_stopband=s["first_stopband"], last_stopband_rel=s["last_stopband_rel"],
        margin_size=s["margin_size"], conv_kernel=s["conv_kernel"], use_radial_filters=s["use_radial_filters"],
        magnitude_ema_beta=stem_kwargs["magnitude_ema_beta"],  # a stem constructor argument, passed through to its layers
    )
    return StageHistory(stem_resolution=s["img_resolution"], stem=stem, stages=[GrowthStage(**st) for st in prov["stages"]])


@pytest.mark.parametrize("name", NAMES)
def test_schedule_matches_official(parity_xl_dir, name):
    sched = json.loads((parity_xl_dir / name / "schedule.json").read_text())
    layers, res = history_layers(provenance_history(parity_xl_dir / name), 3)
    assert res == sched["img_resolution"] and len(layers) + 1 == sched["num_ws"] and len(layers) == len(sched["layers"])
    first = layers[0]
    assert sched["input"] == {"channels": first.in_channels, "size": first.in_size, "sampling_rate": first.in_sampling_rate,
                              "bandwidth": first.in_cutoff}
    for lc, want in zip(layers, sched["layers"]):
        spec = lc.spec()
        have = {f.name: getattr(lc, f.name) for f in dataclasses.fields(lc)}
        have.update({k: getattr(spec, k) for k in SPEC_FIELDS})
        have["padding"] = list(spec.padding)
        assert set(want) == set(have), lc.name
        assert have == want, lc.name  # every field exactly (floats bit for bit)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_outputs_match_official(parity_xl_dir, name, fast):
    G = rebuild(parity_xl_dir / name)
    ref = dict(np.load(parity_xl_dir / name / "reference.npz"))
    assert list(ref["layer_names"]) == G.synthesis.layer_names
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    errors = {}
    with fast_paths(fast), torch.no_grad():
        for tag, psi in PSIS.items():
            ws = G.mapping(z, c, truncation_psi=psi)
            errors[f"ws_psi{tag}"] = max_err(ws, ref[f"ws_psi{tag}"])
            img = torch.cat([G.synthesis(ws[i : i + 1], noise_mode="const") for i in range(len(ws))])
            errors[f"img_psi{tag}"] = max_err(img, ref[f"img_psi{tag}"])
    assert max(errors.values()) <= TOL, errors


def test_growing_the_stem_gives_the_superres_network(parity_xl_dir):
    """SuperresGenerator(head_layers=7, up_factor=2) on the xl_g16_cond G_ema: our growth reproduces the official
    network's layers (names, every argument) and carries the stem's weights over unchanged."""
    stem = rebuild(parity_xl_dir / "xl_g16_cond", provenance_history(parity_xl_dir / "xl_g16_cond"))
    grown = grow_generator(stem, GrowthStage(2, 7))
    official = rebuild(parity_xl_dir / "xl_g32_sr_cond", provenance_history(parity_xl_dir / "xl_g32_sr_cond"))
    assert grown.config.synthesis == official.config.synthesis and grown.config.history == official.config.history
    head = set(json.loads((parity_xl_dir / "xl_g32_sr_cond" / "config.json").read_text())["G_ema"]["head_layer_names"])
    theirs = official.state_dict()
    for key, value in grown.state_dict().items():
        if key.split(".")[1] not in head:
            assert torch.equal(value, theirs[key]), key
