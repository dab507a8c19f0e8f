"""The converter behind `stylegan dataset`: a source -> the official dataset layout, every image validated.

Two passes: the first reads only image headers (size, pixel format, EXIF orientation) to settle the
output resolution and channel count and to report size mismatches before anything is written; the
second decodes, normalises, transforms and writes. The output goes to a temporary sibling of `dest`
that is renamed over it only when complete.
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from .common import IMAGE_EXTENSIONS, LABELS_FILE, BadImage, DatasetError
from .sources import Item, Source, open_source

TRANSFORMS = ("none", "center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}
_ORIENTATION_TAG = 0x0112
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N")
_COLOUR_MODES = ("RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


@dataclass
class ConvertConfig:
    """Settings of one conversion: the `stylegan dataset` flags."""

    source: str  # folder, zip, LMDB, CIFAR-10 archive or builtin:NAME
    dest: str | os.PathLike  # output zip or folder
    resolution: tuple[int, int] | None = None  # output (width, height); None keeps the images' own size
    transform: str = "none"  # 'none', 'center-crop' or 'center-crop-wide' (to the output size)
    resize_filter: str = "lanczos"  # resampling filter of resizes
    max_images: int | None = None  # stop after N images
    labels: str = "auto"  # 'auto' (the source's own labels), 'folders' (one class per subfolder) or 'none'
    channels: int | None = None  # None: 1 if every image is stored as grayscale, else 3
    skip_bad: bool = False  # skip unreadable images instead of stopping


@dataclass
class ConvertReport:
    """What a conversion wrote, converted and skipped."""

    dest: Path
    num_images: int
    resolution: int
    channels: int
    label_dim: int  # 0 without labels
    class_names: list[str] | None
    conversions: dict[str, int] = field(default_factory=dict)  # what was done -> how many images
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file or label entry, why)

    def summary(self) -> list[str]:
        kind = "grayscale" if self.channels == 1 else "RGB"
        labels = f"{self.label_dim} classes" if self.label_dim else "no labels"
        lines = [f"wrote {self.num_images:,} images ({self.resolution}x{self.resolution} {kind}, {labels}) to {self.dest}"]
        lines += [f"  {n:,} image(s): {what}" for what, n in self.conversions.items()]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped):,}:")
            lines += [f"  {name}: {why}" for name, why in self.skipped]
        return lines


@dataclass
class _Candidate:
    pos: int
    item: Item
    size: tuple[int, int]  # after EXIF orientation
    colour: bool


def convert_dataset(cfg: ConvertConfig, log: Callable[[str], None] = print) -> ConvertReport:
    """Convert `cfg.source` into `cfg.dest` (a .zip or a folder); raises DatasetError on bad input."""
    _check_config(cfg)
    dest = Path(cfg.dest)
    as_zip = dest.suffix.lower() == ".zip"
    _check_dest(dest, as_zip, cfg.source)
    for stale in remove_stale_temporaries(dest):
        log(f"removed {stale}, left by an interrupted run")
    src = open_source(cfg.source, cfg.labels)
    try:
        return _convert(src, cfg, dest, as_zip, log)
    finally:
        src.close()


def _convert(src: Source, cfg: ConvertConfig, dest: Path, as_zip: bool, log: Callable[[str], None]) -> ConvertReport:
    log(f"source: {src.description}")
    for note in src.notes:
        log(note)
    if src.ignored:
        shown = ", ".join(src.ignored[:3]) + (", ..." if len(src.ignored) > 3 else "")
        log(f"ignored {len(src.ignored)} file(s) that are not {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images: {shown}")
    if not src.items:
        hint = ""
        if any("idx3-ubyte" in name for name in src.ignored):
            hint = "; for MNIST-style data pass the ...-images-idx3-ubyte file itself as the source"
        raise DatasetError(f"{cfg.source}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}; hidden files "
                           f"are ignored){hint}")

    skipped: list[tuple[int, str, str]] = []

    def reject(pos: int, name: str, reason: str, what: str = "files") -> None:
        if not cfg.skip_bad:
            raise DatasetError(f"{name}: {reason} (--skip-bad skips such {what})")
        skipped.append((pos, name, reason))

    for name, reason in src.label_problems:
        reject(-1, name, reason, "labels")
    cands = _scan(src, cfg, reject)
    if not cands:
        raise DatasetError(f"{cfg.source}: none of its {len(src.items):,} images is usable (all skipped)")
    res, cands = _output_resolution(cfg, cands, reject)
    channels = cfg.channels or (3 if any(c.colour for c in cands) else 1)

    conversions: collections.Counter[str] = collections.Counter()
    resample = RESIZE_FILTERS[cfg.resize_filter]
    written: list[tuple[str, int | None]] = []
    writer = _Writer(dest, as_zip)
    try:
        for cand in tqdm(cands, desc="convert", unit="img", disable=None):
            done: collections.Counter[str] = collections.Counter()
            try:
                img = _transform(_load(src, cand.item, channels, done), cfg, res, resample, done)
            except BadImage as e:
                reject(cand.pos, cand.item.name, str(e))
                continue
            if img.size != (res, res):
                reject(cand.pos, cand.item.name, f"is {img.width}x{img.height} once decoded, expected {res}x{res}")
                continue
            idx = f"{len(written):08d}"
            fname = f"{idx[:5]}/img{idx}.png"
            buf = io.BytesIO()
            img.save(buf, format="png", compress_level=0)
            writer.write(fname, buf.getvalue())
            written.append((fname, cand.item.label))
            conversions.update(done)
        if not written:
            raise DatasetError(f"{cfg.source}: none of its {len(src.items):,} images is usable (all skipped)")
        meta: dict[str, object] = {"labels": [list(w) for w in written] if src.labelled else None}
        if src.labelled and src.class_names:
            meta["class_names"] = src.class_names
        writer.write(LABELS_FILE, json.dumps(meta).encode())
        writer.commit()
    except BaseException:
        writer.abort()
        raise

    label_dim = 0
    if src.labelled:
        label_dim = len(src.class_names) if src.class_names else max(label or 0 for _, label in written) + 1
    return ConvertReport(dest, len(written), res, channels, label_dim, src.class_names if src.labelled else None,
                         dict(conversions), [(name, why) for _, name, why in sorted(skipped, key=lambda s: s[0])])


def _scan(src: Source, cfg: ConvertConfig, reject: Callable[..., None]) -> list[_Candidate]:
    """Header pass: the images that look usable (up to --max-images of them)."""
    cands: list[_Candidate] = []
    for pos, item in enumerate(tqdm(src.items, desc="scan", unit="img", disable=None, leave=False)):
        if cfg.max_images is not None and len(cands) >= cfg.max_images:
            break
        if item.problem:
            reject(pos, item.name, item.problem)
            continue
        try:
            size, colour = _probe(src, item)
        except BadImage as e:
            reject(pos, item.name, str(e))
            continue
        if cfg.transform == "center-crop-wide":
            assert cfg.resolution is not None
            problem = _wide_problem(size, cfg.resolution)
            if problem:
                reject(pos, item.name, problem)
                continue
        cands.append(_Candidate(pos, item, size, colour))
    return cands


def _output_resolution(cfg: ConvertConfig, cands: list[_Candidate], reject: Callable[..., None]) -> tuple[int, list[_Candidate]]:
    if cfg.resolution is not None:
        return cfg.resolution[0], cands
    sizes = collections.Counter(c.size for c in cands)
    if len(sizes) > 1:
        if not cfg.skip_bad:
            listed = []
            for (w, h), n in sizes.most_common(5):
                names = [c.item.name for c in cands if c.size == (w, h)]
                listed.append(f"{w}x{h} ({n} image{'s, e.g.' if n > 1 else ':'} {names[0]})")
            more = f" and {len(sizes) - 5} more sizes" if len(sizes) > 5 else ""
            raise DatasetError(f"{cfg.source}: the images have {len(sizes)} different sizes: {', '.join(listed)}{more}; "
                               "pass --resolution WxH to resize them all (or --skip-bad to keep only the most common)")
        keep = sizes.most_common(1)[0][0]
        for c in cands:
            if c.size != keep:
                reject(c.pos, c.item.name, f"is {c.size[0]}x{c.size[1]}, unlike most images ({keep[0]}x{keep[1]}); "
                                           "--resolution would resize them all")
        cands = [c for c in cands if c.size == keep]
    w, h = cands[0].size
    if w != h or not _power_of_two(w):
        side = max(4, 1 << (min(w, h).bit_length() - 1))
        crop = " with --transform center-crop" if w != h else ""
        raise DatasetError(f"{cfg.source}: the images are {w}x{h}, but the output must be square with a power-of-two "
                           f"side; pass --resolution {side}x{side}{crop}")
    return w, cands


def _probe(src: Source, item: Item) -> tuple[tuple[int, int], bool]:
    """(width, height) after EXIF orientation and whether it is colour, from the header only."""
    try:
        with src.open(item) as img:
            mode, (w, h) = img.mode, img.size
            orientation = _orientation(img, header_only=True)
            gray_palette = mode in ("P", "PA") and _gray_palette(img)
    except BadImage:
        raise
    except Exception as e:  # Pillow raises many types for broken files
        raise BadImage(_pillow_problem(e)) from None
    if mode in ("P", "PA"):
        colour = not gray_palette
    elif mode in _COLOUR_MODES or mode in _GRAY_MODES:
        colour = mode in _COLOUR_MODES
    else:
        raise BadImage(_unsupported(mode))
    return ((h, w) if orientation in (5, 6, 7, 8) else (w, h)), colour


def _load(src: Source, item: Item, channels: int, done: collections.Counter[str]) -> Image.Image:
    """Decode fully, apply EXIF orientation, reduce to 8-bit L or RGB with `channels` channels."""
    try:
        with src.open(item) as img:
            img.load()
            if _orientation(img, header_only=False) in range(2, 9):
                img = ImageOps.exif_transpose(img)
                done["turned upright by EXIF orientation"] += 1
    except BadImage:
        raise
    except Exception as e:
        raise BadImage(_pillow_problem(e)) from None
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        a = np.asarray(img).astype(np.int64)
        if a.min() < 0 or a.max() > 65535:
            raise BadImage(f"integer pixels {a.min()}..{a.max()} do not fit 16 bits (mode {mode})")
        img = Image.fromarray((a >> 8).astype(np.uint8), "L")
        done["16-bit reduced to 8-bit"] += 1
    elif mode == "CMYK":
        img = img.convert("RGB")
        done["CMYK converted to RGB"] += 1
    elif mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in img.info
        gray = _gray_palette(img)
        img = img.convert(("LA" if gray else "RGBA") if alpha else ("L" if gray else "RGB"))
        done["palette expanded"] += 1
    elif mode in ("1", "YCbCr", "RGBX"):
        img = img.convert("L" if mode == "1" else "RGB")
    elif mode in ("L", "RGB") and "transparency" in img.info:
        img = img.convert("LA" if mode == "L" else "RGBA")
    if img.mode in ("LA", "La", "RGBA", "RGBa"):
        a = np.asarray(img)
        colour, alpha = a[..., :-1].astype(np.uint32), a[..., -1:].astype(np.uint32)
        if img.mode in ("LA", "RGBA") and alpha.min() < 255:
            colour = (colour * alpha + 127) // 255
            done["alpha composited onto black"] += 1
        colour = colour.astype(np.uint8)
        img = Image.fromarray(colour[..., 0] if colour.shape[-1] == 1 else colour, "L" if colour.shape[-1] == 1 else "RGB")
    if img.mode not in ("L", "RGB"):
        raise BadImage(_unsupported(img.mode))
    if channels == 3 and img.mode == "L":
        img = img.convert("RGB")
        done["grayscale replicated to RGB"] += 1
    elif channels == 1 and img.mode == "RGB":
        img = img.convert("L")
        done["colour converted to grayscale (ITU-R 601 luma)"] += 1
    return img


def _transform(img: Image.Image, cfg: ConvertConfig, res: int, resample: int, done: collections.Counter[str]) -> Image.Image:
    """Scale, center-crop or center-crop-wide to the requested resolution (docs/datasets.md)."""
    w, h = img.size
    if cfg.resolution is None:
        return img
    ow, oh = cfg.resolution
    if cfg.transform == "none":
        if (w, h) == (ow, oh):
            return img
        if w != h:
            done[f"not square, stretched to {ow}x{oh} (--transform center-crop would crop)"] += 1
        return img.resize((ow, oh), resample)
    if cfg.transform == "center-crop":
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
        return img if img.size == (ow, oh) else img.resize((ow, oh), resample)
    problem = _wide_problem((w, h), (ow, oh))
    if problem:
        raise BadImage(problem)
    # The central band of aspect W:H. (NVIDIA's dataset_tool.py computes the band height in output pixels
    # and crops that many input rows, which distorts: NVlabs/stylegan2-ada-pytorch#47.)
    band = int(np.rint(w * oh / ow))
    top = (h - band) // 2
    img = img.crop((0, top, w, top + band)).resize((ow, oh), resample)
    canvas = Image.new(img.mode, (res, res))
    canvas.paste(img, (0, (ow - oh) // 2))
    return canvas


def _wide_problem(size: tuple[int, int], out: tuple[int, int]) -> str | None:
    """Why center-crop-wide cannot use an image: narrower than the output, or wider than its aspect."""
    (w, h), (ow, oh) = size, out
    if w < ow:
        return f"is {w}x{h}, narrower than the {ow} px that --transform center-crop-wide needs (it does not upscale)"
    if int(np.rint(w * oh / ow)) > h:
        return f"is {w}x{h}, wider than {ow}:{oh}: --transform center-crop-wide cannot cut a {ow}:{oh} band from it"
    return None


def _orientation(img: Image.Image, header_only: bool) -> int:
    # PNG keeps EXIF in a chunk that may follow the pixels: asking Pillow for it would decode the image.
    if header_only and img.format == "PNG":
        if "exif" not in img.info:
            return 1
        exif = Image.Exif()
        exif.load(img.info["exif"])
        return int(exif.get(_ORIENTATION_TAG, 1))
    return int(img.getexif().get(_ORIENTATION_TAG, 1))


def _gray_palette(img: Image.Image) -> bool:
    pal = img.getpalette() or []
    return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))


def _unsupported(mode: str) -> str:
    what = {"F": "32-bit floating point", "I;32": "32-bit integer", "LAB": "CIELab", "HSV": "HSV"}.get(mode, "")
    return f"unsupported pixel format {mode}{f' ({what})' if what else ''}; save it as 8- or 16-bit grayscale or RGB"


def _pillow_problem(e: Exception) -> str:
    if isinstance(e, Image.UnidentifiedImageError):
        return "not an image Pillow can read (unknown format, or the header is corrupt)"
    if isinstance(e, Image.DecompressionBombError):
        return f"too many pixels ({e})"
    return f"truncated or corrupt image ({e or type(e).__name__})"


def _power_of_two(n: int) -> bool:
    return n >= 4 and n & (n - 1) == 0


def _check_config(cfg: ConvertConfig) -> None:
    if cfg.transform not in TRANSFORMS:
        raise DatasetError(f"--transform {cfg.transform}: expected one of {', '.join(TRANSFORMS)}")
    if cfg.resize_filter not in RESIZE_FILTERS:
        raise DatasetError(f"--resize-filter {cfg.resize_filter}: expected one of {', '.join(RESIZE_FILTERS)}")
    if cfg.channels not in (None, 1, 3):
        raise DatasetError(f"--channels {cfg.channels}: expected auto, 1 or 3")
    if cfg.max_images is not None and cfg.max_images < 1:
        raise DatasetError(f"--max-images {cfg.max_images}: must be at least 1")
    if cfg.resolution is None:
        if cfg.transform != "none":
            raise DatasetError(f"--transform {cfg.transform} needs --resolution WxH")
        return
    w, h = cfg.resolution
    text = f"--resolution {w}x{h}"
    if cfg.transform == "center-crop-wide":
        if not _power_of_two(w):
            raise DatasetError(f"{text}: the width must be a power of two >= 4 (center-crop-wide letterboxes into W x W)")
        if not 1 <= h <= w:
            raise DatasetError(f"{text}: the height must be between 1 and the width for center-crop-wide")
    elif w != h:
        raise DatasetError(f"{text}: the output must be square (only --transform center-crop-wide takes W > H)")
    elif not _power_of_two(w):
        lo = max(4, 1 << (w.bit_length() - 1))
        raise DatasetError(f"{text}: the side must be a power of two >= 4, e.g. {lo}x{lo} or {2 * lo}x{2 * lo}")


def _check_dest(dest: Path, as_zip: bool, source: str) -> None:
    if dest.exists():
        if as_zip and dest.is_dir():
            raise DatasetError(f"--dest {dest}: is a folder, but the name ends in .zip")
        if not as_zip and not dest.is_dir():
            raise DatasetError(f"--dest {dest}: exists and is not a folder (name a .zip to write a zip)")
        if not as_zip and any(dest.iterdir()):
            raise DatasetError(f"--dest {dest}: the folder exists and is not empty")
    if source.startswith("builtin:"):
        return
    src, dst = Path(source).resolve(), dest.resolve()
    if dst == src:
        raise DatasetError(f"--dest {dest}: is the source itself")
    if src.is_dir() and not as_zip and dst.is_relative_to(src):
        raise DatasetError(f"--dest {dest}: is inside the source folder {source}")


def _temp_pattern(dest: Path) -> str:
    return re.escape(f".{dest.name}.tmp-") + r"(\d+)-[0-9a-f]+"


def remove_stale_temporaries(dest: Path) -> list[Path]:
    """Remove temporaries of `dest` whose writing process is gone (killed runs); return their paths."""
    if os.name != "posix" or not dest.parent.is_dir():
        return []
    removed = []
    for path in sorted(dest.parent.iterdir()):
        m = re.fullmatch(_temp_pattern(dest), path.name)
        if m and not _alive(int(m.group(1))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Writer:
    """Writes into `.DEST.tmp-PID-XXXXXX` beside `dest`; `commit` renames it over `dest`, `abort` deletes it."""

    def __init__(self, dest: Path, as_zip: bool) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.dest = dest
        self.tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}"
        self.zip: zipfile.ZipFile | None = None
        if as_zip:
            self.zip = zipfile.ZipFile(self.tmp, "x", zipfile.ZIP_STORED)
        else:
            self.tmp.mkdir()
        self.dirs: set[str] = set()

    def write(self, name: str, data: bytes) -> None:
        if self.zip is not None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: identical runs, identical zips
            info.external_attr = 0o644 << 16
            self.zip.writestr(info, data)
            return
        folder = name.rpartition("/")[0]
        if folder and folder not in self.dirs:
            (self.tmp / folder).mkdir(parents=True, exist_ok=True)
            self.dirs.add(folder)
        (self.tmp / name).write_bytes(data)

    def commit(self) -> None:
        if self.zip is not None:
            self.zip.close()
            self.zip = None
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
        elif self.dest.is_dir():
            self.dest.rmdir()  # an empty folder (checked before converting)
        os.replace(self.tmp, self.dest)

    def abort(self) -> None:
        if self.zip is not None:
            try:
                self.zip.close()
            except (OSError, ValueError):
                pass
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)
