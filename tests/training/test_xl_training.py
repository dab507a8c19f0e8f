"""StyleGAN-XL training: the stylegan-xl / xl-demo preset rows, the frozen-parameter rules of the loop, snapshots
that store pretrained feature networks by reference, and `--grow-from RUN --to RES` end to end with exact resume
inside the grown stage (the CI-sized version of the xl-demo: a few minibatches of each stage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import only_run, run_stats

from stylegan.cli.main import main
from stylegan.data.dataset import ImageDataset
from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.io import download
from stylegan.io.checkpoint import read_checkpoint
from stylegan.io.feature_weights import FEATURE_WEIGHTS, _reference_network
from stylegan.io.load import load_network
from stylegan.training.distributed import DistEnv
from stylegan.training.loop import Trainer
from stylegan.training.options import OptionsError, resolve
from stylegan.training.xl import best_snapshot, up_factor

# Tiny generator; the discriminator stays xl-demo's (EfficientNet-Lite0 at 128² features).
TINY_XL = ["--cfg", "xl-demo", "--cbase", "256", "--cmax", "16", "--map-depth", "1", "--batch", "4", "--workers", "0", "--no-progress"]


def train(*args: object) -> int:
    return main(["train", *map(str, args)])


@pytest.fixture(scope="module")
def fm(tmp_path_factory):
    """{16: zip, 32: zip}: 64 labelled Fashion-MNIST images in RGB at the stem's and the next stage's resolution."""
    root = tmp_path_factory.mktemp("xl_data")
    out = {}
    for res in (16, 32):
        out[res] = root / f"fm{res}.zip"
        convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=out[res], resolution=(res, res), channels=3,
                                      max_images=64), log=lambda s: None)
    return out


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty cache: no feature-network weights at hand, and no download attempted by what is tested."""
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))


def dry_run(capsys, *args: object) -> dict:
    assert train(*args, "--dry-run") == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("\n{") + 1:])


def test_preset_rows(fm, capsys, no_weights):
    xl = dry_run(capsys, "--cfg", "stylegan-xl", "--data", fm[16], "--cond")
    assert xl["loss_kind"] == "projected" and xl["aug"] == "noaug" and xl["loss"]["r1_gamma"] == 0
    assert (xl["glr"], xl["dlr"], xl["betas"], xl["G_reg_interval"], xl["D_reg_interval"]) == (0.0025, 0.002, [0.0, 0.99], 4, 16)
    assert xl["xl_loss"] == {**xl["xl_loss"], "pl_weight": 2.0, "pl_start_kimg": 1000.0, "blur_init_sigma": 2.0,
                                   "blur_fade_kimg": 300.0, "cls_weight": 0.0, "train_head_only": False}
    assert xl["ema_kimg"] == 64 * 10 / 32 and not xl["random_backbone"]  # train.py: batch * 10 / 32; fetched when the run starts
    G, D = xl["G"]["config"], xl["D"]["config"]
    assert (xl["G"]["family"], xl["D"]["family"]) == ("stylegan_xl", "stylegan_xl")
    assert (G["z_dim"], G["w_dim"], G["c_dim"], G["mapping"]["num_layers"], G["mapping"]["class_embed"]) == (64, 512, 10, 2, "imagenet")
    assert G["history"]["stem"]["num_layers"] == 10 and G["history"]["stem"]["channel_base"] == 65536 and G["history"]["stages"] == []
    assert D["backbones"] == ["deit_base_distilled_patch16_224", "tf_efficientnet_lite0"] and D["cond"] and D["feature_res"] == 224
    assert (D["cout"], D["expand"], D["proj_type"], D["num_discs"]) == (64, True, 2, 4)

    demo = dry_run(capsys, "--cfg", "xl-demo", "--data", fm[16], "--cond")
    assert demo["random_backbone"]  # no weights here: the demo's documented random backbone
    assert demo["D"]["config"]["backbones"] == ["tf_efficientnet_lite0"] and demo["D"]["config"]["feature_res"] == 128


