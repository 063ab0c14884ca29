"""The 2-D Fourier transform that mixes tokens in FNet, in every form fnet uses.

Legend: b batch, n sequence length, d hidden size.

FNet's mixing sublayer is ``y = Re(F_n x F_d)``: a DFT over the hidden dimension, then one over the
sequence dimension, keeping the real part. For a real input ``x`` this has three exact forms:

* ``fftn``: the reference's complex FFT over both axes (kept as the oracle in tests);
* ``fft_fourier_transform``: a real-input FFT (rfft over d, fft over n) that computes half of the
  spectrum and rebuilds the other half by conjugate symmetry, ``Re Z[k, d-j] = Re Z[-k mod n, j]``;
* ``dft_fourier_transform``: matrix products with the cosine and sine DFT matrices,
  ``Re(F_n x F_d) = C_n x C_d - S_n x S_d``, which needs only real matmuls (so it exports to ONNX,
  runs on any accelerator and in any precision) and accepts any length up to a bound;
* ``matmul_fourier_transform``: the same matrices arranged for tensor cores (the GPU-native path):
  two GEMMs in the compute dtype (bfloat16/float16 under half precision, fp32 accumulation inside
  the GEMM), ``Z = x [C_d | S_d]`` then ``y = [C_n, -S_n] Z`` with the two halves of ``Z`` read as
  one interleaved operand, the residual added by the second GEMM (``baddbmm``): no complex tensors,
  no flips, no temporaries beyond ``Z``. ``method="auto"`` picks it on CUDA under half precision up
  to ``AUTO.matmul_max_length`` tokens (:func:`resolve_method`); CPUs keep the FFT.

The FFT and DFT functions compute in float32 (float64 stays float64) and return the input dtype:
cuFFT accepts half precision only at power-of-2 sizes and has no bfloat16 at all. The matmul form
computes in the half dtype (its rounding is bf16's, within 1% of the float64 result on a whole
model; tests/model/test_fourier_gpu.py) and returns the input dtype.

With a padding mask, each example is transformed over its own real tokens only (the DFT of length
``L_i`` instead of the padded length), and pad positions get zeros. Then an example's outputs do not
depend on how much padding it was batched with. A mask that marks no pad (a batch of equal lengths)
is the same math as no mask, so it takes the unmasked path, the fastest one (:func:`has_pads`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    "matmul_fourier_transform",
    "resolve_method",
    "auto_method",
    "AUTO",
    "AutoSelection",
    "METHODS",
]

METHODS = ("fft", "dft", "matmul", "auto")  # what fourier_transform(method=...) accepts (= config.FOURIER_TRANSFORMS)


def is_tracing() -> bool:
    """True while tracing, compiling, exporting or capturing a CUDA graph: values are symbolic (or
    placeholders for later replays) then, so no check may read them."""
    return _symbolic() or _capturing()


def _symbolic() -> bool:
    """Tracing, compiling or exporting: tensors may be fake, so caches are neither read nor filled."""
    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export())


def _capturing() -> bool:
    """A CUDA graph is being captured: no host sync; cached matrices may be read, never stored."""
    return bool(torch.cuda.is_initialized() and torch.cuda.is_current_stream_capturing())  # 0.1 us without CUDA


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
    the only temporary is the flipped tail, (b, n-1, m), since strides cannot be negative. ``out``
    may have a lower precision than ``x`` (bf16 output of a float32 transform): the sum is formed in
    x's precision and rounded once as it is written, so no separate cast pass is needed.
    """
    n, d = x.shape[-2], x.shape[-1]
    spec = torch.fft.rfft2(x, dim=(-2, -1)).real  # (b, n, h): a view of the complex output
    if torch.compiler.is_compiling():  # Dynamo cannot write into strided out= views: the same math, functional
        return _rebuilt_spectrum(spec, d, residual).to(out.dtype)
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


def _rebuilt_spectrum(spec: torch.Tensor, d: int, residual: torch.Tensor | None) -> torch.Tensor:
    """The form of :func:`_real_spectrum_into` for compilers: (b, n, h) half spectrum -> (b, n, d).
    Inductor fuses the flips, the concatenation and the residual add into one pass."""
    m = d - spec.shape[-1]
    tail = spec[..., 1 : 1 + m]  # (b, n, m)
    mirrored = torch.cat([tail[..., :1, :], tail[..., 1:, :].flip(-2)], dim=-2).flip(-1)  # row r <- row -r mod n
    full = torch.cat([spec, mirrored], dim=-1)  # (b, n, d)
    return full if residual is None else residual + full


class _RealFourier(torch.autograd.Function):
    """y = [x +] Re(F_n x F_d) for real x. The map x -> Re(F_n x F_d) = C_n x C_d - S_n x S_d is
    symmetric (C and S are symmetric matrices), so the backward pass is the same fused kernel applied
    to the incoming gradient; nothing needs to be saved for it. Computes in float32 (float64 stays
    float64) and writes the result in x's dtype in the same pass (no cast of the output)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, add_input: bool) -> torch.Tensor:
        ctx.add_input = add_input
        return _RealFourier.apply_to(x, add_input)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _RealFourier.apply_to(grad, ctx.add_input), None

    @staticmethod
    def apply_to(x: torch.Tensor, add_input: bool) -> torch.Tensor:
        xc = x.to(_compute_dtype(x)).contiguous()
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        return _real_spectrum_into(xc, out, xc if add_input else None)


def _rfft_real_part(x: torch.Tensor) -> torch.Tensor:
    """Re(F_n x F_d) for real x from half the spectrum. (b, n, d) float -> (b, n, d), x's dtype."""
    return _RealFourier.apply(x, False)


