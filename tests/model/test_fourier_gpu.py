"""The GPU-native Fourier form (``method="matmul"``): two GEMMs in the half dtype. The same math
runs on the CPU, so every property is tested here against a float64 oracle; CUDA-only checks are
marked ``cuda`` and skip without a GPU."""

from __future__ import annotations

import pytest
import torch

from fnet import FNetConfig, FNetModel
from fnet.config import FOURIER_TRANSFORMS
from fnet.fourier import (AUTO, METHODS, _real_spectrum_into, _rebuilt_spectrum, auto_method, fourier_residual,
                          fourier_transform, matmul_fourier_transform, resolve_method)

from conftest import tiny_config_kwargs

no_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SHAPES = [(1, 1, 1), (2, 7, 5), (3, 8, 6), (2, 13, 32), (1, 64, 17), (2, 33, 24)]  # odd and even n, d


def _oracle(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftn(x.double(), dim=(1, 2)).real


def _rel(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got.double() - expected).norm() / expected.norm().clamp(min=1e-30)).item()


@pytest.mark.parametrize("shape", SHAPES)
def test_matmul_form_is_exact_in_float64(shape):
    x = torch.randn(*shape, dtype=torch.float64)
    expected = _oracle(x)
    mixed = matmul_fourier_transform(x)
    summed = matmul_fourier_transform(x, add_input=True)
    assert mixed.dtype == torch.float64
    assert (mixed - expected).abs().max().item() < 1e-10, f"{shape}: max abs error {(mixed - expected).abs().max()}"
    assert (summed - (x + expected)).abs().max().item() < 1e-10


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, bound", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2), (torch.float16, 2e-3)])
def test_matmul_form_in_low_precision_stays_within_its_rounding(shape, dtype, bound):
    x = torch.randn(*shape, dtype=torch.float64)
    xq = x.to(dtype)
    expected = _oracle(xq)  # the transform of the rounded input: what is left is the form's own error
    got = matmul_fourier_transform(xq)
    assert got.dtype == dtype
    err = _rel(got, expected)
    assert err < bound, f"{dtype} {shape}: relative error {err:.2e} > {bound:.0e}"
    got = fourier_residual(xq, method="matmul")
    assert _rel(got, expected + xq.double()) < bound


def _lengths_mask(lengths, n):
    return (torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]).long()


@pytest.mark.parametrize("mask", [
    _lengths_mask([12, 5, 1, 9], 12),  # right padding, the usual case
    torch.tensor([[0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                  [1] * 12, [1, 0] * 6]),  # holes, left padding, no pads, alternate
])
@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-12), (torch.bfloat16, 1e-2)])
def test_masked_matmul_form_mixes_each_example_over_its_own_tokens(mask, dtype, bound):
    x = torch.randn(4, 12, 6, dtype=torch.float64).to(dtype)
    out = fourier_transform(x, mask, method="matmul")
    summed = fourier_residual(x, mask, method="matmul")
    assert out.dtype == summed.dtype == dtype
    for i in range(4):
        keep = mask[i].bool()
        expected = _oracle(x[i : i + 1, keep])
        assert _rel(out[i : i + 1, keep], expected) < bound, f"example {i}"
        assert _rel(summed[i : i + 1, keep], expected + x[i : i + 1, keep].double()) < bound
        assert torch.all(out[i, ~keep] == 0), "pads must not receive mixed values"
        assert torch.equal(summed[i, ~keep], x[i, ~keep]), "pads keep their input in the residual form"


