"""The training pipeline: ImageDataset over zips and folders, DataLoader workers, InfiniteSampler."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from dataset_image_cases import pattern
from PIL import Image

from stylegan.data import (
    ConvertConfig,
    DatasetError,
    DatasetInfo,
    ImageDataset,
    InfiniteSampler,
    convert_dataset,
)

N = 12


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """N 8x8 RGB images with labels 0..3, as a zip and as a folder."""
    root = tmp_path_factory.mktemp("labelled")
    src = root / "src"
    src.mkdir()
    for i in range(N):
        Image.fromarray(pattern(3, size=8, seed=i)).save(src / f"{i:02d}.png")
    (src / "dataset.json").write_text(json.dumps({"labels": [[f"{i:02d}.png", i % 4] for i in range(N)]}))
    for dest in ("data.zip", "data"):
        convert_dataset(ConvertConfig(source=str(src), dest=root / dest), log=lambda _: None)
    return root


def test_items_shapes_labels_and_description(labelled):
    ds = ImageDataset(labelled / "data.zip")
    assert len(ds) == N and ds.resolution == 8 and ds.num_channels == 3 and ds.label_dim == 4 and ds.has_labels
    for i in range(N):
        img, label = ds[i]
        assert img.dtype == torch.uint8 and img.shape == (3, 8, 8) and img.is_contiguous()
        assert torch.equal(img, torch.from_numpy(pattern(3, size=8, seed=i)).permute(2, 0, 1))
        assert label.dtype == torch.float32 and label.tolist() == np.eye(4)[i % 4].tolist()
    info = ds.describe()
    assert info == DatasetInfo(name="data", path=str(labelled / "data.zip"), resolution=8, channels=3, num_images=N,
                               label_dim=4, has_labels=True, xflip=False, max_size=None, seed=0)
    assert json.loads(json.dumps(info.to_dict()))["num_images"] == N
    folder = ImageDataset(labelled / "data")
    assert folder.describe().name == "data" and all(torch.equal(folder[i][0], ds[i][0]) for i in range(N))
    assert ds[-1][0].equal(ds[N - 1][0])
    with pytest.raises(IndexError):
        ds[N]


def test_xflip_max_size_and_no_labels(labelled):
    ds = ImageDataset(labelled / "data.zip", xflip=True)
    assert len(ds) == 2 * N
    assert torch.equal(ds[N + 3][0], ds[3][0].flip(2)) and torch.equal(ds[N + 3][1], ds[3][1])
    sub = ImageDataset(labelled / "data.zip", max_size=5, seed=1)
    again = ImageDataset(labelled / "data.zip", max_size=5, seed=1)
    other = ImageDataset(labelled / "data.zip", max_size=5, seed=2)
    assert len(sub) == 5 and sub.describe().num_images == 5 and sub.label_dim == 4
    assert list(sub._raw_idx) == list(again._raw_idx) == sorted(sub._raw_idx) != list(other._raw_idx)
    assert len(ImageDataset(labelled / "data.zip", max_size=100)) == N
    plain = ImageDataset(labelled / "data.zip", use_labels=False)
    assert not plain.has_labels and plain.label_dim == 0 and plain[0][1].shape == (0,)
    batch = torch.utils.data.default_collate([plain[0], plain[1]])
    assert batch[0].shape == (2, 3, 8, 8) and batch[1].shape == (2, 0)


def test_dataloader_workers_open_their_own_zip(labelled):
    ds = ImageDataset(labelled / "data.zip", xflip=True)
    ds[0]  # the parent holds an open handle when the workers fork
    assert ds._zip_pid == os.getpid()
    expected = [ds[i][0] for i in range(len(ds))]

    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    images = torch.cat([img for img, _ in loader])
    assert torch.equal(images, torch.stack(expected))
    restored = pickle.loads(pickle.dumps(ds))  # what spawn-started workers receive
    assert restored._zipfile is None and torch.equal(restored[5][0], expected[5])

    class Probe(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            ds[i]
            return torch.tensor([os.getpid(), ds._zip_pid])

    seen = torch.cat(list(torch.utils.data.DataLoader(Probe(), batch_size=1, num_workers=2)))
    assert all(pid == zpid != os.getpid() for pid, zpid in seen.tolist())


def test_infinite_sampler_with_dataloader(labelled):
    ds = ImageDataset(labelled / "data.zip")
    sampler = InfiniteSampler(ds, seed=3)
    loader = iter(torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=5, num_workers=1))
    for _ in range(4):  # more than one pass over the data
        img, label = next(loader)
        assert img.shape == (5, 3, 8, 8) and label.shape == (5, 4)


def test_infinite_sampler_order_and_sharding():
    data = range(10)
    seq = list(itertools.islice(InfiniteSampler(data, seed=7), 60))
    assert seq == list(itertools.islice(InfiniteSampler(data, seed=7), 60))
    assert seq != list(itertools.islice(InfiniteSampler(data, seed=8), 60))
    assert set(seq[:30]) == set(range(10)) and seq[10:20] != seq[:10]  # the window keeps reshuffling
    counts = np.bincount(list(itertools.islice(InfiniteSampler(data, seed=7), 10000)), minlength=10)
    assert counts.min() > 900 and counts.max() < 1100
    shards = [list(itertools.islice(InfiniteSampler(data, rank=r, num_replicas=3, seed=7), 20)) for r in range(3)]
    assert [shards[i % 3][i // 3] for i in range(60)] == seq
    assert list(itertools.islice(InfiniteSampler(data, shuffle=False), 12)) == [*range(10), 0, 1]
    assert list(itertools.islice(InfiniteSampler(data, rank=1, num_replicas=2, shuffle=False), 5)) == [1, 3, 5, 7, 9]
    for kw in (dict(rank=2, num_replicas=2), dict(window_size=1.5)):
        with pytest.raises(ValueError):
            InfiniteSampler(data, **kw)
    with pytest.raises(ValueError, match="empty"):
        InfiniteSampler([])


def test_infinite_sampler_reads_the_process_group(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 4)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 3)
    s = InfiniteSampler(range(8), shuffle=False)
    assert (s.rank, s.num_replicas) == (3, 4) and list(itertools.islice(s, 3)) == [3, 7, 3]


def test_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="nope.zip: no such file or folder"):
        ImageDataset(tmp_path / "nope.zip")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DatasetError, match="bad.zip: not a readable zip"):
        ImageDataset(tmp_path / "bad.zip")
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(DatasetError, match="folder: holds no images"):
        ImageDataset(folder)
    Image.fromarray(pattern(3, size=8)).save(folder / "a.png")
    Image.fromarray(pattern(1, size=8)).save(folder / "b.png")
    Image.new("RGBA", (8, 8)).save(folder / "c.png")
    ds = ImageDataset(folder)
    with pytest.raises(DatasetError, match=r"b.png: image is 1x8x8 \(CxHxW\) but the dataset's first image is 3x8x8"):
        ds[1]
    with pytest.raises(DatasetError, match="c.png: pixel format RGBA, expected 8-bit L or RGB"):
        ds[2]
    with pytest.raises(DatasetError, match="images are 8x8, not the requested 16x16"):
        ImageDataset(folder, resolution=16)
    (folder / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0]]}))
    with pytest.raises(DatasetError, match=r"dataset.json: no label for 2 image\(s\), e.g. b.png"):
        ImageDataset(folder)
    assert not ImageDataset(folder, use_labels=False).has_labels
    (folder / "dataset.json").write_text(json.dumps({"labels": [[n, [0.5, 1.5]] for n in ("a.png", "b.png", "c.png")]}))
    assert ImageDataset(folder).get_label(1).tolist() == [0.5, 1.5]
    with zipfile.ZipFile(tmp_path / "wide.zip", "w") as z:
        z.writestr("a.png", _png(np.zeros((8, 16, 3), np.uint8)))
    with pytest.raises(DatasetError, match="images must be square; a.png is 16x8"):
        ImageDataset(tmp_path / "wide.zip")


def test_fashion_mnist_through_a_loader(fashion_test_zip):
    dest, _ = fashion_test_zip
    ds = ImageDataset(dest, max_size=256, xflip=True)
    assert ds.describe().to_dict() == dict(name="fm", path=str(dest), resolution=32, channels=1, num_images=256,
                                           label_dim=10, has_labels=True, xflip=True, max_size=256, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=2)
    n = 0
    for img, label in loader:
        assert img.shape[1:] == (1, 32, 32) and img.dtype == torch.uint8 and (label.sum(1) == 1).all()
        n += len(img)
    assert n == 512


def _png(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "png")
    return buf.getvalue()
