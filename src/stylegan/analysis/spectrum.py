"""Average power spectra of generated and real images, as NVlabs/stylegan3 `avg_spectra.py` computes them.

Each image x [C, H, W] (pixel values 0..255) has the mean of each of its channels subtracted and is divided by
a global scale `std` (by default the pixel standard deviation of the reference set, the real images when given:
one scale for every source keeps their levels comparable; the official script subtracts one dataset mean
instead of per-image channel means). It is multiplied by the separable Kaiser window (β = 8, length H,
non-periodic, scaled to unit energy per axis), zero-padded on the right and bottom to `interp` H = 4 H, and
|FFT|² is averaged over channels and images. So white noise of unit variance has a flat spectrum at 1 (0 dB),
and a sinusoid of k cycles per image peaks at frequency bin k·interp. The heatmap shows 10 log10 of the
centred spectrum; the profiles are the 0° and 45° slices through the centre (as avg_spectra.py's `slices`)
and the radial average over rings of one frequency unit.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.ndimage
import torch
from tqdm import tqdm

from ..data.dataset import ImageDataset
from ..io.checkpoint import atomic_write_bytes
from ..io.images import to_uint8
from ..models.common import Generator
from .common import plt, save_figure, save_json

BETA = 8.0
INTERP = 4
HEATMAP_SMOOTH = 1.25
_GEN_BATCH = 16


def kaiser_window_2d(size: int, beta: float = BETA) -> torch.Tensor:
    """float64 [size, size]: outer product of the non-periodic Kaiser window scaled so its squares sum to 1."""
    w = torch.kaiser_window(size, periodic=False, beta=beta, dtype=torch.float64)
    w = w * w.square().sum().rsqrt()
    return torch.outer(w, w)


class SpectrumAccumulator:
    """Running sum of windowed, padded |FFT|² (and of pixel moments for the default scale) of one image source."""

    def __init__(self, image_size: int, beta: float = BETA, interp: int = INTERP) -> None:
        if interp < 1:
            raise ValueError(f"interp must be >= 1, got {interp}")
        self.image_size = image_size
        self.spectrum_size = image_size * interp
        self.window = kaiser_window_2d(image_size, beta)
        self.sum = torch.zeros([self.spectrum_size] * 2, dtype=torch.float64)
        self.moments = torch.zeros(3, dtype=torch.float64)  # pixels, sum, sum of squares
        self.count = 0

    def add(self, images: torch.Tensor) -> None:
        """Accumulate [N, C, H, W] images (pixel values 0..255, any dtype)."""
        n, _, h, w = images.shape
        if h != self.image_size or w != self.image_size:
            raise ValueError(f"images are {w}x{h}, expected {self.image_size}x{self.image_size}")
        x = images.to(torch.float64).cpu()
        self.moments += torch.stack([torch.tensor(float(x.numel()), dtype=torch.float64), x.sum(), x.square().sum()])
        x = (x - x.mean(dim=[2, 3], keepdim=True)) * self.window
        pad = self.spectrum_size - self.image_size
        x = torch.nn.functional.pad(x, [0, pad, 0, pad])
        self.sum += torch.fft.fftn(x, dim=[2, 3]).abs().square().mean(dim=1).sum(dim=0)
        self.count += n

    @property
    def pixel_std(self) -> float:
        n, s, ss = self.moments.tolist()
        return float(np.sqrt(max(ss / n - (s / n) ** 2, 0.0)))

    def spectrum(self, std: float) -> np.ndarray:
        """float64 [S, S]: the average |FFT|² of the images divided by std (unshifted, DC at [0, 0])."""
        if self.count == 0:
            raise ValueError("no images were accumulated")
        return (self.sum / self.count / std**2).numpy()


def heatmap_db(spectrum: np.ndarray, image_size: int, smooth: float = 0.0) -> np.ndarray:
    """10 log10 of the centred spectrum with the first row/column repeated at the end ([S + 1, S + 1]), as avg_spectra.py."""
    h = np.fft.fftshift(10 * np.log10(np.maximum(spectrum, 1e-30)))
    h = np.concatenate([h, h[:1]], axis=0)
    h = np.concatenate([h, h[:, :1]], axis=1)
    if smooth > 0:
        h = scipy.ndimage.gaussian_filter(h, sigma=spectrum.shape[0] / image_size * smooth, mode="nearest")
    return h


def radial_profile(spectrum: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequency in cycles per image, mean power in dB) over rings one cycle per image wide around DC."""
    s = spectrum.shape[0]
    f = np.fft.fftfreq(s, d=1 / image_size)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    ring = np.round(radius).astype(np.int64)
    keep = ring <= image_size // 2
    power = np.bincount(ring[keep], weights=spectrum[keep]) / np.bincount(ring[keep])
    return np.arange(len(power), dtype=np.float64), 10 * np.log10(np.maximum(power, 1e-30))


