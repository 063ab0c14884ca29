"""The von Mises-Fisher numerics and sampler of fnet.vae.vmf against references that share no code with them.

References: scipy's exponentially scaled Bessel function and mpmath (arbitrary precision) for log I_nu;
numerical quadrature of the vMF density itself (no Bessel function at all) for the mean resultant length
A_d and the KL to the uniform prior; and seeded sampling statistics (mean along mu, the tangent part, a
Kolmogorov-Smirnov distance to the quadrature CDF of w) with tolerances from their sampling errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fnet.vae.vmf import (householder_to, kl_to_uniform, log_bessel_iv, log_sphere_area, mean_resultant_length,
                          sample_radial, sample_vmf)

CASES = [(3, 1.0), (8, 10.0), (32, 50.0), (64, 200.0), (128, 30.0), (256, 1000.0)]  # (d, kappa)


def _theta_grid(d: int, kappa: float, points: int = 400_001):
    """theta in [0, pi] and the log of the unnormalised density of the angle to mu, exp(kappa cos) sin^(d-2)."""
    theta = np.linspace(0.0, math.pi, points)
    with np.errstate(divide="ignore"):
        log_sin = np.log(np.sin(theta))
    log_sin[0] = log_sin[-1] = -np.inf if d > 2 else 0.0
    return theta, kappa * np.cos(theta) + (d - 2) * log_sin, (d - 2) * log_sin


def _log_integral(log_f: np.ndarray, step: float) -> float:
    top = np.max(log_f)
    return float(top + np.log(np.trapezoid(np.exp(log_f - top), dx=step)))


def quadrature_reference(d: int, kappa: float) -> tuple[float, float, float]:
    """(E[w], E[w^2], KL to uniform) of vMF on S^{d-1} by quadrature over the angle theta, w = cos theta."""
    theta, log_q, log_u = _theta_grid(d, kappa)
    step = theta[1] - theta[0]
    log_zq, log_zu = _log_integral(log_q, step), _log_integral(log_u, step)
    density = np.exp(log_q - log_zq)
    w = np.cos(theta)
    mean_w = float(np.trapezoid(density * w, dx=step))
    mean_w2 = float(np.trapezoid(density * w * w, dx=step))
    kl = kappa * mean_w - log_zq + log_zu  # E_q[log q_w - log u_w]; the density ratio depends on w only
    return mean_w, mean_w2, kl


def quadrature_cdf(d: int, kappa: float, w: np.ndarray) -> np.ndarray:
    theta, log_q, _ = _theta_grid(d, kappa)
    step = theta[1] - theta[0]
    density = np.exp(log_q - log_q.max())
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2) * step])  # from theta = 0
    upper = 1.0 - cumulative / cumulative[-1]  # P(theta > t) = P(w < cos t)
    return np.interp(np.arccos(np.clip(w, -1, 1)), theta, upper)


@pytest.mark.parametrize("nu,x", [(0.0, 0.5), (0.5, 3.0), (15.0, 10.0), (31.0, 100.0), (63.0, 700.0),
                                  (127.0, 1000.0), (0.0, 5000.0), (255.0, 20.0)])
def test_log_bessel_matches_scipy(nu, x):
    special = pytest.importorskip("scipy.special")
    reference = math.log(special.ive(nu, x)) + x  # ive(nu, x) = I_nu(x) exp(-x)
    got = float(log_bessel_iv(nu, x))
    assert abs(got - reference) <= 1e-10 * max(1.0, abs(reference)), (nu, x, got, reference)


@pytest.mark.parametrize("nu,x", [(511.0, 1e-3), (1023.0, 2.0), (63.0, 2e4), (200.5, 750.0)])
def test_log_bessel_where_float64_bessel_overflows_or_underflows(nu, x):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    reference = float(mpmath.log(mpmath.besseli(nu, x)))
    got = float(log_bessel_iv(nu, x))
    assert abs(got - reference) <= 1e-10 * max(1.0, abs(reference)), (nu, x, got, reference)


@pytest.mark.parametrize("d,kappa", CASES)
def test_mean_resultant_length_and_kl_equal_quadrature_of_the_density(d, kappa):
    mean_w, _, kl = quadrature_reference(d, kappa)
    assert mean_resultant_length(d, kappa) == pytest.approx(mean_w, rel=1e-7, abs=1e-9)
    assert kl_to_uniform(d, kappa) == pytest.approx(kl, rel=1e-6, abs=1e-8)


def test_kl_is_zero_at_kappa_zero_grows_with_kappa_and_the_sphere_area_is_right():
    assert kl_to_uniform(16, 0.0) == 0.0
    values = [kl_to_uniform(16, k) for k in (0.1, 1.0, 10.0, 100.0, 1000.0)]
    assert all(a < b for a, b in zip(values, values[1:])) and values[0] > 0
    assert math.exp(log_sphere_area(3)) == pytest.approx(4 * math.pi)
    assert math.exp(log_sphere_area(2)) == pytest.approx(2 * math.pi)
    with pytest.raises(ValueError, match="kappa"):
        kl_to_uniform(16, -1.0)


@pytest.mark.parametrize("d,kappa", CASES)
def test_samples_have_the_vmf_mean_tangent_law_and_radial_distribution(d, kappa):
    n = 20_000
    generator = torch.Generator().manual_seed(d * 1000 + int(kappa))
    mu = torch.randn(1, d, dtype=torch.float64, generator=generator)
    mu = (mu / mu.norm()).expand(n, d)  # a random direction: the Householder step is exercised
    z = sample_vmf(mu, kappa, generator)  # (n, d)
    assert z.dtype == torch.float64 and torch.allclose(z.norm(dim=1), torch.ones(n, dtype=torch.float64))
    mean_w, mean_w2, _ = quadrature_reference(d, kappa)
    a_d = mean_resultant_length(d, kappa)
    w = z @ mu[0]  # (n,)
    se = math.sqrt(max(mean_w2 - mean_w ** 2, 1e-300) / n)
    assert abs(float(w.mean()) - a_d) < 5 * se, (float(w.mean()), a_d, se)
    # E[z] = A_d mu: the part of the sample mean orthogonal to mu is only sampling noise
    mean_z = z.mean(0)
    perp = mean_z - float(mean_z @ mu[0]) * mu[0]
    assert float(perp.norm()) < 4 * math.sqrt((1 - mean_w2) / n) + 1e-12
    assert float(mean_z.norm()) == pytest.approx(a_d, abs=5 * se + 4 * math.sqrt((1 - mean_w2) / n))
    # the tangent direction is uniform on the sphere orthogonal to mu: covariance (I - mu mu^T) / (d - 1)
    tangent = (z - w[:, None] * mu) / torch.sqrt((1 - w * w).clamp_min(1e-300))[:, None]
    second = tangent.T @ tangent / n
    expected = (torch.eye(d, dtype=torch.float64) - torch.outer(mu[0], mu[0])) / (d - 1)
    assert float((second - expected).abs().max()) < 6 / math.sqrt(n) / math.sqrt(d - 1) + 6 / (d - 1) / math.sqrt(n)
    # the radial part follows the density: Kolmogorov-Smirnov distance under the 0.1% critical value (six cases)
    w_sorted = np.sort(w.numpy())
    cdf = quadrature_cdf(d, kappa, w_sorted)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n), ks


def test_radial_sampler_is_reproducible_and_uniform_at_kappa_zero():
    first = sample_radial(1000, 10, 25.0, torch.Generator().manual_seed(3))
    again = sample_radial(1000, 10, 25.0, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    w = sample_radial(20_000, 5, 0.0, torch.Generator().manual_seed(4))
    assert abs(float(w.mean())) < 4 * math.sqrt(1 / 5 / 20_000)  # E[w] = 0, E[w^2] = 1/d under the uniform law
    assert float((w * w).mean()) == pytest.approx(1 / 5, abs=0.01)


def test_householder_sends_e1_to_mu_and_is_an_isometry():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 7, dtype=torch.float64, generator=generator)
    mu = mu / mu.norm(dim=1, keepdim=True)
    e1 = torch.zeros(5, 7, dtype=torch.float64)
    e1[:, 0] = 1
    assert torch.allclose(householder_to(mu, e1), mu, atol=1e-12)
    x = torch.randn(5, 7, dtype=torch.float64, generator=generator)
    y = torch.randn(5, 7, dtype=torch.float64, generator=generator)
    hx, hy = householder_to(mu, x), householder_to(mu, y)
    assert torch.allclose((hx * hy).sum(1), (x * y).sum(1), atol=1e-12)
    assert torch.allclose(householder_to(e1, x), x)  # mu = e1: the identity, no division by zero


def test_gradients_reach_mu_through_the_reparameterisation():
    generator_seed = 11

    def draw(raw):  # the same w and tangent draws every call: z is a deterministic function of mu
        mu = raw / raw.norm(dim=1, keepdim=True)
        return sample_vmf(mu, 20.0, torch.Generator().manual_seed(generator_seed))

    raw = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(draw, (raw,), eps=1e-6, atol=1e-6)
    loss = (draw(raw) * torch.arange(6, dtype=torch.float64)).sum()
    loss.backward()
    assert raw.grad is not None and float(raw.grad.abs().sum()) > 0