@pytest.mark.parametrize("args, message", [
    (["--cfg", "xl-demo", "--aug", "ada"], "--aug ada: --cfg xl-demo augments inside its projected discriminator"),
    (["--cfg", "stylegan-xl", "--gamma", "1"], "--gamma 1.0: --cfg stylegan-xl trains with the hinge loss and no R1"),
    (["--cfg", "demo", "--feature-weights", "."], "--feature-weights: --cfg demo has no feature networks"),
    (["--cfg", "xl-demo", "--to", "32"], "--to applies only with --grow-from"),
    (["--cfg", "xl-demo", "--feature-weights", "missing.pth"], "missing.pth: no such file or folder"),
])
def test_refusals_are_one_line(fm, capsys, no_weights, tmp_path, args, message):
    assert train("--data", fm[16], "--dry-run", "--outdir", tmp_path / "runs", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert not (tmp_path / "runs").exists()


def test_grayscale_data_is_refused(data64, capsys, no_weights):
    assert train("--cfg", "xl-demo", "--data", data64, "--dry-run") == 2
    assert "need RGB images" in capsys.readouterr().err


def test_frozen_feature_networks_are_never_trained_or_listed(fm, no_weights, tmp_path):
    info = ImageDataset(str(fm[16]), use_labels=True).describe()
    opts = resolve({"cfg": "xl-demo", "data": str(fm[16]), "cond": True, "cbase": 256, "cmax": 16, "batch": 4, "workers": 0}, info)
    opts.random_backbone = True
    t = Trainer(opts, tmp_path, DistEnv(0, 1, torch.device("cpu")), progress=False, log=lambda s: None)
    listed = {id(p) for group in t.optimizers["D"].param_groups for p in group["params"]}
    names = {name for name, p in t.D.named_parameters() if id(p) in listed}
    assert names == {name for name, _ in t.D.named_parameters() if not name.startswith("feature_networks.")}
    assert any(n.startswith("discriminators.") and n.endswith("embed.weight") for n in names)  # D's class embedding trains
    frozen = {name: p.clone() for name, p in t.D.named_parameters() if name.startswith("feature_networks.")}
    t.D.requires_grad_(True)
    assert not any(p.requires_grad for p in t.D.feature_networks.parameters())
    batch = next(t._batches())
    t._step(batch[0].float() / 127.5 - 1, batch[1])
    assert all(torch.equal(p, frozen[n]) for n, p in t.D.named_parameters() if n in frozen)


def lite0_file(path):
    """A random EfficientNet-Lite0 weights file in timm's tensor names (the layout of timm's release file)."""
    torch.manual_seed(1)
    state = {k: torch.randn(v.shape) * 0.1 if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype)
             for k, v in _reference_network("tf_efficientnet_lite0").state_dict().items()}
    state = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in state.items()}
    torch.save(state, path)
    return path


def test_snapshots_store_pretrained_feature_networks_by_reference(fm, no_weights, tmp_path, capsys):
    weights = lite0_file(tmp_path / "lite0.pth")
    out = tmp_path / "runs"
    assert train(*TINY_XL, "--data", fm[16], "--cond", "--kimg", 0.004, "--tick", 0.004, "--snap", 1, "--outdir", out,
                 "--feature-weights", weights) == 0
    run = only_run(out)
    snap = sorted(run.glob("network-snapshot-*.safetensors"))[-1]
    nets, extra = read_checkpoint(snap)
    ref = extra["feature_weights"]["tf_efficientnet_lite0"]
    assert ref["file"] == "lite0.pth" and len(ref["sha256"]) == 64 and ref["url"] is None  # not timm's file
    D_keys = set(nets["D"][1])
    assert "feature_networks.tf_efficientnet_lite0.pretrained.layer0.0.weight" not in D_keys
    assert "feature_networks.tf_efficientnet_lite0.pretrained.layer0.1.running_var" in D_keys  # statistics stay (calibrated)
    assert "feature_networks.tf_efficientnet_lite0.scratch.layer0_ccm.weight" in D_keys  # random projections stay
    loaded = load_network(snap)  # the weights are in no cache here: G loads, D says why not, naming what to fetch
    assert loaded.D is None and loaded.G_ema is not None
    assert FEATURE_WEIGHTS["tf_efficientnet_lite0"].url in loaded.extra["D_not_loaded"]
    # --resume reads them again from the --feature-weights the run recorded, checking their digest
    assert train("--resume", run, "--kimg", 0.008, "--no-progress") == 0
    assert [s["kimg"] for s in run_stats(run)] == [0.004, 0.008]
    # other weights under the recorded path: refused in one line, and the snapshots stay as they are
    state = torch.load(weights, weights_only=True)
    torch.save({k: v + 1 if k == "conv_stem.weight" else v for k, v in state.items()}, weights)
    capsys.readouterr()
    assert train("--resume", run, "--kimg", 0.012, "--no-progress") == 2
    assert "holds other tf_efficientnet_lite0 weights" in capsys.readouterr().err
    assert not list(run.glob("*.corrupt"))


