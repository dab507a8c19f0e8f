"""The training loop's steady state reads nothing back from the device: on CUDA every such read (`.item()`,
`int(t)`, `.tolist()`, `.cpu()`, ...) waits for the GPU. A CPU run cannot see CUDA's synchronisations, so this test
counts the host reads our code makes (calls from the stylegan package) while `Trainer._step` runs minibatches with
every phase, ADA (colour transforms), style mixing and labels; torch-internal synchronisations (which `benchmarks/bench_gpu.py` counts on
a GPU through `torch.cuda.set_sync_debug_mode`) are out of its sight."""

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from stylegan.data.dataset import ImageDataset
from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.io.images import from_uint8
from stylegan.ops import backend, fastpath
from stylegan.training.distributed import DistEnv
from stylegan.training.loop import Trainer
from stylegan.training.options import resolve

READS = ("item", "tolist", "cpu", "numpy", "__int__", "__float__", "__bool__", "__index__")
PACKAGE = str(Path(__import__("stylegan").__file__).parent)


@pytest.fixture(scope="module")
def data8(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("syncs") / "fm8.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=dest, max_images=8), log=lambda s: None)
    return dest


def count_host_reads(monkeypatch) -> list[str]:
    """Patch the tensor methods that read values to the host; returns the list that our calls are appended to."""
    seen: list[str] = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(PACKAGE):
                seen.append(f"{_name} at {caller.removeprefix(PACKAGE)}:{sys._getframe(1).f_lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    return seen


@pytest.mark.slow
def test_steady_state_minibatches_read_nothing_back(data8, tmp_path, monkeypatch):
    flags = {"data": str(data8), "cfg": "demo", "cbase": 128, "cmax": 8, "map_depth": 1, "aug": "ada", "workers": 0, "batch": 4,
             "cond": True, "kimg": 1}
    opts = resolve(flags, ImageDataset(data8, use_labels=True).describe())
    # ADA with the colour transforms: the geometric ones pad by a data-dependent amount, read on the host (as NVIDIA's)
    opts = dataclasses.replace(opts, G_reg_interval=2, D_reg_interval=2, ada_interval=2, augpipe="color",
                               loss=dataclasses.replace(opts.loss, style_mixing_prob=0.9))
    trainer = Trainer(opts, tmp_path, DistEnv(0, 1, torch.device("cpu")), progress=False, log=lambda s: None)
    assert {p.name for p in trainer.phases} == {"Gmain", "Greg", "Dmain", "Dreg"} and trainer.augment is not None
    images, labels = zip(*(trainer.dataset[i] for i in range(4)))
    real, c = from_uint8(torch.stack(images)), torch.stack([torch.as_tensor(x) for x in labels]).float()
    trainer._step(real, c)  # the first minibatch: optimizer states are created
    monkeypatch.setattr(backend, "_requested", "torch")  # the PyTorch formulations taken on CUDA, not Triton
    monkeypatch.setattr(fastpath, "cuda_kernels", lambda x: True)  # the branches taken on CUDA (ADA's p not read)
    seen = count_host_reads(monkeypatch)
    for _ in range(4):  # both lazy-regularisation rounds and two ADA updates
        trainer._step(real, c)
    assert trainer.state.batch_idx == 5
    assert seen == [], sorted(set(seen))
    # the check sees reads: a tick reads the statistics and the count of zeroed gradient entries
    trainer.collector.means(trainer.env)
    trainer._fold_nonfinite_grads()
    assert any(s.startswith("tolist at /training/progress.py") for s in seen) and any(s.startswith("__int__") for s in seen)
