"""VideoWriter: H.264 MP4 through imageio-ffmpeg, odd sizes, gray frames, and the GIF fallback."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from stylegan.io.video import VideoWriter


def _frames(n: int, h: int, w: int, c: int) -> list[np.ndarray]:
    """Distinct frames (a bright square moving right), so no encoder merges them."""
    out = []
    for i in range(n):
        f = np.full([h, w, c], 40, np.uint8)
        f[h // 4 : h // 2, i * 2 : i * 2 + 6] = 230
        out.append(f)
    return out


def _decode(path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return meta, [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]


@pytest.mark.parametrize("h,w,c", [(32, 48, 3), (33, 47, 3), (20, 30, 1)])
def test_mp4_is_h264_and_decodes(tmp_path, h, w, c):
    pytest.importorskip("imageio_ffmpeg")
    path = tmp_path / "sub" / "clip.mp4"
    frames = _frames(7, h, w, c)
    with VideoWriter(path, fps=10) as video:
        for f in frames:
            video.append(f)
    assert video.path == path and video.num_frames == 7
    assert path.read_bytes()[4:8] == b"ftyp"
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary file left
    meta, decoded = _decode(path)
    assert meta["codec"].startswith("h264") and meta["fps"] == 10
    assert meta["size"] == (w + w % 2, h + h % 2)
    assert len(decoded) == 7
    # Lossy but close: the moving square is where it was put.
    for f, d in zip(frames, decoded):
        err = np.abs(d[:h, :w].astype(int) - np.broadcast_to(f, (h, w, 3)).astype(int))
        assert err.mean() < 6


def test_gif_fallback_without_imageio_ffmpeg(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # `import imageio_ffmpeg` now raises ImportError
    with VideoWriter(tmp_path / "clip.mp4", fps=20) as video:
        for f in _frames(5, 16, 24, 3):
            video.append(f)
    assert video.path == tmp_path / "clip.gif"
    assert not (tmp_path / "clip.mp4").exists()
    err = capsys.readouterr().err
    assert "imageio-ffmpeg is not installed" in err and "clip.gif" in err and len(err.strip().splitlines()) == 1
    with Image.open(video.path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 5 and gif.size == (24, 16)
        assert gif.info["duration"] == 50


def test_gif_by_suffix_gray(tmp_path, capsys):
    with VideoWriter(tmp_path / "clip.gif", fps=10) as video:
        for f in _frames(4, 10, 12, 1):
            video.append(f)
    assert capsys.readouterr().err == ""
    with Image.open(video.path) as gif:
        assert gif.n_frames == 4 and gif.size == (12, 10)
        first = np.asarray(gif.convert("L"))
        assert first[3, 0] == 230 and first[9, 11] == 40


def test_errors_and_cleanup(tmp_path):
    with pytest.raises(ValueError, match="unsupported video format '.avi'"):
        VideoWriter(tmp_path / "x.avi")
    with pytest.raises(ValueError, match="fps must be positive"):
        VideoWriter(tmp_path / "x.mp4", fps=0)
    with VideoWriter(tmp_path / "x.mp4") as video:  # an empty video is no file
        pass
    assert video.num_frames == 0 and not list(tmp_path.iterdir())
    video = VideoWriter(tmp_path / "x.gif")
    with pytest.raises(ValueError, match="HWC uint8 arrays with 1 or 3 channels, got a float32"):
        video.append(np.zeros([8, 8, 3], np.float32))
    video.append(np.zeros([8, 8, 3], np.uint8))
    with pytest.raises(ValueError, match=r"frame 1 has shape \[8, 10, 3\], the first frame had \[8, 8, 3\]"):
        video.append(np.zeros([8, 10, 3], np.uint8))
    pytest.importorskip("imageio_ffmpeg")
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / "y.mp4") as video:
            video.append(np.zeros([8, 8, 3], np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # neither the output nor a partial file