def snapshot_tensors(run, index=-1):
    nets, _ = read_checkpoint(sorted(run.glob("network-snapshot-*.safetensors"))[index])
    return {f"{name}.{k}": v for name, (_, state) in nets.items() for k, v in state.items()}


@pytest.mark.slow
def test_grow_from_a_run_and_resume_exactly_inside_the_stage(fm, no_weights, tmp_path, capsys):
    stem_out, out = tmp_path / "stem", tmp_path / "stages"
    assert train(*TINY_XL, "--data", fm[16], "--cond", "--kimg", 0.008, "--tick", 0.004, "--snap", 1, "--outdir", stem_out) == 0
    stem = only_run(stem_out)
    capsys.readouterr()
    grow = ["--grow-from", stem, "--to", 32, "--data", fm[32], "--batch", 4, "--workers", 0, "--no-progress", "--tick", 0.004, "--snap", 1,
            "--outdir", out]
    assert train(*grow, "--kimg", 0.012) == 0
    printed = capsys.readouterr().out
    whole = only_run(out)
    opts = json.loads((whole / "training_options.json").read_text())
    torgb = opts["G"]["config"]["synthesis"]["layers"][-1]["name"]
    assert "network-snapshot-000000.008.safetensors, the newest" in printed and f"{torgb} " in printed and "yes (new)" in printed
    assert opts["grown_from"]["run"] == str(stem) and opts["grown_from"]["snapshot"] == "network-snapshot-000000.008.safetensors"
    assert opts["xl_loss"]["train_head_only"] and opts["xl_loss"]["pl_weight"] == 0 and opts["G"]["config"]["img_resolution"] == 32

    # The stem's layers and the mapping do not train in the stage (they stay the stem's G_ema); the head does.
    stem_G = snapshot_tensors(stem)
    first = snapshot_tensors(whole, 0)
    final = snapshot_tensors(whole)
    kept = [k.replace("G_ema.", "G.") for k in stem_G if k.startswith(("G_ema.synthesis.L0_", "G_ema.mapping.fc"))]
    assert kept and all(torch.equal(final[k], stem_G[k.replace("G.", "G_ema.", 1)]) for k in kept)
    head = [k for k in final if k.startswith(f"G.synthesis.{torgb}.")]
    assert head and not all(torch.equal(final[k], first[k]) for k in head)

    # The same stage stopped after 2 of its 3 minibatches and continued with --resume ends with the same numbers.
    (out / "partial").mkdir()
    assert train(*grow[:-1], out / "partial", "--kimg", 0.008) == 0
    part = only_run(out / "partial")
    assert train("--resume", part, "--kimg", 0.012, "--no-progress") == 0
    resumed = snapshot_tensors(part)
    assert set(resumed) == set(final)
    assert all(torch.equal(resumed[k], final[k]) for k in final), [k for k in final if not torch.equal(resumed[k], final[k])][:3]
    assert [s["kimg"] for s in run_stats(part)] == [s["kimg"] for s in run_stats(whole)]


