"""The 2-D Fourier transform that mixes tokens in FNet, in every form fnet uses.

Legend: b batch, n sequence length, d hidden size.

FNet's mixing sublayer is ``y = Re(F_n x F_d)``: a DFT over the hidden dimension, then one over the
sequence dimension, keeping the real part. For a real input ``x`` this has three exact forms:

* ``fftn``: the reference's complex FFT over both axes (kept as the oracle in tests);
* ``fft_fourier_transform``: a real-input FFT (rfft over d, fft over n) that computes half of the
  spectrum and rebuilds the other half by conjugate symmetry, ``Re Z[k, d-j] = Re Z[-k mod n, j]``;
* ``dft_fourier_transform``: matrix products with the cosine and sine DFT matrices,
  ``Re(F_n x F_d) = C_n x C_d - S_n x S_d``, which needs only real matmuls (so it exports to ONNX,
  runs on any accelerator and in any precision) and accepts any length up to a bound.

Every function computes in float32 (float64 stays float64) and returns the input dtype: cuFFT
accepts half precision only at power-of-2 sizes and has no bfloat16 at all.

With a padding mask, each example is transformed over its own real tokens only (the DFT of length
``L_i`` instead of the padded length), and pad positions get zeros. Then an example's outputs do not
depend on how much padding it was batched with. A mask that marks no pad (a batch of equal lengths)
is the same math as no mask, so it takes the unmasked path, the fastest one (:func:`has_pads`).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "fourier_transform",
    "has_pads",
    "is_tracing",
    "fourier_residual",
    "fft_fourier_transform",
    "dft_fourier_transform",
    "reference_fourier_transform",
    "dft_matrices",
]


def is_tracing() -> bool:
    """True while tracing, compiling or exporting: values are symbolic then, so no check may read them."""
    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export())


def has_pads(padding_mask: torch.Tensor | None) -> bool:
    """Whether ``padding_mask`` (b, n) marks any pad (a 0). A mask without pads mixes exactly like no
    mask, so the transforms below take their unmasked path for it. While tracing or exporting the
    mask's values are unknown: a given mask counts as padded, so the graph keeps the masked form."""
    if padding_mask is None:
        return False
    if is_tracing():
        return True
    return not bool(padding_mask.all())


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def reference_fourier_transform(x: torch.Tensor) -> torch.Tensor:
    """The reference formula, ``Re(fftn(x, dims=(n, d)))``, computed in float32. (b, n, d) -> (b, n, d)."""
    out = torch.fft.fftn(x.to(_compute_dtype(x)), dim=(-2, -1)).real
    return out.to(x.dtype)


def _store(dst: torch.Tensor, value: torch.Tensor, residual: torch.Tensor | None) -> None:
    """dst = residual + value (or value), written in place: one pass, no temporary."""
    if residual is None:
        dst.copy_(value)
    elif is_tracing():  # an exported graph runs this forward inline, with autograd on, where out= is refused
        dst.copy_(residual + value)
    else:
        torch.add(residual, value, out=dst)


