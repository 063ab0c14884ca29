"""The von Mises-Fisher distribution on the unit sphere S^{d-1}: log-Bessel functions, its mean resultant
length, its KL to the uniform distribution, and a reparameterised sampler (Wood, 1994).

Legend: d the dimension of the ambient space (z in R^d, |z| = 1), kappa >= 0 the concentration, mu the
mean direction, nu = d/2 - 1, w = z . mu the "radial" coordinate in [-1, 1], b batch.

    vMF(z; mu, kappa) = C_d(kappa) exp(kappa mu.z),   C_d(kappa) = kappa^nu / ((2 pi)^(d/2) I_nu(kappa))

**Mean resultant length.** E[z] = A_d(kappa) mu with A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa).

**KL to the uniform prior.** With the uniform density 1 / |S^{d-1}|, |S^{d-1}| = 2 pi^(d/2) / Gamma(d/2):

    KL(vMF(mu, kappa) || U) = kappa A_d(kappa) + log C_d(kappa) + log |S^{d-1}|

It does not depend on mu: with kappa fixed the KL term of a vMF-VAE is a constant that no encoder can
drive to zero, which is the point of the model (:mod:`fnet.vae`).

**Bessel functions.** ``I_nu(kappa)`` overflows float64 near kappa = 700 and underflows for large nu at
small kappa, so only its logarithm is computed: the power series
``I_nu(x) = sum_k (x/2)^(2k+nu) / (k! Gamma(k+nu+1))`` summed in log space (a logsumexp over enough
terms to pass the peak at k ~ x/2 by 20 of its widths), in float64. Every term is positive, so there
is no cancellation: tests/test_vae_vmf.py finds it within 1e-10 (relative) of scipy and of mpmath for
nu up to 1023 and x up to 2e4, and A_d and the KL built on it within 1e-6 of quadrature of the density
(which uses no Bessel function at all). The cost is O(x) terms: fine for the kappas a VAE uses.

**Sampling** (Wood, 1994, "Simulation of the von Mises Fisher distribution"). Write
``z = w mu + sqrt(1 - w^2) v`` with ``v`` uniform on the unit sphere of the tangent space at mu. ``w`` has
the density ``p(w) ∝ exp(kappa w) (1 - w^2)^((d-3)/2)`` and is drawn by Wood's rejection sampler from
an envelope built on a Beta((d-1)/2, (d-1)/2) variable; ``v`` is a normalised Gaussian. Both are drawn
around the first axis e1 and carried to mu by the Householder reflection ``H = I - 2 u u^T`` with
``u = (e1 - mu) / |e1 - mu|``, which maps e1 to mu. With kappa fixed, ``w`` and ``v`` do not depend on mu,
so ``z = H(mu) z_e1`` is a differentiable function of mu: gradients reach the encoder through the
reflection (the reparameterisation of the "VAE on the sphere" post and of Davidson et al., 2018).
The Beta variable is drawn as ``(1 + g_1 / |g|) / 2`` with ``g ~ N(0, I_d)`` (the first coordinate of a
uniform direction in R^d has exactly that law), so a ``torch.Generator`` makes every draw reproducible.
"""

from __future__ import annotations

import math

import torch

__all__ = ["log_bessel_iv", "mean_resultant_length", "kl_to_uniform", "log_sphere_area", "sample_radial",
           "householder_to", "sample_vmf", "sample_uniform_sphere"]


def log_bessel_iv(nu: float, x: float | torch.Tensor) -> torch.Tensor:
    """``log I_nu(x)`` in float64 for ``nu >= 0`` and ``x >= 0`` (a tensor of x, or a number): the power
    series summed in log space, stable where ``I_nu`` itself over- or underflows."""
    if nu < 0:
        raise ValueError(f"log_bessel_iv needs nu >= 0, got {nu}")
    x = torch.as_tensor(x, dtype=torch.float64)
    if bool((x < 0).any()):
        raise ValueError("log_bessel_iv needs x >= 0")
    flat = x.reshape(-1)  # (m,)
    out = torch.empty_like(flat)
    zero = flat == 0
    out[zero] = 0.0 if nu == 0 else -math.inf
    positive = flat[~zero]
    if positive.numel():
        half = positive / 2
        # the terms peak at k* = sqrt(half^2 + (nu/2)^2) - nu/2 <= half, with width ~ sqrt(k* + 1)
        peak = float((torch.sqrt(half.max() ** 2 + (nu / 2) ** 2) - nu / 2).item())
        terms = int(peak + 20 * math.sqrt(peak + 1) + 40)
        k = torch.arange(terms, dtype=torch.float64)[:, None]  # (K, 1)
        log_terms = ((2 * k + nu) * torch.log(half)[None, :]
                     - torch.lgamma(k + 1) - torch.lgamma(k + nu + 1))  # (K, m)
        out[~zero] = torch.logsumexp(log_terms, dim=0)
    return out.reshape(x.shape)