@dataclass
class SourceSpectrum:
    """Profiles (dB) of one source's average spectrum; the full spectrum is written as `spectrum-LABEL.npz`."""

    label: str
    num_images: int
    image_size: int
    slice0_freq: list[float]
    slice0_db: list[float]
    slice45_freq: list[float]
    slice45_db: list[float]
    radial_freq: list[float]
    radial_db: list[float]
    peak_freq: list[float]  # (fy, fx) in cycles per image of the largest non-DC bin


@dataclass
class SpectrumComparison:
    std: float  # the scale every source was divided by (0..255 pixel units)
    std_source: str  # "given" or the label of the source it was measured on
    beta: float
    interp: int
    sources: list[SourceSpectrum]


def source_spectrum(label: str, spectrum: np.ndarray, image_size: int, num_images: int) -> SourceSpectrum:
    """Slices, radial profile and the strongest non-DC frequency of one average spectrum."""
    h = heatmap_db(spectrum, image_size)
    c = h.shape[0] // 2
    rng = np.arange(c, h.shape[0])
    f0 = np.linspace(0, image_size / 2, num=h.shape[0] // 2 + 1)
    f45 = np.linspace(0, image_size / np.sqrt(2), num=h.shape[0] // 2 + 1)
    rf, rdb = radial_profile(spectrum, image_size)
    masked = spectrum.copy()
    masked[0, 0] = -np.inf
    iy, ix = np.unravel_index(np.argmax(masked), masked.shape)
    freqs = np.fft.fftfreq(spectrum.shape[0], d=1 / image_size)
    return SourceSpectrum(label, num_images, image_size, f0.tolist(), h[c, rng].tolist(), f45.tolist(), h[rng, rng].tolist(),
                          rf.tolist(), rdb.tolist(), [float(freqs[iy]), float(freqs[ix])])


# ----------------------------------------------------------------------------- image sources


@torch.no_grad()
def generated_images(G: Generator, num: int, seed: int, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """uint8 [N, C, H, W] batches of G's images for seeds seed..seed+num-1, z (and a random class) from
    RandomState(seed + i) as avg_spectra.py draws them; random noise from the torch stream seeded by `seed`."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, num, _GEN_BATCH):
            z, c = [], []
            for s in range(seed + start, seed + min(num, start + _GEN_BATCH)):
                rnd = np.random.RandomState(s)
                z.append(rnd.randn(G.z_dim))
                onehot = np.zeros(G.c_dim, np.float32)
                if G.c_dim > 0:
                    onehot[rnd.randint(G.c_dim)] = 1
                c.append(onehot)
            z_t = torch.from_numpy(np.stack(z).astype(np.float32)).to(device)
            c_t = torch.from_numpy(np.stack(c)).to(device) if G.c_dim > 0 else None
            yield to_uint8(G(z_t, c_t, noise_mode="random"))


def dataset_images(path: str | os.PathLike, num: int | None, seed: int) -> tuple[int, int, Iterator[torch.Tensor]]:
    """(count, resolution, uint8 batches) of `num` images of a dataset zip or folder (a random subset chosen by
    `seed`, as avg_spectra.py's max_size/random_seed); ValueError when it holds fewer than `num`."""
    ds = ImageDataset(path, max_size=num, seed=seed, use_labels=False)
    if num is not None and len(ds) < num:
        n = len(ds)
        ds.close()
        raise ValueError(f"{path}: holds {n} images, fewer than the {num} requested")

    def batches() -> Iterator[torch.Tensor]:
        try:
            for start in range(0, len(ds), _GEN_BATCH):
                yield torch.stack([ds[i][0] for i in range(start, min(len(ds), start + _GEN_BATCH))])
        finally:
            ds.close()

    return len(ds), ds.resolution, batches()


def average_spectrum(batches: Iterable[torch.Tensor], image_size: int, total: int | None = None, desc: str = "spectrum",
                     beta: float = BETA, interp: int = INTERP) -> SpectrumAccumulator:
    """Accumulate the windowed spectra of every batch (pixel values 0..255)."""
    acc = SpectrumAccumulator(image_size, beta, interp)
    with tqdm(total=total, desc=desc, unit="img", disable=None) as bar:
        for images in batches:
            acc.add(images)
            bar.update(len(images))
    return acc


def compare_spectra(sources: list[tuple[str, SpectrumAccumulator]], std: float | None = None,
                    beta: float = BETA, interp: int = INTERP) -> tuple[SpectrumComparison, dict[str, np.ndarray]]:
    """Normalise every accumulated source by one scale (`std`, else the first source's pixel std) -> profiles, spectra."""
    if not sources:
        raise ValueError("no image source to analyse")
    sizes = {acc.image_size for _, acc in sources}
    if len(sizes) > 1:
        raise ValueError(f"all sources must have the same resolution, got {sorted(sizes)}")
    std_source = "given" if std is not None else sources[0][0]
    std = sources[0][1].pixel_std if std is None else std
    if not std > 0:
        raise ValueError(f"the normalising std must be > 0, got {std} (are the {std_source} images constant?)")
    spectra = {label: acc.spectrum(std) for label, acc in sources}
    profiles = [source_spectrum(label, spectra[label], acc.image_size, acc.count) for label, acc in sources]
    return SpectrumComparison(std, std_source, beta, interp, profiles), spectra


def plot_spectra(result: SpectrumComparison, spectra: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """One heatmap (dB, centred, smoothed as avg_spectra.py) per source above the 0°, 45° and radial profiles."""
    n = len(result.sources)
    fig = plt.figure(figsize=(max(12, 4.2 * n), 8.4), tight_layout=True)
    grid = fig.add_gridspec(2, max(n, 3))
    levels = np.linspace(-40, 20, num=13)
    for i, src in enumerate(result.sources):
        ax = fig.add_subplot(grid[0, i])
        h = heatmap_db(spectra[src.label], src.image_size, HEATMAP_SMOOTH)
        freqs = np.linspace(-0.5, 0.5, num=h.shape[0]) * src.image_size
        cs = ax.contourf(freqs, freqs, h, levels=levels, extend="both", cmap="Blues")
        ax.set_aspect("equal")
        ax.set_title(f"{src.label} ({src.num_images} images), dB")
        fig.colorbar(cs, ax=ax, ticks=levels[::2])
    for j, (title, fx, fy) in enumerate((("0° slice", "slice0_freq", "slice0_db"), ("45° slice", "slice45_freq", "slice45_db"),
                                         ("radial average", "radial_freq", "radial_db"))):
        ax = fig.add_subplot(grid[1, j])
        for src in result.sources:
            ax.plot(getattr(src, fx), getattr(src, fy), label=src.label)
        ax.set_title(title)
        ax.set_xlabel("frequency (cycles per image)")
        ax.set_ylabel("power (dB)")
        ax.grid(True)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def write_spectra(result: SpectrumComparison, spectra: dict[str, np.ndarray], outdir: str | os.PathLike) -> list[Path]:
    """spectrum.{png,json} and spectrum-LABEL.npz (`spectrum`, `image_size`, readable by avg_spectra.py) in `outdir`."""
    outdir = Path(outdir)
    paths = [outdir / "spectrum.png", outdir / "spectrum.json"]
    plot_spectra(result, spectra, paths[0])
    save_json(result, paths[1])
    for src in result.sources:
        buf = io.BytesIO()
        np.savez(buf, spectrum=spectra[src.label], image_size=src.image_size)
        atomic_write_bytes(outdir / f"spectrum-{src.label}.npz", buf.getvalue())
        paths.append(outdir / f"spectrum-{src.label}.npz")
    return paths