def _real_spectrum_into(x: torch.Tensor, out: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """out = [residual +] Re(F_n x F_d) for real x, from half the spectrum. (b, n, d) -> out (b, n, d).

    ``rfft2`` gives columns 0..h-1 (h = d//2 + 1); the other m = d - h columns follow from conjugate
    symmetry, ``Re Z[k, d-j] = Re Z[-k mod n, j]``: output columns h..d-1 are spectrum columns m..1,
    output row 0 reads row 0 and output rows 1..n-1 read rows n-1..1. Each output element is written
    once, straight from the (strided) real view of the spectrum: no cat, roll or full rebuilt tensor;
    the only temporary is the flipped tail, (b, n-1, m), since strides cannot be negative.
    """
    n, d = x.shape[-2], x.shape[-1]
    spec = torch.fft.rfft2(x, dim=(-2, -1)).real  # (b, n, h): a view of the complex output
    h = spec.shape[-1]
    m = d - h
    _store(out[..., :h], spec, None if residual is None else residual[..., :h])
    if m == 0:
        return out
    tail = spec[..., 1 : 1 + m]  # (b, n, m): spectrum columns j = 1..m
    res_tail = None if residual is None else residual[..., h:]  # (b, n, m)
    _store(out[..., :1, h:], tail[..., :1, :].flip(-1), None if res_tail is None else res_tail[..., :1, :])
    if n > 1:
        _store(out[..., 1:, h:], tail[..., 1:, :].flip((-2, -1)), None if res_tail is None else res_tail[..., 1:, :])
    return out


class _RealFourier(torch.autograd.Function):
    """y = [x +] Re(F_n x F_d) for real x. The map x -> Re(F_n x F_d) = C_n x C_d - S_n x S_d is
    symmetric (C and S are symmetric matrices), so the backward pass is the same fused kernel applied
    to the incoming gradient; nothing needs to be saved for it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, add_input: bool) -> torch.Tensor:
        ctx.add_input = add_input
        x = x.contiguous()
        return _real_spectrum_into(x, torch.empty_like(x), x if add_input else None)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        return _real_spectrum_into(grad, torch.empty_like(grad), grad if ctx.add_input else None), None


def _rfft_real_part(x: torch.Tensor) -> torch.Tensor:
    """Re(F_n x F_d) for real x from half the spectrum. (b, n, d) float -> (b, n, d) float."""
    return _RealFourier.apply(x, False)


def fft_fourier_transform(x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """FNet mixing by real-input FFT, for any length. (b, n, d) -> (b, n, d), same dtype as x.

    ``padding_mask`` (b, n), 1/True at real tokens: each example is transformed over its own tokens.
    """
    dtype = x.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        xc = x.to(_compute_dtype(x))
        if not has_pads(padding_mask):
            return _rfft_real_part(xc).to(dtype)
        if xc.shape[-2] <= MASKED_MATMUL_MAX_LENGTH:
            return _masked_by_matrices(xc, padding_mask).to(dtype)
        return _masked(xc, padding_mask, lambda chunk, mask: _rfft_real_part(chunk)).to(dtype)


# Up to this padded length, a masked FFT-path batch is mixed by one batched matmul with each
# example's own sequence-DFT matrix (4*b*n^2*d flops) instead of one FFT call per distinct length:
# fine-tuning batches of short texts have nearly as many lengths as examples.
MASKED_MATMUL_MAX_LENGTH = 256


def _per_example_dft(padding_mask: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example's own sequence DFT, as cos/sin matrices (b, n, n) that are zero on pad rows/columns.

    Token t of example i gets rank p (real tokens before it); entries are cos/sin(2*pi*p_j*p_k / L_i),
    with ``p_j * p_k mod L_i`` formed in integers so the angles stay exact.
    """
    mask = padding_mask.to(dtype=torch.int64)  # (b, n)
    lengths = mask.sum(dim=1).clamp(min=1)  # (b,)
    rank = torch.cumsum(mask, dim=1) - 1  # (b, n)
    prod = rank[:, :, None] * rank[:, None, :] % lengths[:, None, None]  # (b, n, n)
    angle = prod.to(torch.float64) * (2.0 * math.pi) / lengths[:, None, None].to(torch.float64)
    keep = (mask[:, :, None] * mask[:, None, :]).to(dtype)  # (b, n, n)
    return torch.cos(angle).to(dtype) * keep, torch.sin(angle).to(dtype) * keep


def _masked_by_matrices(x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """Re(F_hidden(F_i x)) with F_i = C_i - i S_i each example's own sequence DFT. (b, n, d) -> (b, n, d)."""
    c_n, s_n = _per_example_dft(padding_mask.to(x.device), x.dtype)
    z = torch.complex(torch.matmul(c_n, x), -torch.matmul(s_n, x))  # (b, n, d): sequence DFT of each example
    return torch.fft.fft(z, dim=-1).real  # then the hidden DFT, real part


def _masked(x: torch.Tensor, padding_mask: torch.Tensor, transform) -> torch.Tensor:
    """Apply ``transform`` to each example's real tokens only; zeros at pads.

    Real tokens are moved (stably) to the front, examples are grouped by their number of real
    tokens, and each group is transformed at its own length, then scattered back.
    """
    b, n, d = x.shape
    mask = padding_mask.to(device=x.device, dtype=torch.bool)
    lengths = mask.sum(dim=1)  # (b,)
    out = torch.zeros_like(x)
    contiguous = bool((mask == (torch.arange(n, device=x.device) < lengths[:, None])).all())
    if contiguous:  # right padding, the usual case: no gather needed
        order = None
        packed = x
    else:
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # (b, n): real tokens first
        packed = torch.gather(x, 1, order[..., None].expand(b, n, d))
    for length in torch.unique(lengths).tolist():
        if length == 0:
            continue
        rows = (lengths == length).nonzero(as_tuple=True)[0]
        mixed = transform(packed[rows, :length], None)  # (r, length, d)
        if order is None:
            out[rows, :length] = mixed
        else:
            out[rows[:, None], order[rows, :length]] = mixed
    return out


_DFT_CACHE: dict[tuple[int, str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def dft_matrices(n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """Cosine and sine DFT matrices (n, n): F_n = C - iS with C[j,k] = cos(2*pi*jk/n).

    ``jk mod n`` is formed in integers first, so the angles stay exact for large n.
    """
    # while tracing/exporting, n may be symbolic and tensors fake: build the matrices in the graph
    # and never read or fill the cache (a fake tensor left there would poison later eager calls)
    key = None if is_tracing() else (int(n), str(device), dtype)
    if key is not None and key in _DFT_CACHE:
        return _DFT_CACHE[key]
    # not inference tensors even under inference_mode: cached matrices are reused by training too
    with torch.inference_mode(False):
        k = torch.arange(n, device=device, dtype=torch.int64)
        angle = (torch.outer(k, k) % n).to(torch.float64) * (2.0 * math.pi / n)  # (n, n)
        mats = (torch.cos(angle).to(dtype), torch.sin(angle).to(dtype))
    if key is not None and len(_DFT_CACHE) < 64:
        _DFT_CACHE[key] = mats
    return mats


def _dft_real_part(x: torch.Tensor, max_length: int) -> torch.Tensor:
    n, d = x.shape[-2], x.shape[-1]
    if n > max_length:
        raise ValueError(
            f"the DFT-matrix Fourier transform accepts sequences up to dft_max_length={max_length} tokens, "
            f"got {n}; use fourier_transform='fft' or raise dft_max_length"
        )
    c_d, s_d = dft_matrices(d, x.device, x.dtype)
    c_n, s_n = dft_matrices(n, x.device, x.dtype)
    # Re(F_n x F_d) = C_n (x C_d) - S_n (x S_d)
    return torch.matmul(c_n, torch.matmul(x, c_d)) - torch.matmul(s_n, torch.matmul(x, s_d))  # (b, n, d)


def dft_fourier_transform(
    x: torch.Tensor, padding_mask: torch.Tensor | None = None, max_length: int = 4096
) -> torch.Tensor:
    """FNet mixing by DFT matrices, for any length up to ``max_length``. (b, n, d) -> (b, n, d)."""
    dtype = x.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        xc = x.to(_compute_dtype(x))
        if not has_pads(padding_mask):
            return _dft_real_part(xc, max_length).to(dtype)
        return _masked_dft(xc, padding_mask, max_length).to(dtype)


def _masked_dft(x: torch.Tensor, padding_mask: torch.Tensor, max_length: int) -> torch.Tensor:
    """Per-example DFT over real tokens as one batched matmul (no Python loop, so it exports).

    Token t of example i gets rank p = (number of real tokens before it); the sequence DFT matrix
    of example i is cos/sin(2*pi*p_j*p_k / L_i) on real rows/columns and 0 elsewhere.
    """
    n, d = x.shape[-2], x.shape[-1]
    if n > max_length:
        return _dft_real_part(x, max_length)  # raises the clear error
    c_n, s_n = _per_example_dft(padding_mask.to(x.device), x.dtype)  # (b, n, n) each
    c_d, s_d = dft_matrices(d, x.device, x.dtype)
    return torch.matmul(c_n, torch.matmul(x, c_d)) - torch.matmul(s_n, torch.matmul(x, s_d))


def _check_shapes(x: torch.Tensor, padding_mask: torch.Tensor | None) -> None:
    if x.dim() != 3:
        raise ValueError(f"fourier_transform expects (batch, seq, hidden), got shape {tuple(x.shape)}")
    if padding_mask is not None and tuple(padding_mask.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"padding mask shape {tuple(padding_mask.shape)} does not match (batch, seq) = {tuple(x.shape[:2])}"
        )


def fourier_transform(
    x: torch.Tensor,
    padding_mask: torch.Tensor | None = None,
    method: str = "fft",
    dft_max_length: int = 4096,
) -> torch.Tensor:
    """FNet token mixing ``Re(F_n x F_d)``. (b, n, d) -> (b, n, d), returned in x's dtype.

    ``method``: "fft" (any length) or "dft" (matrix form, n <= dft_max_length).
    ``padding_mask``: optional (b, n), nonzero at real tokens; each example is mixed over its own tokens.
    """
    _check_shapes(x, padding_mask)
    if method == "fft":
        return fft_fourier_transform(x, padding_mask)
    if method == "dft":
        return dft_fourier_transform(x, padding_mask, dft_max_length)
    raise ValueError(f"unknown Fourier transform method {method!r}; use 'fft' or 'dft'")


def fourier_residual(
    x: torch.Tensor,
    padding_mask: torch.Tensor | None = None,
    method: str = "fft",
    dft_max_length: int = 4096,
) -> torch.Tensor:
    """The mixing sublayer before its norm, ``x + Re(F_n x F_d)``. (b, n, d) -> (b, n, d), x's dtype.

    The fast path (FFT, no pads: no mask or one of all ones) writes the sum straight from the half
    spectrum into one output tensor, so neither the rebuilt transform nor the sum before it is ever a
    separate tensor; its gradient is the same kernel (the map is symmetric). The sum is formed in
    float32 (float64 stays float64) and rounded to x's dtype once. Other cases add the transform to x.
    """
    _check_shapes(x, padding_mask)
    if method != "fft" or has_pads(padding_mask):
        return x + fourier_transform(x, padding_mask, method, dft_max_length)
    dtype = x.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _RealFourier.apply(x.to(_compute_dtype(x)), True).to(dtype)