def mean_resultant_length(d: int, kappa: float) -> float:
    """``A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa)``: the length of E[z] under vMF(mu, kappa) on S^{d-1}."""
    _check(d, kappa)
    if kappa == 0:
        return 0.0
    return float(torch.exp(log_bessel_iv(d / 2, kappa) - log_bessel_iv(d / 2 - 1, kappa)))


def log_sphere_area(d: int) -> float:
    """``log |S^{d-1}| = log(2 pi^(d/2) / Gamma(d/2))``, the surface area of the unit sphere in R^d."""
    return math.log(2.0) + (d / 2) * math.log(math.pi) - math.lgamma(d / 2)


def kl_to_uniform(d: int, kappa: float) -> float:
    """``KL(vMF(mu, kappa) || uniform on S^{d-1})`` in nats (the same for every mu)."""
    _check(d, kappa)
    if kappa == 0:
        return 0.0
    nu = d / 2 - 1
    log_c = nu * math.log(kappa) - (d / 2) * math.log(2 * math.pi) - float(log_bessel_iv(nu, kappa))
    return kappa * mean_resultant_length(d, kappa) + log_c + log_sphere_area(d)


def _check(d: int, kappa: float) -> None:
    if d < 2:
        raise ValueError(f"the vMF distribution needs dimension d >= 2, got {d}")
    if not kappa >= 0 or math.isinf(kappa):
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa}")


def sample_radial(n: int, d: int, kappa: float, generator: torch.Generator | None = None,
                  max_rounds: int = 1000) -> torch.Tensor:
    """``n`` draws of ``w = z . mu`` under vMF(mu, kappa) on S^{d-1} (float64, shape (n,)), by Wood's
    rejection sampler. kappa = 0 gives the uniform distribution's w."""
    _check(d, kappa)
    w = torch.empty(n, dtype=torch.float64)
    if kappa == 0:  # uniform: the first coordinate of a uniform direction
        g = torch.randn(n, d, dtype=torch.float64, generator=generator)  # (n, d)
        return g[:, 0] / g.norm(dim=1)
    m = d - 1
    b = m / (2 * kappa + math.sqrt(4 * kappa ** 2 + m ** 2))  # Wood's b, written without cancellation
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m * math.log1p(-x0 * x0)
    todo = torch.arange(n)
    for _ in range(max_rounds):
        k = todo.numel()
        g = torch.randn(k, d, dtype=torch.float64, generator=generator)  # (k, d)
        eps = (1 + g[:, 0] / g.norm(dim=1)) / 2  # Beta(m/2, m/2)
        proposal = (1 - (1 + b) * eps) / (1 - (1 - b) * eps)  # (k,)
        u = torch.rand(k, dtype=torch.float64, generator=generator)
        accept = kappa * proposal + m * torch.log1p(-x0 * proposal) - c >= torch.log(u)
        w[todo[accept]] = proposal[accept]
        todo = todo[~accept]
        if todo.numel() == 0:
            return w
    raise RuntimeError(f"Wood's sampler accepted too few proposals (d={d}, kappa={kappa})")


def sample_uniform_sphere(n: int, d: int, generator: torch.Generator | None = None,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` points uniform on S^{d-1}: (n, d)."""
    g = torch.randn(n, d, dtype=torch.float64, generator=generator)  # (n, d)
    return (g / g.norm(dim=1, keepdim=True)).to(dtype)


def householder_to(mu: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reflect ``x`` (b, d), given around the first axis e1, by the Householder map that sends e1 to the
    unit vector ``mu`` (b, d). Differentiable in mu; where mu is e1 the map is the identity."""
    e1 = torch.zeros_like(mu)
    e1[:, 0] = 1.0
    u = e1 - mu  # (b, d)
    norm = u.norm(dim=1, keepdim=True)  # (b, 1)
    safe = norm > 1e-6
    u = torch.where(safe, u / norm.clamp_min(1e-6), torch.zeros_like(u))
    return x - 2 * (x * u).sum(dim=1, keepdim=True) * u


def sample_vmf(mu: torch.Tensor, kappa: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw ``z ~ vMF(mu_i, kappa)`` per row of the unit vectors ``mu`` (b, d): (b, d), in mu's dtype,
    differentiable in mu (see the module docstring)."""
    b, d = mu.shape
    w = sample_radial(b, d, kappa, generator)  # (b,) float64
    v = torch.randn(b, d - 1, dtype=torch.float64, generator=generator)  # (b, d-1): tangent directions
    v = v / v.norm(dim=1, keepdim=True)
    around_e1 = torch.cat([w[:, None], torch.sqrt((1 - w) * (1 + w))[:, None] * v], dim=1)  # (b, d)
    return householder_to(mu, around_e1.to(device=mu.device, dtype=mu.dtype))
