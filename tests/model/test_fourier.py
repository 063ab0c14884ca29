"""The Fourier transform: both paths equal the reference formula at any length, in any precision."""

from __future__ import annotations

import pytest
import torch

from fnet.fourier import (dft_fourier_transform, fft_fourier_transform, fourier_transform,
                          reference_fourier_transform)

SHAPES = [(1, 1, 1), (2, 1, 5), (2, 2, 3), (3, 7, 5), (2, 8, 6), (1, 13, 32), (2, 64, 17), (1, 100, 24),
          (1, 511, 8), (1, 37, 1)]


def _oracle(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftn(x.double(), dim=(1, 2)).real


@pytest.mark.parametrize("shape", SHAPES)
def test_fft_and_dft_equal_reference_float64(shape):
    x = torch.randn(*shape, dtype=torch.float64)
    expected = _oracle(x)
    for fn in (fft_fourier_transform, dft_fourier_transform):
        got = fn(x)
        assert got.dtype == torch.float64
        err = (got - expected).abs().max().item()
        assert err < 1e-9 * max(1.0, shape[1] * shape[2]), f"{fn.__name__} {shape}: max abs error {err}"


@pytest.mark.parametrize("shape", SHAPES)
def test_paths_agree_float32(shape):
    x = torch.randn(*shape)
    fft, dft = fft_fourier_transform(x), dft_fourier_transform(x)
    scale = _oracle(x).abs().max().item() + 1
    assert (fft - dft).abs().max().item() <= 1e-5 * scale
    assert (fft.double() - _oracle(x)).abs().max().item() <= 1e-5 * scale


def _lengths_mask(lengths, n):
    return (torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]).long()


@pytest.mark.parametrize("method", ["fft", "dft"])
def test_masked_transform_mixes_each_example_over_its_own_tokens(method):
    x = torch.randn(4, 12, 6, dtype=torch.float64)
    mask = _lengths_mask([12, 5, 1, 9], 12)
    out = fourier_transform(x, mask, method=method)
    for i, length in enumerate([12, 5, 1, 9]):
        expected = _oracle(x[i : i + 1, :length])
        assert (out[i : i + 1, :length] - expected).abs().max().item() < 1e-10
        assert torch.all(out[i, length:] == 0), "pad positions must not receive mixed values"


@pytest.mark.parametrize("method", ["fft", "dft"])
def test_masked_transform_with_non_contiguous_mask(method):
    x = torch.randn(2, 9, 4, dtype=torch.float64)
    mask = torch.tensor([[0, 1, 1, 0, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 1, 1, 1]])  # holes; left padding
    out = fourier_transform(x, mask, method=method)
    for i in range(2):
        keep = mask[i].bool()
        expected = _oracle(x[i : i + 1, keep])
        assert (out[i : i + 1, keep] - expected).abs().max().item() < 1e-10
        assert torch.all(out[i, ~keep] == 0)


