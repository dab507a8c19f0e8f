"""Write frames as an H.264 MP4 through imageio-ffmpeg, or as an animated GIF through Pillow.

MP4 frames are piped to ffmpeg as they come and land in a hidden temporary file next to the output, which
replaces the output only when the video is complete. Without imageio-ffmpeg (or its ffmpeg binary) the
writer falls back to a GIF at the same path with suffix `.gif`, and says so on one line of stderr.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Generator
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from .checkpoint import atomic_write_bytes, temp_file_beside

FORMATS = (".mp4", ".gif")


class VideoWriter:
    """`with VideoWriter("out.mp4", fps=30) as v: v.append(frame)` for HWC uint8 frames (1 or 3 channels).

    All frames must have the shape of the first. H.264 in yuv420p needs even sizes, so odd heights or widths
    are padded by repeating the last row or column. `crf` is x264's constant rate factor (0 = lossless,
    18 = visually lossless, 23 = x264's default); GIFs ignore it. `.path` is where the video is written.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30, *, crf: int = 18) -> None:
        path = Path(path)
        if path.suffix.lower() not in FORMATS:
            raise ValueError(f"{path}: unsupported video format {path.suffix or '(no suffix)'!r}, "
                             f"expected one of {', '.join(FORMATS)}")
        if not fps > 0:
            raise ValueError(f"{path}: fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"{path}: crf must be between 0 and 51, got {crf}")
        self.fps = float(fps)
        self.crf = int(crf)
        self.path = path
        self.num_frames = 0
        self._shape: tuple[int, ...] | None = None
        self._gif_frames: list[Image.Image] | None = None
        self._ffmpeg: Generator | None = None
        self._tmp: Path | None = None
        if path.suffix.lower() == ".gif":
            self._gif_frames = []
        else:
            reason = _ffmpeg_unavailable()
            if reason is not None:
                self.path = path.with_suffix(".gif")
                self._gif_frames = []
                print(f"{path}: {reason}; writing an animated GIF to {self.path} instead", file=sys.stderr)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def append(self, frame: np.ndarray) -> None:
        """Add one HWC uint8 frame (channels 1 or 3) of the same shape as the first."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (1, 3):
            desc = f"{frame.dtype} array of shape {list(frame.shape)}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"{self.path}: frames must be HWC uint8 arrays with 1 or 3 channels, got a {desc}")
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(f"{self.path}: frame {self.num_frames} has shape {list(frame.shape)}, "
                             f"the first frame had {list(self._shape)}")
        if self._gif_frames is not None:
            gray = frame.shape[2] == 1
            self._gif_frames.append(Image.fromarray(frame[:, :, 0] if gray else frame, "L" if gray else "RGB"))
        else:
            if self._ffmpeg is None:
                self._start_ffmpeg()
            assert self._ffmpeg is not None
            self._ffmpeg.send(np.ascontiguousarray(_pad_even(frame)).tobytes())
        self.num_frames += 1

    def close(self) -> None:
        """Finish the file (none is written when no frame was appended)."""
        if self._gif_frames is not None:
            if self._gif_frames:
                buf = io.BytesIO()
                first, *rest = self._gif_frames
                first.save(buf, format="GIF", save_all=True, append_images=rest, duration=round(1000 / self.fps), loop=0)
                atomic_write_bytes(self.path, buf.getvalue())
                self._gif_frames = []
        elif self._ffmpeg is not None:
            assert self._tmp is not None
            try:
                self._ffmpeg.close()
            except BaseException:
                self._abort()
                raise
            self._ffmpeg = None
            os.replace(self._tmp, self.path)
            self._tmp = None

    def _start_ffmpeg(self) -> None:
        import imageio_ffmpeg

        assert self._shape is not None
        h, w, c = self._shape
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_file_beside(self.path, suffix=self.path.suffix)
        self._ffmpeg = imageio_ffmpeg.write_frames(
            str(self._tmp), (w + w % 2, h + h % 2), pix_fmt_in="gray" if c == 1 else "rgb24", pix_fmt_out="yuv420p",
            fps=self.fps, codec="libx264", quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-crf", str(self.crf)])
        self._ffmpeg.send(None)  # starts the ffmpeg process

    def _abort(self) -> None:
        """Stop without writing the output (after an exception)."""
        self._gif_frames = [] if self._gif_frames is not None else None
        if self._ffmpeg is not None:
            try:
                self._ffmpeg.close()
            except Exception:  # the partial file is deleted below; the original exception is what matters
                pass
            self._ffmpeg = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def _ffmpeg_unavailable() -> str | None:
    """Why MP4 cannot be written here, or None when imageio-ffmpeg and its ffmpeg binary are available."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return "imageio-ffmpeg is not installed"
    try:
        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return "imageio-ffmpeg found no ffmpeg binary"
    return None


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row / column so that height and width are even (yuv420p subsamples chroma 2x2)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
