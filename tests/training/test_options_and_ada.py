"""`--cfg` presets against StyleGAN2-ADA's / StyleGAN3's tables, option checks, and ADA's p control."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from stylegan.data.dataset import DatasetInfo, ImageDataset
from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.training.distributed import DistEnv
from stylegan.training.loop import Trainer
from stylegan.training.options import OptionsError, TrainingOptions, default_workers, network_specs, resolve, with_overrides


def info(res: int = 256, channels: int = 3, labels: int = 0) -> DatasetInfo:
    return DatasetInfo("x", "/data/x.zip", res, channels, 1000, labels, labels > 0, False, None, 0)


def test_paper_presets_carry_the_stylegan2_ada_table():
    o = resolve({"data": "x", "cfg": "paper512"}, info(512))
    assert (o.batch, o.batch_gpu, o.glr, o.dlr, o.loss.r1_gamma, o.ema_kimg, o.ema_rampup) == (64, 8, 0.0025, 0.0025, 0.5, 20, None)
    assert o.G.config.synthesis.channel_base == 32768 and o.G.config.mapping.num_layers == 8
    assert o.D.config.mbstd_group_size == 8 and o.D.config.architecture == "resnet"
    assert (o.loss.pl_weight, o.loss.style_mixing_prob, o.G_reg_interval, o.D_reg_interval) == (2, 0.9, 4, 16)
    assert o.aug == "ada" and o.ada_target == 0.6 and o.ada_kimg == 500 and o.ada_interval == 4
    c = resolve({"data": "x", "cfg": "cifar", "cond": True}, info(32, labels=10))
    assert (c.batch, c.loss.r1_gamma, c.ema_kimg, c.ema_rampup, c.loss.pl_weight, c.loss.style_mixing_prob) == (64, 0.01, 500, 0.05, 0, 0)
    assert c.D.config.architecture == "orig" and c.D.config.mbstd_group_size == 32 and c.G.config.c_dim == 10


@pytest.mark.parametrize("res,gpus,mb,mbstd,fmaps,lr", [(32, 1, 32, 4, 0.5, 0.0025), (256, 1, 16, 4, 0.5, 0.0025), (1024, 8, 32, 4, 1, 0.002)])
def test_auto_follows_stylegan2_ada_formulas(res, gpus, mb, mbstd, fmaps, lr):
    o = resolve({"data": "x", "cfg": "auto", "gpus": gpus}, info(res))
    assert o.batch == mb and o.D.config.mbstd_group_size == mbstd and o.glr == lr
    assert o.G.config.synthesis.channel_base == int(fmaps * 32768)
    assert o.loss.r1_gamma == pytest.approx(0.0002 * res**2 / mb) and o.ema_kimg == pytest.approx(mb * 10 / 32)
    assert o.G.config.mapping.num_layers == 2 and o.ema_rampup == 0.05


def test_stylegan3_presets():
    t = resolve({"data": "x", "cfg": "stylegan3-t", "batch": 32, "gamma": 8.2}, info(512))
    assert t.G.family == "stylegan3" and t.G.config.synthesis.conv_kernel == 3
    assert (t.glr, t.dlr, t.loss.r1_gamma, t.ema_kimg, t.G_reg_interval) == (0.0025, 0.002, 8.2, 10, None)
    assert (t.loss.pl_weight, t.loss.style_mixing_prob, t.loss.blur_init_sigma) == (0, 0, 0)
    assert t.G.config.synthesis.magnitude_ema_beta == pytest.approx(0.5 ** (32 / 20000))
    r = resolve({"data": "x", "cfg": "stylegan3-r", "batch": 16, "gamma": 2}, info(256))
    syn = r.G.config.synthesis
    assert syn.conv_kernel == 1 and syn.use_radial_filters and syn.channel_base == 65536 and syn.channel_max == 1024
    assert r.loss.blur_init_sigma == 10 and r.loss.blur_fade_kimg == pytest.approx(100)
    assert resolve({"data": "x", "cfg": "stylegan3-t", "batch": 32}, info(256)).loss.r1_gamma == pytest.approx(0.0002 * 256**2 / 32)


def test_flags_override_presets_and_fp32_turns_off_mixed_precision():
    o = resolve({"data": "x", "cfg": "stylegan2", "batch": 16, "gamma": 1, "glr": 0.001, "cbase": 16384, "cmax": 256, "map_depth": 4,
                 "fp32": True, "mirror": True, "aug": "fixed", "p": 0.3, "kimg": 10, "metrics": ["pfd5k_full"]}, info(64))
    assert (o.batch, o.batch_gpu, o.loss.r1_gamma, o.glr, o.dlr, o.kimg, o.mirror, o.aug, o.augment_p) == \
        (16, 16, 1, 0.001, 0.002, 10, True, "fixed", 0.3)
    syn = o.G.config.synthesis
    assert (syn.channel_base, syn.channel_max, syn.num_fp16_res, syn.conv_clamp) == (16384, 256, 0, None)
    assert o.G.config.mapping.num_layers == 4 and o.D.config.num_fp16_res == 0
    assert TrainingOptions.from_dict(o.to_dict()) == o


@pytest.mark.parametrize("flags,message", [
    ({"batch": 30, "gpus": 4}, "multiple of --gpus"),
    ({"batch": 32, "batch_gpu": 2}, "smaller than the minibatch-std group"),
    ({"batch": 32, "batch_gpu": 6}, "multiple of --gpus x --batch-gpu"),
    ({"p": 0.3}, "--p applies only with --aug fixed"),
    ({"cond": True}, "--cond"),
    ({"aug": "sometimes"}, "--aug sometimes"),
    ({"augpipe": "xyz"}, "--augpipe xyz"),
    ({"cfg": "stylegan4"}, "--cfg stylegan4"),
])
def test_bad_combinations_are_named(flags, message):
    with pytest.raises(OptionsError, match=message.replace("+", r"\+")):
        resolve({"data": "x", "cfg": "stylegan2", **flags}, info(64))


def test_fine_tuning_keeps_the_source_architecture():
    """The source network's configs, with fp16 on CUDA only and --freezed in D (a StyleGAN3 one too: its synthesis
    config has no fp16_cuda_only)."""
    from stylegan.models import stylegan2, stylegan3
    from stylegan.models.registry import build_network

    g3 = stylegan3.stylegan3_config("stylegan3-t", 32, z_dim=8, w_dim=8, img_channels=3, channel_base=128, channel_max=8)
    g2 = stylegan2.GeneratorConfig(z_dim=8, w_dim=8, img_resolution=32, synthesis=stylegan2.SynthesisConfig(fp16_cuda_only=False))
    d = stylegan2.DiscriminatorConfig(img_resolution=32, channel_base=512, channel_max=16, fp16_cuda_only=False)
    for g, G in ((g3, stylegan3.Generator), (g2, stylegan2.Generator)):
        specs = network_specs(G(g), stylegan2.Discriminator(d))
        o = resolve({"data": "x", "cfg": "stylegan3-t" if G is stylegan3.Generator else "stylegan2", "resume": "src.pkl", "freezed": 2},
                    info(32), specs)
        assert o.G.family == specs["G"].family and o.D.config.freeze_layers == 2 and o.D.config.fp16_cuda_only
        assert o.G.config.mapping == g.mapping and o.G.config.synthesis.channel_max == g.synthesis.channel_max
        assert type(build_network(o.G)) is G and build_network(o.D).b4 is not None
        if G is stylegan2.Generator:
            assert o.G.config.synthesis.fp16_cuda_only and o.G.config.synthesis.fused_modconv_default == "inference_only"
        else:
            assert o.G.config == g  # nothing to change: StyleGAN3 runs fp16 on CUDA only anyway


def test_continued_runs_take_only_resumable_changes():
    o = resolve({"data": "x", "cfg": "stylegan2"}, info(64))
    n = with_overrides(o, {"batch": 16, "kimg": 100, "cfg": "paper256"})
    assert (n.batch, n.batch_gpu, n.kimg, n.cfg) == (16, 4, 100, "stylegan2")
    with pytest.raises(OptionsError):
        with_overrides(o, {"batch": 2})


# ----------------------------------------------------------------------------- ADA


@pytest.fixture(scope="module")
def data8(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("ada") / "fm8.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=dest, max_images=8, labels="none"), log=lambda s: None)
    return dest


def ada_trainer(data: Path, run_dir: Path, **changes) -> Trainer:
    flags = {"data": str(data), "cfg": "demo", "cbase": 256, "cmax": 16, "map_depth": 1, "aug": "ada", "workers": 0, "batch": 16, "kimg": 0.64}
    opts = resolve(flags, ImageDataset(data).describe())
    opts = dataclasses.replace(opts, ada_kimg=2, tick=1, snap=100, **changes)
    return Trainer(opts, run_dir, DistEnv(0, 1, torch.device("cpu")), progress=False, log=lambda s: None)


def test_ada_raises_p_when_d_overfits_a_tiny_dataset(data8, tmp_path):
    trainer = ada_trainer(data8, tmp_path, glr=0.0, dlr=0.01)  # G stands still: D memorises the 8 reals
    trainer.run()
    signs = [line for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert signs
    assert float(trainer.augment.p) > 0.15  # 10 adjustments of at most 0.032 each


def test_ada_lowers_p_when_d_does_not_overfit(data8, tmp_path):
    # A D that does not learn and has no opinion (its output layer zeroed): sign(D(real)) = 0 < target 0.6.
    trainer = ada_trainer(data8, tmp_path, dlr=0.0, augment_p=0.5)
    with torch.no_grad():
        trainer.D.b4.out.weight.zero_()
        trainer.D.b4.out.bias.zero_()
    trainer.run()
    assert float(trainer.augment.p) == pytest.approx(0.5 - 10 * 16 * 4 / 2000, abs=1e-6)


def test_ada_p_zero_leaves_the_images_alone(data8):
    from stylegan.training.augment import augment_pipe

    pipe = augment_pipe("bgc")
    x = torch.randn(4, 1, 32, 32)
    assert torch.equal(pipe(x), x)


@pytest.mark.parametrize("cores, preset, expected", [(1, 3, 0), (2, 3, 1), (4, 3, 3), (64, 3, 3), (2, 1, 1), (16, 1, 1)])
def test_default_workers_leave_a_core_to_the_training_process(cores, preset, expected, monkeypatch):
    """No more DataLoader workers than the cores less one (PyTorch warns past the cores; the training process
    computes on one)."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)))
    assert default_workers(preset) == expected
