"""models.common: the W-average EMA and the truncation trick against their formulas, including the class-wise
average that a caller selects per sample, and the shared checks."""

from __future__ import annotations

import pytest
import torch

from stylegan.models.common import block_dtype, check_labels, check_resolution, truncate, update_w_avg


def test_truncation_formula_and_cutoff():
    g = torch.Generator().manual_seed(0)
    ws = torch.randn(3, 5, 4, generator=g)
    w_avg = torch.randn(4, generator=g)
    assert truncate(ws, w_avg, 1.0) is ws
    torch.testing.assert_close(truncate(ws, w_avg, 0.7), w_avg + 0.7 * (ws - w_avg))
    torch.testing.assert_close(truncate(ws, w_avg, 0.0), w_avg.expand_as(ws), rtol=0, atol=0)
    cut = truncate(ws, w_avg, 0.5, cutoff=2)
    torch.testing.assert_close(cut[:, :2], w_avg + 0.5 * (ws[:, :2] - w_avg))
    assert torch.equal(cut[:, 2:], ws[:, 2:])
    w = torch.randn(3, 4, generator=g)  # one w per sample (no broadcast to num_ws)
    torch.testing.assert_close(truncate(w, w_avg, 0.25), w_avg + 0.25 * (w - w_avg))


def test_class_wise_average_selected_per_sample():
    """A [c_dim, w_dim] average indexed by each sample's class: the same as truncating every sample on its own."""
    g = torch.Generator().manual_seed(1)
    ws = torch.randn(4, 6, 3, generator=g)
    class_avg = torch.randn(5, 3, generator=g)
    labels = torch.tensor([4, 0, 4, 2])
    out = truncate(ws, class_avg[labels], 0.6, cutoff=4)
    for i, label in enumerate(labels.tolist()):
        assert torch.equal(out[i : i + 1], truncate(ws[i : i + 1], class_avg[label], 0.6, cutoff=4))
        torch.testing.assert_close(out[i, :4], class_avg[label] + 0.6 * (ws[i, :4] - class_avg[label]))


def test_w_average_ema():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(6, 3, generator=g)
    avg = torch.randn(3, generator=g)
    expected = w.mean(0) + (avg - w.mean(0)) * 0.995  # lerp(mean, avg, beta)
    update_w_avg(avg, w, 0.995)
    torch.testing.assert_close(avg, expected)
    class_avg = torch.zeros(4, 3)  # class-wise: the caller passes one class's row and one sample
    update_w_avg(class_avg[2], w[:1], 0.9)
    torch.testing.assert_close(class_avg[2], 0.1 * w[0])
    assert class_avg[[0, 1, 3]].abs().sum() == 0


def test_checks_and_precision_policy():
    assert check_resolution(4) == 2 and check_resolution(1024) == 10
    for bad in (2, 48, 0):
        with pytest.raises(ValueError, match="power of two >= 4"):
            check_resolution(bad)
    c = torch.eye(3)
    assert check_labels(c, 3) is c
    with pytest.raises(ValueError, match=r"this discriminator is conditional: c must have shape \[N, 3\], got none"):
        check_labels(None, 3, "discriminator")
    with pytest.raises(ValueError, match=r"got \[3, 2\]"):
        check_labels(torch.zeros(3, 2), 3)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert block_dtype(True, False, False, cpu) == torch.float16 and block_dtype(True, False, True, cpu) == torch.float32
    assert block_dtype(True, False, True, cuda) == torch.float16 and block_dtype(True, True, False, cuda) == torch.float32
    assert block_dtype(False, False, False, cuda) == torch.float32