@pytest.mark.parametrize("add_input", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_matmul_form_gradient_is_exact(add_input, masked):
    x = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    mask = _lengths_mask([5, 3], 5) if masked else None
    torch.autograd.gradcheck(lambda t: matmul_fourier_transform(t, mask, add_input), (x,))


def test_matmul_form_gradient_in_bf16_matches_float64():
    x = torch.randn(3, 16, 8, dtype=torch.float64)
    g = torch.randn(3, 16, 8, dtype=torch.float64)
    xq = x.to(torch.bfloat16).requires_grad_()
    (fourier_residual(xq, method="matmul") * g.to(torch.bfloat16)).sum().backward()
    x64 = xq.detach().double().requires_grad_()
    ((x64 + _oracle(x64)) * g.to(torch.bfloat16).double()).sum().backward()
    assert xq.grad.dtype == torch.bfloat16
    assert _rel(xq.grad, x64.grad) < 1e-2


def test_under_cpu_autocast_the_matmul_form_computes_in_bfloat16_and_returns_float32():
    x = torch.randn(2, 16, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fourier_transform(x, method="matmul")
    assert got.dtype == torch.float32
    err = _rel(got, _oracle(x))
    assert 1e-5 < err < 1e-2, f"relative error {err:.2e}: bf16 rounding expected (float32 would be < 1e-6)"


def test_auto_rule_picks_matmul_only_on_cuda_in_half_precision_up_to_the_crossover(monkeypatch):
    monkeypatch.setattr(AUTO, "matmul_max_length", 512)
    assert auto_method("cuda", 512, True) == "matmul"
    assert auto_method("cuda", 513, True) == "fft"
    assert auto_method("cuda", 512, False) == "fft"
    assert auto_method("cpu", 512, True) == "fft"
    monkeypatch.setattr(AUTO, "matmul_max_length", 0)
    assert auto_method("cuda", 1, True) == "fft"
    # on this machine's tensors "auto" is what "fft" is, in every precision
    for dtype in (torch.float32, torch.bfloat16):
        assert resolve_method("auto", torch.zeros(1, 4, 4, dtype=dtype)) == "fft"
    assert set(METHODS) == set(FOURIER_TRANSFORMS), "fourier.METHODS and config.FOURIER_TRANSFORMS must agree"


def test_cpu_auto_runs_the_fft_path_bit_for_bit():
    x = torch.randn(2, 9, 10).to(torch.bfloat16)
    assert torch.equal(fourier_residual(x, method="auto"), fourier_residual(x, method="fft"))


@pytest.mark.parametrize("shape", [(2, 1, 1), (2, 7, 5), (1, 8, 6), (3, 5, 2)])
def test_compiler_form_of_the_fused_fft_equals_the_in_place_form(shape):
    x = torch.randn(*shape, dtype=torch.float64)
    spec = torch.fft.rfft2(x, dim=(-2, -1)).real
    for residual in (None, x):
        eager = _real_spectrum_into(x, torch.empty_like(x), residual)
        assert torch.equal(_rebuilt_spectrum(spec, shape[-1], residual), eager)
        assert (eager - _oracle(x) - (0 if residual is None else x)).abs().max().item() < 1e-10


def test_fused_fft_writes_half_precision_output_in_one_rounding():
    x = torch.randn(2, 12, 10).to(torch.bfloat16)
    expected = (x.float() + torch.fft.fftn(x.float(), dim=(1, 2)).real).to(torch.bfloat16)
    got = fourier_residual(x, method="fft")
    assert got.dtype == torch.bfloat16
    # the float32 sum rounded once to bf16: equal to rounding the float32 result, up to one bf16 ulp
    # where float32 FFT rounding sits on a bf16 tie
    ulp = expected.float().abs() * 2.0**-7
    assert torch.all((got.float() - expected.float()).abs() <= ulp), "more than one rounding in the bf16 output"


def _model(dtype: torch.dtype, transform: str) -> FNetModel:
    torch.manual_seed(0)
    config = FNetConfig(**tiny_config_kwargs(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                              fourier_transform=transform))
    return FNetModel(config).eval().to(dtype)


@pytest.mark.parametrize("masked", [False, True])
def test_whole_model_in_bf16_by_the_matmul_form_is_within_one_percent_of_float64(masked):
    ids = torch.randint(4, 61, (3, 40))
    mask = _lengths_mask([40, 23, 7], 40) if masked else None
    reference = _model(torch.float64, "fft")(ids, attention_mask=mask).last_hidden_state
    got = _model(torch.bfloat16, "matmul")(ids, attention_mask=mask).last_hidden_state
    keep = torch.ones(3, 40, dtype=torch.bool) if mask is None else mask.bool()
    err = _rel(got[keep], reference[keep])
    assert err < 1e-2, f"whole model, bf16 matmul form vs float64: relative error {err:.2e}"


def test_matmul_form_compiles_without_graph_breaks():
    fn = torch.compile(lambda t, m: fourier_residual(t, m, method="matmul") + fourier_transform(t, None, "matmul"),
                       fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 9, 8, requires_grad=True)
    mask = _lengths_mask([9, 4], 9)
    got = fn(x, mask)
    got.sum().backward()
    expected = fourier_residual(x, mask, method="matmul") + fourier_transform(x, None, "matmul")
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("transform, masked", [("fft", False), ("fft", True), ("matmul", True)])
def test_whole_model_compiles_fullgraph_and_trains(transform, masked):  # matmul unmasked: the test above
    model = _model(torch.float32, transform).train()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    ids = torch.randint(4, 61, (2, 12))
    mask = _lengths_mask([12, 7], 12) if masked else None
    out = compiled(ids, attention_mask=mask).last_hidden_state
    out.sum().backward()
    torch.testing.assert_close(out, model(ids, attention_mask=mask).last_hidden_state, atol=1e-5, rtol=1e-5)
    assert all(p.grad is not None for p in model.encoder.parameters())


# ----------------------------------------------------------------------------- CUDA (skip without a GPU)


@pytest.mark.cuda
@no_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("masked", [False, True])
def test_cuda_auto_picks_the_matmul_form_and_is_within_bf16_rounding(dtype, masked, monkeypatch):
    calls = []
    import fnet.fourier as fourier

    real = fourier.matmul_fourier_transform
    monkeypatch.setattr(fourier, "matmul_fourier_transform", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.randn(4, 128, 64, dtype=torch.float64)
    mask = _lengths_mask([128, 100, 3, 64], 128) if masked else None
    got = fourier_residual(x.to("cuda", dtype), None if mask is None else mask.cuda(), method="auto")
    assert calls, "auto did not pick the matmul form on CUDA"
    keep = torch.ones(4, 128, dtype=torch.bool) if mask is None else mask.bool()
    for i in range(4):
        xi = x.to(dtype)[i : i + 1, keep[i]]
        assert _rel(got[i : i + 1, keep[i].cuda()].cpu(), _oracle(xi) + xi.double()) < 1e-2


@pytest.mark.cuda
@no_cuda
def test_cuda_whole_model_bf16_auto_within_one_percent_of_float32():
    ids = torch.randint(4, 61, (4, 64), device="cuda")
    reference = _model(torch.float32, "fft").cuda()(ids).last_hidden_state.double()
    got = _model(torch.bfloat16, "auto").cuda()(ids).last_hidden_state
    assert _rel(got, reference) < 1e-2
