"""Jacobian spectra (StyleGAN2 supp. C, Fig. 7) on a linear toy synthesis with known singular values, and on sg2_32."""

import numpy as np
import pytest
import torch

import stylegan
from stylegan.analysis import jacobian
from stylegan.ops import fast_paths

SIGMAS = torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 0.25], dtype=torch.float64)


class LinearSynthesis(torch.nn.Module):
    """image = A · mean over layers of ws, reshaped to [1, 4, 4]; A = U diag(SIGMAS) Vᵀ."""

    def __init__(self, num_ws: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        u, _ = torch.linalg.qr(torch.randn(16, 6, generator=g, dtype=torch.float64))
        v, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
        self.register_buffer("A", (u @ torch.diag(SIGMAS) @ v.T).float())
        self.num_ws = num_ws

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = False) -> torch.Tensor:
        return (ws.mean(1) @ self.A.T).reshape(-1, 1, 4, 4)


class LinearG(torch.nn.Module):
    z_dim = w_dim = 6
    c_dim = 0
    img_channels = 1
    img_resolution = 4

    def __init__(self, num_ws: int = 3) -> None:
        super().__init__()
        self.num_ws = num_ws
        self.synthesis = LinearSynthesis(num_ws)

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1) -> torch.Tensor:
        return z.unsqueeze(1).repeat(1, self.num_ws, 1)


def test_linear_toy_w():
    r = jacobian.jacobian_spectrum(LinearG(), num_samples=3)
    assert r.shape == [16, 6] and r.space == "w"
    np.testing.assert_allclose(r.mean, (SIGMAS / SIGMAS[0]).numpy(), rtol=1e-5)
    np.testing.assert_allclose(r.std, 0, atol=1e-6)
    np.testing.assert_allclose(r.largest, 5.0, rtol=1e-5)


def test_linear_toy_w_plus():
    # J = [A, A, A] / 3 has singular values σ sqrt(3) / 3 (rank 6 of 16 rows: the rest are zero)
    r = jacobian.jacobian_spectrum(LinearG(3), num_samples=2, space="w+")
    assert r.shape == [16, 18]
    np.testing.assert_allclose(r.mean[:6], (SIGMAS / SIGMAS[0]).numpy(), rtol=1e-5)
    np.testing.assert_allclose(r.mean[6:], 0, atol=1e-6)
    np.testing.assert_allclose(r.largest, 5.0 / np.sqrt(3), rtol=1e-5)


def test_size_limit():
    with pytest.raises(ValueError, match=r"16 x 18 = 288 elements, over the limit of 100"):
        jacobian.jacobian_spectrum(LinearG(3), space="w+", max_elements=100)


def test_sg2_jacobian_matches_autograd(parity_dir):
    G = stylegan.load_network(parity_dir / "sg2_32").generator
    w = G.mapping(torch.randn(1, G.z_dim), None)[0, 0]
    J = jacobian.synthesis_jacobian(G, w, "w")
    assert J.shape == (3 * 32 * 32, G.w_dim)
    v = torch.randn(J.shape[0])
    with fast_paths(False):
        _, vjp = torch.autograd.functional.vjp(
            lambda x: G.synthesis(x.reshape(1, 1, -1).expand(1, G.num_ws, -1), noise_mode="const").flatten(), w, v)
    torch.testing.assert_close(v @ J, vjp, rtol=1e-4, atol=1e-4)
