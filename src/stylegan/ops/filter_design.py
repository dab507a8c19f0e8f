"""Kaiser-windowed low-pass FIR filters for StyleGAN3's alias-free layers (paper §3.2, appendix C)."""

from __future__ import annotations

import numpy as np
import torch


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """Low-pass filter as the official `SynthesisLayer.design_lowpass_filter`.

    numtaps == 1 -> None (identity). Otherwise a separable 1-D Kaiser-windowed sinc (`scipy.signal.firwin`),
    or with `radial` a 2-D jinc, h(r) = J1(2π f_c r) / (π r), under a separable Kaiser window and normalised to
    unit DC gain. Designed in float64, returned as float32.
    """
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    import scipy.signal  # imported here: scipy is slow to import and only needed when building a network
    import scipy.special

    if not radial:
        f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(f, dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f *= np.outer(window, window)
    f /= np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)