def fft_fourier_transform(x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """FNet mixing by real-input FFT, for any length. (b, n, d) -> (b, n, d), same dtype as x.

    ``padding_mask`` (b, n), 1/True at real tokens: each example is transformed over its own tokens.
    """
    dtype = x.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        if not has_pads(padding_mask):
            return _rfft_real_part(x)
        xc = x.to(_compute_dtype(x))
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


# (n, device, dtype) -> (C, S) for dft_matrices; (kind, n, device, dtype) -> operand for the matmul form
_DFT_CACHE: dict[tuple, object] = {}


def _angles(n: int, device) -> torch.Tensor:
    """2*pi*(jk mod n)/n in float64, (n, n); the product is formed in integers so it stays exact."""
    k = torch.arange(n, device=device, dtype=torch.int64)
    return (torch.outer(k, k) % n).to(torch.float64) * (2.0 * math.pi / n)


def dft_matrices(n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """Cosine and sine DFT matrices (n, n): F_n = C - iS with C[j,k] = cos(2*pi*jk/n).

    ``jk mod n`` is formed in integers first, so the angles stay exact for large n.
    """
    # while tracing/exporting, n may be symbolic and tensors fake: build the matrices in the graph
    # and never read or fill the cache (a fake tensor left there would poison later eager calls)
    key = None if _symbolic() else (int(n), str(device), dtype)
    if key is not None and key in _DFT_CACHE:
        return _DFT_CACHE[key]
    # not inference tensors even under inference_mode: cached matrices are reused by training too
    with torch.inference_mode(False):
        angle = _angles(n, device)
        mats = (torch.cos(angle).to(dtype), torch.sin(angle).to(dtype))
    if key is not None and len(_DFT_CACHE) < 64 and not _capturing():
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


# ----------------------------------------------------------------------------- the GPU-native form

_HALF = (torch.bfloat16, torch.float16)


@dataclass
class AutoSelection:
    """How ``method="auto"`` chooses (see :func:`resolve_method`). One process-wide instance, ``AUTO``.

    ``matmul_max_length``: the longest sequence mixed by the matmul form on CUDA under half precision;
    longer ones take the real FFT. 0 turns the matmul form off. The default is an estimate, not a
    measurement: the form costs 4 d (n + d) flops a token a layer, at d = 768 and n = 1024 ~8 us per
    1k tokens at 0.7 PFLOP/s of bf16 tensor cores, against ~10 us per 1k tokens measured for the FFT
    path at 512 tokens on an H200 (issue 22's profile). ``benchmarks/gpu.py`` measures the crossover.
    """

    matmul_max_length: int = 1024


AUTO = AutoSelection()


def _half_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The half precision x is computed in: its own dtype, or autocast's on x's device; else None."""
    if x.dtype in _HALF:
        return x.dtype
    if x.dtype == torch.float32 and torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        return dtype if dtype in _HALF else None
    return None


def resolve_method(method: str, x: torch.Tensor) -> str:
    """The concrete form ("fft", "dft" or "matmul") ``method`` means for x (b, n, d).

    "auto" is "matmul" on CUDA when x is bfloat16/float16 (or float32 under a half-precision
    autocast) and n <= ``AUTO.matmul_max_length``; "fft" otherwise, so CPUs keep the FFT path.
    """
    if method != "auto":
        return method
    return auto_method(x.device.type, x.shape[-2], _half_dtype(x) is not None)


def auto_method(device_type: str, length: int, half_precision: bool) -> str:
    """The rule behind "auto": "matmul" on CUDA in half precision up to ``AUTO.matmul_max_length``, else "fft"."""
    if device_type == "cuda" and half_precision and length <= AUTO.matmul_max_length:
        return "matmul"
    return "fft"


def _matmul_dtype(x: torch.Tensor) -> torch.dtype:
    return _half_dtype(x) or _compute_dtype(x)


def _cached(kind: str, n: int, device: torch.device, dtype: torch.dtype, build):
    """``build(n, device, dtype)``, kept in the DFT cache (read, not filled, during a CUDA graph capture;
    neither while tracing: see :func:`dft_matrices`)."""
    key = None if _symbolic() else (kind, int(n), str(device), dtype)
    if key is not None and key in _DFT_CACHE:
        return _DFT_CACHE[key]
    with torch.inference_mode(False):
        value = build(n, device, dtype)
    if key is not None and len(_DFT_CACHE) < 64 and not _capturing():
        _DFT_CACHE[key] = value
    return value


def _hidden_operand(d: int, device, dtype) -> torch.Tensor:
    """[C_d | S_d] (d, 2d): one GEMM gives x C_d and x S_d side by side."""
    angle = _angles(d, device)
    return torch.cat([torch.cos(angle), torch.sin(angle)], dim=1).to(dtype)


def _interleave(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(..., n, n) cos and sin -> (..., n, 2n) with column 2j = C[:, j] and column 2j+1 = -S[:, j]."""
    return torch.stack([c, -s], dim=-1).flatten(-2)


def _sequence_operand(n: int, device, dtype) -> torch.Tensor:
    """[C_n, -S_n] interleaved (n, 2n): multiplies Z (b, n, 2d) read as (b, 2n, d)."""
    angle = _angles(n, device)
    return _interleave(torch.cos(angle), torch.sin(angle)).to(dtype)


def _matmul_mix(x: torch.Tensor, seq: torch.Tensor, hidden: torch.Tensor, add_input: bool) -> torch.Tensor:
    """[x +] C_n x C_d - S_n x S_d as two GEMMs. x (b, n, d); seq (n, 2n) or (b, n, 2n); hidden (d, 2d)."""
    b, n, d = x.shape
    z = torch.matmul(x, hidden)  # (b, n, 2d): [x C_d | x S_d], one GEMM over b*n rows
    z = z.view(b, 2 * n, d)  # row 2j = (x C_d)[j], row 2j+1 = (x S_d)[j]: no copy
    seq = seq.expand(b, n, 2 * n) if seq.dim() == 2 else seq  # shared matrix: batch stride 0, no copy
    if add_input:
        return torch.baddbmm(x, seq, z)  # (b, n, d): x + [C_n, -S_n] z, the residual in the GEMM's epilogue
    return torch.bmm(seq, z)  # (b, n, d)


class _MatmulFourier(torch.autograd.Function):
    """y = [x +] Re(F x F_d) by two GEMMs in ``dtype``; F is F_n, or each example's own sequence DFT.
    Like the FFT form, the map is symmetric (C and S are), so the backward pass is the same two GEMMs
    on the gradient; only the (per-example) sequence matrix is saved."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, seq: torch.Tensor, hidden: torch.Tensor, add_input: bool) -> torch.Tensor:
        ctx.add_input = add_input
        ctx.save_for_backward(seq, hidden)
        return _matmul_mix(x.to(hidden.dtype), seq, hidden, add_input).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        seq, hidden = ctx.saved_tensors
        out = _matmul_mix(grad.to(hidden.dtype), seq, hidden, ctx.add_input).to(grad.dtype)
        return out, None, None, None


def matmul_fourier_transform(
    x: torch.Tensor, padding_mask: torch.Tensor | None = None, add_input: bool = False
) -> torch.Tensor:
    """FNet mixing [x +] Re(F_n x F_d) by tensor-core GEMMs. (b, n, d) -> (b, n, d), x's dtype.

    Computes in bfloat16/float16 when x is (or autocast is) half precision, with the GEMMs' float32
    accumulation, else in float32 (float64 stays float64). Costs 4 b n d (n + d) flops; the n x n
    matrix makes it the short-sequence form (``AUTO.matmul_max_length``). ``padding_mask`` (b, n):
    each example is mixed over its own tokens by its own sequence DFT (pads get 0, or x with
    ``add_input``).
    """
    b, n, d = x.shape
    dtype = _matmul_dtype(x)  # read before autocast is switched off below
    with torch.autocast(device_type=x.device.type, enabled=False):
        hidden = _cached("hidden", d, x.device, dtype, _hidden_operand)
        if has_pads(padding_mask):
            seq = _interleave(*_per_example_dft(padding_mask.to(x.device), dtype))  # (b, n, 2n)
        else:
            seq = _cached("sequence", n, x.device, dtype, _sequence_operand)  # (n, 2n)
        return _MatmulFourier.apply(x, seq, hidden, add_input)


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

    ``method``: "fft" (any length), "dft" (matrix form in float32, n <= dft_max_length), "matmul"
    (matrix form in the half dtype, the GPU-native path) or "auto" (:func:`resolve_method`).
    ``padding_mask``: optional (b, n), nonzero at real tokens; each example is mixed over its own tokens.
    """
    _check_shapes(x, padding_mask)
    method = resolve_method(_checked_method(method), x)
    if method == "fft":
        return fft_fourier_transform(x, padding_mask)
    if method == "dft":
        return dft_fourier_transform(x, padding_mask, dft_max_length)
    return matmul_fourier_transform(x, padding_mask)


def _checked_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown Fourier transform method {method!r}; use one of {list(METHODS)}")
    return method


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
    float32 (float64 stays float64) and rounded to x's dtype once. The matmul form adds x in its
    second GEMM (masked or not). Other cases add the transform to x.
    """
    _check_shapes(x, padding_mask)
    method = resolve_method(_checked_method(method), x)
    if method == "matmul":
        return matmul_fourier_transform(x, padding_mask, add_input=True)
    if method != "fft" or has_pads(padding_mask):
        return x + fourier_transform(x, padding_mask, method, dft_max_length)
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _RealFourier.apply(x, True)
