"""The converter: sources, validation of every odd case, transforms, labels and atomic output."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dataset_image_cases import (
    BAD_CASES,
    SIZE,
    exif_jpeg,
    good_files,
    mixed_folder,
    pattern,
    write_bad,
    write_cifar,
    write_cifar100,
    write_idx,
)
from PIL import Image

from stylegan.cli.main import main
from stylegan.data import (
    ConvertConfig,
    DatasetError,
    ImageDataset,
    convert_dataset,
    sources,
    tool,
)


def convert(source, dest, **kw):
    lines: list[str] = []
    report = convert_dataset(ConvertConfig(source=str(source), dest=dest, **kw), log=lines.append)
    report.log = lines
    return report


def read_zip(path: Path) -> tuple[list[np.ndarray], dict]:
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        images = [np.asarray(Image.open(z.open(n))) for n in names]
        return images, json.loads(z.read("dataset.json"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_round_trip_mixed_folder(tmp_path, capsys):
    good, bad = mixed_folder(tmp_path / "src")
    dest = tmp_path / "out.zip"
    assert main(["dataset", "--source", str(tmp_path / "src"), "--dest", str(dest), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    for name in bad:
        assert any(line.startswith(f"{tmp_path / 'src' / name}: ") and BAD_CASES[name] in line for line in lines), name
    assert "entry 'missing.png': names a file that is not an image" in out
    assert f"skipped {len(bad) + 1}:" in out
    assert "ignored 1 file(s)" in out and "notes.txt" in out  # hidden files and __MACOSX are silently ignored
    assert f"wrote {len(good)} images (16x16 RGB, 3 classes)" in out
    for what in ("CMYK converted", "EXIF", "16-bit reduced", "alpha composited onto black", "palette expanded",
                 "grayscale replicated to RGB"):
        assert what in out

    ds = ImageDataset(dest)
    assert len(ds) == len(good) and ds.label_dim == 3 and ds.resolution == SIZE and ds.num_channels == 3
    source_labels = dict(json.loads((tmp_path / "src" / "dataset.json").read_text())["labels"])
    for i, name in enumerate(sorted(good)):
        img, label = ds[i]
        assert img.shape == (3, SIZE, SIZE) and img.dtype.is_floating_point is False and str(img.dtype) == "torch.uint8"
        assert label.dtype.is_floating_point and label.tolist() == np.eye(3)[source_labels[name]].tolist()


def test_converted_pixels(tmp_path):
    good = good_files(tmp_path / "src")
    report = convert(tmp_path / "src", tmp_path / "out.zip")
    assert report.num_images == len(good) and report.label_dim == 0
    images, meta = read_zip(tmp_path / "out.zip")
    assert meta == {"labels": None}
    out = dict(zip(sorted(good), images))
    assert all(img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8 for img in images)
    for name, seed in (("rgb.png", 1), ("image.bmp", 5), ("image.tiff", 6), ("image.webp", 4), ("sub/nested.png", 7)):
        assert np.array_equal(out[name], pattern(3, seed=seed)), name
    assert np.array_equal(out["gray.png"], np.repeat(pattern(1, seed=2)[..., None], 3, axis=2))
    gray16 = pattern(1, seed=12).astype(np.uint16) * 257 + 100
    assert np.array_equal(out["gray16.png"][..., 0], (gray16 >> 8).astype(np.uint8))  # scaled, not clipped to 255
    assert np.array_equal(out["rgb16.png"], pattern(3, seed=13))
    assert np.array_equal(out["rgba.png"], (pattern(3, seed=10).astype(np.uint32) * 128 + 127) // 255)
    la_alpha = np.tile(np.arange(SIZE, dtype=np.uint32) * 16, (SIZE, 1))
    assert np.array_equal(out["gray_alpha.png"][..., 0], (pattern(1, seed=11) * la_alpha + 127) // 255)
    pal = Image.fromarray(pattern(3, seed=9)).quantize(16)
    expected = np.asarray(pal.convert("RGB")).copy()
    expected[np.asarray(pal) == 0] = 0
    assert np.array_equal(out["palette_alpha.png"], expected)
    assert np.array_equal(out["palette.png"], np.asarray(Image.fromarray(pattern(3, seed=8)).quantize(16).convert("RGB")))
    assert out["cmyk.tif"][0, 0].tolist() == [0, 255, 0]
    assert np.abs(out["cmyk.jpg"][0, 0].astype(int) - [255, 0, 0]).max() < 8
    rotated = out["exif_rotated.jpg"].astype(int)  # orientation 6: the stored top-left corner shows top-right
    assert rotated[1, SIZE - 2, 0] > 200 and rotated[1, SIZE - 2, 2] < 60
    assert rotated[1, 1, 0] < 60 and rotated[1, 1, 2] > 200


@pytest.mark.parametrize("bad", sorted(BAD_CASES))
def test_each_bad_file_stops_the_run(tmp_path, bad):
    (tmp_path / "src").mkdir()
    Image.fromarray(pattern(3)).save(tmp_path / "src" / "a.png")
    Image.fromarray(pattern(3, seed=1)).save(tmp_path / "src" / "b.png")
    write_bad(tmp_path / "src", bad)
    dest = tmp_path / "out.zip"
    with pytest.raises(DatasetError) as e:
        convert(tmp_path / "src", dest)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "src" / bad) in msg and BAD_CASES[bad] in msg and "--skip-bad" in msg
    assert not dest.exists() and leftovers(tmp_path) == []
    report = convert(tmp_path / "src", dest, skip_bad=True)
    assert report.num_images == 2 and [name for name, _ in report.skipped] == [str(tmp_path / "src" / bad)]


def test_mixed_sizes_error_lists_sizes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        Image.fromarray(pattern(3, seed=i)).save(src / f"a{i}.png")
    Image.fromarray(pattern(3, size=24)).save(src / "b.png")
    exif_jpeg(src / "c.jpg", 6, size=(32, 16))  # stored 32x16, upright 16x32
    with pytest.raises(DatasetError, match=r"3 different sizes: 16x16 \(2 images, e.g. .*a0.png\), 24x24 \(1 image: "
                                           r".*b.png\), 16x32 \(1 image: .*c.jpg\); pass --resolution WxH"):
        convert(src, tmp_path / "out.zip")
    report = convert(src, tmp_path / "out.zip", resolution=(16, 16), transform="center-crop")
    assert report.num_images == 4 and not report.skipped


@pytest.mark.parametrize("size, hint", [((20, 20), "pass --resolution 16x16$"), ((32, 16), "pass --resolution 16x16 with --transform center-crop")])
def test_unusable_source_sizes(tmp_path, size, hint):
    (tmp_path / "src").mkdir()
    Image.new("RGB", size).save(tmp_path / "src" / "a.png")
    with pytest.raises(DatasetError, match=rf"are {size[0]}x{size[1]}, but the output must be square with a power-of-two side; {hint}"):
        convert(tmp_path / "src", tmp_path / "out.zip")


@pytest.mark.parametrize("kw, words", [
    (dict(resolution=(100, 100)), "--resolution 100x100: the side must be a power of two >= 4, e.g. 64x64 or 128x128"),
    (dict(resolution=(64, 32)), "--resolution 64x32: the output must be square"),
    (dict(resolution=(2, 2)), "power of two >= 4"),
    (dict(resolution=(64, 128), transform="center-crop-wide"), "the height must be between 1 and the width"),
    (dict(resolution=(48, 32), transform="center-crop-wide"), "the width must be a power of two"),
    (dict(transform="center-crop"), "--transform center-crop needs --resolution WxH"),
    (dict(max_images=0), "--max-images 0: must be at least 1"),
])
def test_bad_requests(tmp_path, kw, words):
    good_files(tmp_path / "src")
    with pytest.raises(DatasetError, match=words.replace("(", r"\(")):
        convert(tmp_path / "src", tmp_path / "out.zip", **kw)


def test_empty_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no images found \(looked for .png, .jpg"):
        convert(tmp_path / "empty", tmp_path / "out.zip")
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    with pytest.raises(DatasetError, match="pass the ...-images-idx3-ubyte file itself"):
        convert(tmp_path / "mnist", tmp_path / "out.zip")
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    with pytest.raises(DatasetError, match="empty.zip: no images found"):
        convert(tmp_path / "empty.zip", tmp_path / "out.zip")
    with pytest.raises(DatasetError, match="nope: no such file or folder"):
        convert(tmp_path / "nope", tmp_path / "out.zip")
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    with pytest.raises(DatasetError, match="a single image; pass the folder"):
        convert(tmp_path / "one.png", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_labels_from_dataset_json(tmp_path):
    src = tmp_path / "src"
    good_files(src)
    (src / "dataset.json").write_text(json.dumps({"labels": [["rgb.png", 1], ["sub/nested.png", 4]]}))
    with pytest.raises(DatasetError, match=r"cmyk.jpg: no label in .*dataset.json"):
        convert(src, tmp_path / "out.zip")
    report = convert(src, tmp_path / "out.zip", skip_bad=True)
    assert report.num_images == 2 and report.label_dim == 5 and len(report.skipped) == 14
    _, meta = read_zip(tmp_path / "out.zip")
    assert [label for _, label in meta["labels"]] == [1, 4]
    report = convert(src, tmp_path / "nolabels.zip", labels="none")
    assert report.num_images == 16 and report.label_dim == 0

    for bad, words in (("{", "not valid JSON"), ('{"labels": [["rgb.png", -1]]}', "must be class indices"),
                       ('{"labels": [["rgb.png"]]}', "labels entry 0 is"), ('[1]', "expected an object")):
        (src / "dataset.json").write_text(bad)
        with pytest.raises(DatasetError, match=f"dataset.json: .*{words}"):
            convert(src, tmp_path / "out.zip")


def test_labels_from_folders(tmp_path):
    src = tmp_path / "src"
    for cls, n in (("cats", 2), ("dogs", 3)):
        (src / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(pattern(3, seed=i)).save(src / cls / f"{i}.png")
    Image.fromarray(pattern(3)).save(src / "stray.png")
    assert "--labels folders would make the 2 sub-folders classes" in convert(src, tmp_path / "none.zip").log[1]
    with pytest.raises(DatasetError, match="stray.png: not inside a class sub-folder"):
        convert(src, tmp_path / "out.zip", labels="folders")
    report = convert(src, tmp_path / "out.zip", labels="folders", skip_bad=True)
    assert report.class_names == ["cats", "dogs"] and report.label_dim == 2
    _, meta = read_zip(tmp_path / "out.zip")
    assert [label for _, label in meta["labels"]] == [0, 0, 1, 1, 1] and meta["class_names"] == ["cats", "dogs"]
    ds = ImageDataset(tmp_path / "out.zip")
    assert ds.class_names == ["cats", "dogs"] and ds[4][1].tolist() == [0, 1]


def test_channels(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(pattern(1, seed=1)).save(src / "a.png")
    Image.fromarray(pattern(1, seed=2)).quantize(8).convert("L").convert("P").save(src / "b.png")  # grayscale palette
    assert convert(src, tmp_path / "auto.zip").channels == 1
    images, _ = read_zip(tmp_path / "auto.zip")
    assert images[0].shape == (SIZE, SIZE) and np.array_equal(images[0], pattern(1, seed=1))
    assert convert(src, tmp_path / "rgb.zip", channels=3).channels == 3
    assert read_zip(tmp_path / "rgb.zip")[0][0].shape == (SIZE, SIZE, 3)
    Image.fromarray(pattern(3, seed=3)).save(src / "c.png")
    assert convert(src, tmp_path / "mixed.zip").channels == 3
    report = convert(src, tmp_path / "gray.zip", channels=1)
    assert report.channels == 1 and report.conversions["colour converted to grayscale (ITU-R 601 luma)"] == 1
    images, _ = read_zip(tmp_path / "gray.zip")
    assert np.array_equal(images[2], np.asarray(Image.fromarray(pattern(3, seed=3)).convert("L")))


def test_transforms(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    wide = pattern(3, size=64, seed=1)[:48]  # 64 wide, 48 high
    Image.fromarray(wide).save(src / "wide.png")
    convert(src, tmp_path / "crop.zip", resolution=(16, 16), transform="center-crop", resize_filter="box")
    expected = Image.fromarray(wide).crop((8, 0, 56, 48)).resize((16, 16), Image.Resampling.BOX)
    assert np.array_equal(read_zip(tmp_path / "crop.zip")[0][0], np.asarray(expected))

    report = convert(src, tmp_path / "wide.zip", resolution=(32, 16), transform="center-crop-wide")
    img = read_zip(tmp_path / "wide.zip")[0][0]
    expected = Image.fromarray(wide[(48 - 32) // 2:(48 + 32) // 2]).resize((32, 16), Image.Resampling.LANCZOS)
    assert img.shape == (32, 32, 3) and report.resolution == 32
    assert (img[:8] == 0).all() and (img[24:] == 0).all() and np.array_equal(img[8:24], np.asarray(expected))

    report = convert(src, tmp_path / "scale.zip", resolution=(16, 16))
    assert report.conversions == {"not square, stretched to 16x16 (--transform center-crop would crop)": 1}
    with pytest.raises(DatasetError, match=r"wide.png: is 64x48, narrower than the 128 px that --transform center-crop-wide"):
        convert(src, tmp_path / "big.zip", resolution=(128, 64), transform="center-crop-wide")
    with pytest.raises(DatasetError, match=r"wide.png: is 64x48, wider than 32:32: --transform center-crop-wide cannot"):
        convert(src, tmp_path / "big.zip", resolution=(32, 32), transform="center-crop-wide")


def test_zip_source(tmp_path):
    src = tmp_path / "photos"
    good = good_files(src)
    write_bad(src, "corrupt.jpg")
    (src / "dataset.json").write_text(json.dumps({"labels": [[n, 2] for n in [*good, "corrupt.jpg"]]}))
    with zipfile.ZipFile(tmp_path / "photos.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.rglob("*")):
            z.write(p, f"photos/{p.relative_to(src).as_posix()}")
        z.writestr("__MACOSX/photos/._rgb.png", b"junk")
    with pytest.raises(DatasetError, match=r"photos.zip:photos/corrupt.jpg: not an image Pillow can read"):
        convert(tmp_path / "photos.zip", tmp_path / "out.zip")
    report = convert(tmp_path / "photos.zip", tmp_path / "out.zip", skip_bad=True)
    assert report.num_images == len(good) and report.label_dim == 3
    direct = convert(src, tmp_path / "direct.zip", skip_bad=True)
    assert (tmp_path / "out.zip").read_bytes() == (tmp_path / "direct.zip").read_bytes()
    assert direct.num_images == len(good)


def test_idx_sources(tmp_path):
    images = np.random.RandomState(0).randint(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, gz=False)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
        report = convert(tmp_path / name, tmp_path / f"{name}.zip")
        assert report.resolution == 32 and report.channels == 1
        out, meta = read_zip(tmp_path / f"{name}.zip")
        assert np.array_equal(out[2], np.pad(images[2], 2)) and len(out) == 5
    assert [label for _, label in meta["labels"] or []] == [] and "no IDX label file" in " ".join(report.log)
    _, meta = read_zip(tmp_path / "train-images-idx3-ubyte.gz.zip")
    assert [label for _, label in meta["labels"]] == labels.tolist()

    with pytest.raises(DatasetError, match="an IDX label file; pass the images file"):
        convert(tmp_path / "train-labels-idx1-ubyte.gz", tmp_path / "x.zip")
    raw = gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "cut-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(DatasetError, match=r"cut-images-idx3-ubyte: IDX header says 5x28x28 \(3920 bytes\) but 3820 bytes follow"):
        convert(tmp_path / "cut-images-idx3-ubyte", tmp_path / "x.zip")
    write_idx(tmp_path / "b-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "b-labels-idx1-ubyte.gz", labels[:3])
    with pytest.raises(DatasetError, match="b-labels-idx1-ubyte.gz: holds 3 labels for 5 images"):
        convert(tmp_path / "b-images-idx3-ubyte.gz", tmp_path / "x.zip")
    (tmp_path / "c-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw)[:200])
    with pytest.raises(DatasetError, match="c-images-idx3-ubyte.gz: corrupt gzip data"):
        convert(tmp_path / "c-images-idx3-ubyte.gz", tmp_path / "x.zip")


def test_cifar_tarball(tmp_path):
    images, labels = write_cifar(tmp_path / "cifar-10-python.tar.gz")
    report = convert(tmp_path / "cifar-10-python.tar.gz", tmp_path / "cifar.zip")
    assert (report.num_images, report.resolution, report.channels, report.label_dim) == (10, 32, 3, 10)
    assert report.class_names == [f"class{i}" for i in range(10)]
    out, meta = read_zip(tmp_path / "cifar.zip")
    assert all(np.array_equal(a, b) for a, b in zip(out, images))
    assert [label for _, label in meta["labels"]] == labels.tolist()

    images, fine = write_cifar100(tmp_path / "cifar-100-python.tar.gz")
    report = convert(tmp_path / "cifar-100-python.tar.gz", tmp_path / "cifar100.zip")
    assert (report.num_images, report.label_dim, report.class_names[99]) == (6, 100, "fine99")
    out, meta = read_zip(tmp_path / "cifar100.zip")
    assert np.array_equal(out[5], images[5]) and [label for _, label in meta["labels"]] == fine.tolist()

    tar = tmp_path / "other.tar"
    with tarfile.open(tar, "w") as t:
        t.add(tmp_path / "cifar.zip", "cifar.zip")
    with pytest.raises(DatasetError, match="other.tar: a tar archive but not the CIFAR-10/100 python version"):
        convert(tar, tmp_path / "x.zip")
    write_cifar(tmp_path / "evil.tar.gz", evil=True)
    with pytest.raises(DatasetError, match="refusing to load (posix|nt).system"):
        convert(tmp_path / "evil.tar.gz", tmp_path / "evil.zip")


def test_builtin_fashion_mnist_test_split(fashion_test_zip):
    dest, report = fashion_test_zip
    assert (report.num_images, report.resolution, report.channels, report.label_dim) == (10000, 32, 1, 10)
    assert report.class_names == sources.FASHION_MNIST_CLASSES
    ds = ImageDataset(dest)
    assert len(ds) == 10000 and ds.image_shape == (1, 32, 32) and ds.label_dim == 10
    img, label = ds[0]
    assert img[:, :2].sum() == 0 and img[:, :, -2:].sum() == 0 and img.max() > 0  # padded 28 -> 32 with zeros
    labels = json.loads(zipfile.ZipFile(dest).read("dataset.json"))["labels"]
    assert np.bincount([label for _, label in labels]).tolist() == [1000] * 10
    assert label.tolist() == np.eye(10)[labels[0][1]].tolist()


def test_builtin_split_choice(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    report = convert("builtin:fashion-mnist", tmp_path / "a.zip", max_images=3)
    assert "Fashion-MNIST test split (10,000 images, bundled)" in report.log[0] and report.num_images == 3
    with pytest.raises(DatasetError, match="builtin:fashion-mnist-train: needs Debian's dataset-fashion-mnist"):
        convert("builtin:fashion-mnist-train", tmp_path / "b.zip")
    with pytest.raises(DatasetError, match="builtin:cifar: unknown; built-in sources are builtin:fashion-mnist"):
        convert("builtin:cifar", tmp_path / "b.zip")

    fake = tmp_path / "debian"
    fake.mkdir()
    write_idx(fake / "train-images-idx3-ubyte.gz", np.full((4, 28, 28), 7))
    write_idx(fake / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 9]))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", fake)
    report = convert("builtin:fashion-mnist", tmp_path / "c.zip")
    assert f"Fashion-MNIST training split (4 images) from {fake}" in report.log[0]
    assert report.num_images == 4 and report.label_dim == 10
    assert convert("builtin:fashion-mnist-test", tmp_path / "d.zip", max_images=2, labels="none").label_dim == 0


def test_max_images_counts_written_images(tmp_path):
    mixed_folder(tmp_path / "src", with_labels=False)
    report = convert(tmp_path / "src", tmp_path / "out.zip", max_images=5, skip_bad=True)
    assert report.num_images == 5 and [Path(n).name for n, _ in report.skipped] == ["corrupt.jpg", "empty.png", "float.tif"]


def test_deterministic_output_and_folder_layout(tmp_path):
    good_files(tmp_path / "src")
    convert(tmp_path / "src", tmp_path / "a.zip")
    convert(tmp_path / "src", tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    (tmp_path / "folder").mkdir()  # an empty folder may be the destination
    convert(tmp_path / "src", tmp_path / "folder")
    files = sorted(p.relative_to(tmp_path / "folder").as_posix() for p in (tmp_path / "folder").rglob("*") if p.is_file())
    assert files == sorted(["dataset.json"] + [f"00000/img{i:08d}.png" for i in range(16)])
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        assert all((tmp_path / "folder" / n).read_bytes() == z.read(n) for n in z.namelist())
    with pytest.raises(DatasetError, match="folder: the folder exists and is not empty"):
        convert(tmp_path / "src", tmp_path / "folder")
    with pytest.raises(DatasetError, match="is inside the source folder"):
        convert(tmp_path / "src", tmp_path / "src" / "out")
    with pytest.raises(DatasetError, match="a.zip: is the source itself"):
        convert(tmp_path / "a.zip", tmp_path / "a.zip")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="file: exists and is not a folder"):
        convert(tmp_path / "src", tmp_path / "file")


def test_interrupted_run_keeps_the_old_dest(tmp_path, monkeypatch):
    good_files(tmp_path / "src")
    dest = tmp_path / "out.zip"
    dest.write_bytes(b"old")
    calls = []
    real_write = tool._Writer.write

    def write(self, name, data):
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_write(self, name, data)

    monkeypatch.setattr(tool._Writer, "write", write)
    for target in (dest, tmp_path / "folder"):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            convert(tmp_path / "src", target)
        assert leftovers(tmp_path) == []
    assert dest.read_bytes() == b"old" and not (tmp_path / "folder").exists()


def test_stale_temporaries_are_removed(tmp_path):
    good_files(tmp_path / "src")
    p = subprocess.Popen([sys.executable, "-c", ""])
    p.wait()
    dead = tmp_path / f".out.zip.tmp-{p.pid}-abc123"
    dead.write_bytes(b"partial")
    dead_dir = tmp_path / f".out.zip.tmp-{p.pid}-def456"
    (dead_dir / "00000").mkdir(parents=True)
    live = tmp_path / f".out.zip.tmp-{os.getppid()}-0a0b0c"
    live.write_bytes(b"someone else is writing")
    report = convert(tmp_path / "src", tmp_path / "out.zip")
    assert not dead.exists() and not dead_dir.exists() and live.exists()
    assert report.log[0] == f"removed {dead}, left by an interrupted run"
