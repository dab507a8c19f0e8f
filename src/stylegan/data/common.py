"""Pieces shared by the converter and the training dataset: the error type, file listing, `dataset.json`."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
LABELS_FILE = "dataset.json"


class DatasetError(ValueError):
    """A problem with a dataset or a conversion source; the message is one line naming the file."""


class BadImage(Exception):
    """One unusable image; the message says why (the converter adds the file name)."""


def is_ignored(rel: str) -> bool:
    """Hidden files and folders (`.git/`, `.ipynb_checkpoints/`, our own temporaries) and macOS forks."""
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/"))


def is_image_name(rel: str) -> bool:
    return os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS


def path_key(rel: str) -> tuple[str, ...]:
    """Sort key of a relative POSIX path: by components, so a folder's files stay together."""
    return tuple(rel.split("/"))


def list_folder(root: Path) -> tuple[list[str], list[str]]:
    """(image files, other files) below `root` as sorted relative POSIX paths, ignored names left out."""
    images: list[str] = []
    others: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not is_ignored(d)]
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not is_ignored(rel):
                (images if is_image_name(rel) else others).append(rel)
    return sorted(images, key=path_key), sorted(others, key=path_key)


def list_zip(zf: zipfile.ZipFile) -> tuple[list[str], list[str]]:
    """(image members, other members) of a zip, sorted, directories and ignored names left out."""
    images: list[str] = []
    others: list[str] = []
    for info in zf.infolist():
        if info.is_dir() or is_ignored(info.filename):
            continue
        (images if is_image_name(info.filename) else others).append(info.filename)
    return sorted(images, key=path_key), sorted(others, key=path_key)


def parse_labels_json(data: bytes, where: str) -> tuple[dict[str, Any] | None, list[str] | None]:
    """Parse `{"labels": [[path, label], ...] | null, "class_names": [...]}` -> ({path: label} or None, names).

    `class_names` is our addition to the official format (which readers ignore); it is optional.
    """
    try:
        meta = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or "labels" not in meta:
        raise DatasetError(f"{where}: expected an object with a 'labels' list, as {{\"labels\": [[\"a.png\", 0], ...]}}")
    names = meta.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise DatasetError(f"{where}: 'class_names' must be a list of strings")
    entries = meta["labels"]
    if entries is None:
        return None, names
    if not isinstance(entries, list):
        raise DatasetError(f"{where}: 'labels' must be a list of [path, label] pairs or null")
    labels: dict[str, Any] = {}
    for i, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DatasetError(f"{where}: labels entry {i} is {json.dumps(entry)[:60]}, expected [\"relative/path.png\", label]")
        rel = entry[0].replace("\\", "/").removeprefix("./")
        if rel in labels:
            raise DatasetError(f"{where}: {rel!r} is labelled twice")
        labels[rel] = entry[1]
    return labels, names