def test_grow_errors(fm, no_weights, tmp_path, capsys):
    assert train("--grow-from", tmp_path, "--to", 32) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_through_torchrun_follow_one_process(fm, tmp_path):
    """torchrun with 2 gloo processes of 4 images each against 1 process with two accumulation rounds of 4. As in the
    official code they are not the same computation: spectral norm's power iteration moves D's u/v at every train-mode
    call, so the second chunk sees an updated sigma in one process and the initial one on the other rank (logits
    differ by ~1 %), and the XL loss ignores the accumulation gain, so two rounds sum twice the gradient that two
    processes average (Adam's step is scale-free but for eps). Both runs must train the same networks closely."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STYLEGAN_CACHE": str(tmp_path / "cache")}
    common = [*TINY_XL, "--data", fm[16], "--cond", "--batch", 8, "--batch-gpu", 4, "--kimg", 0.008, "--tick", 0.008]
    for outdir, extra in (("one", []), ("two", ["--gpus", "2"])):
        done = subprocess.run([sys.executable, "-m", "stylegan", "train", *map(str, common), *extra, "--outdir", str(tmp_path / outdir)],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    one, two = only_run(tmp_path / "one"), only_run(tmp_path / "two")
    assert "gpus2" in two.name
    sa, sb = run_stats(one)[-1], run_stats(two)[-1]
    assert sb["Loss/G/loss"] == pytest.approx(sa["Loss/G/loss"], rel=0.05)
    assert sb["Loss/D/loss"] == pytest.approx(sa["Loss/D/loss"], rel=0.05)
    a, b = snapshot_tensors(one), snapshot_tensors(two)
    for key, value in a.items():
        if key.startswith("G_ema.") and key != "G_ema.mapping.w_avg" and value.is_floating_point():
            # Adam's first steps are about lr * sign(gradient): an entry whose gradient is near zero (the input affine,
            # initialised at 0) can step either way depending on the CPU's rounding. 99 % of the entries must agree,
            # none may be further off than such a flip.
            diff, scale = (b[key] - value).abs().flatten(), value.abs().max()
            assert torch.quantile(diff, 0.99) <= 0.05 * scale + 1e-6 and diff.max() <= 2 * scale + 1e-6, key


def test_offline_without_weights_stops_in_one_line_before_writing(fm, no_weights, tmp_path, capsys, monkeypatch):
    """--cfg stylegan-xl needs the pretrained feature networks: offline, one line names the URL and the cache path,
    and no run folder is left behind."""
    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(download, "fetch_url", offline)
    out = tmp_path / "runs"
    assert train("--cfg", "stylegan-xl", "--data", fm[16], "--cbase", 256, "--cmax", 16, "--batch", 4, "--workers", 0, "--no-progress",
                 "--kimg", 0.004, "--outdir", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "network unreachable" in err[0]
    assert FEATURE_WEIGHTS["deit_base_distilled_patch16_224"].url in err[0]
    assert str(tmp_path / "cache" / "feature_networks" / FEATURE_WEIGHTS["deit_base_distilled_patch16_224"].filename) in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_the_stage_grows_from_the_best_recorded_snapshot_else_the_newest(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for kimg in (100, 200, 300):
        (run / f"network-snapshot-{kimg:06d}.safetensors").write_bytes(b"")
    assert best_snapshot(run) is None  # no metric recorded: stage_source takes the newest
    lines = [{"results": {"fid50k_full": fid}, "snapshot_pkl": f"network-snapshot-{kimg:06d}.safetensors"}
             for kimg, fid in ((50, 1.0), (100, 9.0), (200, 4.5), (300, 6.0))]  # the best (kimg 50) was pruned
    (run / "metric-fid50k_full.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (run / "metric-is50k.jsonl").write_text(json.dumps({"results": {"is50k_mean": 0.1}, "snapshot_pkl": lines[1]["snapshot_pkl"]}) + "\n")
    path, why = best_snapshot(run)
    assert path.name == "network-snapshot-000200.safetensors" and why == "fid50k_full 4.5"


@pytest.mark.parametrize("stem, to, ok", [(16, 32, True), (16, 256, True), (16, 512, False), (16, 16, False), (32, 48, False)])
def test_growth_factors(stem, to, ok):
    if ok:
        assert up_factor(stem, to) == to // stem
    else:
        with pytest.raises(OptionsError, match=f"--to {to}: must be the previous stage's {stem} times one of 2, 4, 8, 16"):
            up_factor(stem, to)