def test_all_ones_mask_equals_unmasked():
    x = torch.randn(3, 10, 8)
    for method in ("fft", "dft"):
        a = fourier_transform(x, torch.ones(3, 10, dtype=torch.long), method=method)
        torch.testing.assert_close(a, fourier_transform(x, None, method=method), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("length", [7, 100, 511])
@pytest.mark.parametrize("method", ["fft", "dft"])
def test_half_precision_computes_in_float32_and_returns_input_dtype(dtype, length, method):
    x = torch.randn(2, length, 12)
    out = fourier_transform(x.to(dtype), method=method)
    assert out.dtype == dtype
    expected = reference_fourier_transform(x.to(dtype).float())
    # the only error is the final rounding to the half type
    rel = ((out.float() - expected).abs() / (expected.abs() + 1)).max().item()
    assert rel < (1e-2 if dtype == torch.bfloat16 else 2e-3), rel


def test_under_autocast_the_transform_runs_in_float32():
    x = torch.randn(2, 33, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fft_fourier_transform(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference_fourier_transform(x), atol=1e-4, rtol=1e-5)


def test_dft_length_bound_is_enforced_with_a_clear_error():
    x = torch.randn(1, 20, 4)
    assert dft_fourier_transform(x, max_length=20).shape == x.shape
    with pytest.raises(ValueError, match="dft_max_length=16.*fourier_transform='fft'"):
        dft_fourier_transform(x, max_length=16)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"\(batch, seq, hidden\)"):
        fourier_transform(torch.randn(4, 5))
    with pytest.raises(ValueError, match="padding mask shape"):
        fourier_transform(torch.randn(2, 5, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="unknown Fourier transform method"):
        fourier_transform(torch.randn(2, 5, 3), method="wavelet")


def test_gradients_match_reference():
    x = torch.randn(2, 9, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 9, 7, dtype=torch.float64)
    for fn in (fft_fourier_transform, dft_fourier_transform):
        (g,) = torch.autograd.grad((fn(x) * w).sum(), x)
        (ref,) = torch.autograd.grad((torch.fft.fftn(x, dim=(1, 2)).real * w).sum(), x)
        assert (g - ref).abs().max().item() < 1e-9, fn.__name__


@pytest.mark.parametrize("n", [9, 257, 300])
def test_masked_fft_paths_both_exact(n, monkeypatch):
    """Short padded batches use one batched per-example DFT matmul, long ones one FFT per length."""
    import fnet.fourier as fourier

    x = torch.randn(4, n, 6, dtype=torch.float64)
    lengths = [n, n // 2, 1, n - 3]
    mask = _lengths_mask(lengths, n)
    outs = []
    for limit in (0, 10**6):  # force the grouped-FFT path, then the matmul path
        monkeypatch.setattr(fourier, "MASKED_MATMUL_MAX_LENGTH", limit)
        outs.append(fourier.fft_fourier_transform(x, mask))
    for out in outs:
        for i, length in enumerate(lengths):
            assert (out[i : i + 1, :length] - _oracle(x[i : i + 1, :length])).abs().max().item() < 1e-9
            assert torch.all(out[i, length:] == 0)


@pytest.mark.parametrize("method", ["fft", "dft"])
@pytest.mark.parametrize("n", [9, 300])  # both sides of MASKED_MATMUL_MAX_LENGTH
def test_a_mask_without_pads_takes_the_unmasked_path(method, n, monkeypatch):
    """A mask of all ones is the same math as no mask: same outputs as the masked path, which it skips."""
    import fnet.fourier as fourier

    x = torch.randn(3, n, 6, dtype=torch.float64)
    ones = torch.ones(3, n, dtype=torch.long)
    masked = {"fft": fourier._masked_by_matrices(x, ones), "dft": fourier._masked_dft(x, ones, 4096)}[method]
    expected = x + masked

    def refuse(*args, **kwargs):
        raise AssertionError("a mask without pads went down the masked path")

    for name in ("_masked_by_matrices", "_masked", "_masked_dft", "_per_example_dft"):
        monkeypatch.setattr(fourier, name, refuse)
    for mask in (ones, ones.bool(), ones.float()):
        got = fourier.fourier_transform(x, mask, method=method)
        err = (got - masked).abs().max().item()
        assert err < 1e-9, f"{method} n={n}: max abs error {err} against the masked path"
        err = (fourier.fourier_residual(x, mask, method=method) - expected).abs().max().item()
        assert err < 1e-9, f"residual {method} n={n}: max abs error {err} against the masked path"
    with pytest.raises(AssertionError, match="masked path"):  # one pad still takes it
        fourier.fourier_transform(x, torch.cat([ones[:, :-1], torch.zeros(3, 1, dtype=torch.long)], 1), method=method)
    with pytest.raises(ValueError, match="padding mask shape"):  # the shape is still checked
        fourier.fourier_residual(x, torch.ones(3, n + 1))
