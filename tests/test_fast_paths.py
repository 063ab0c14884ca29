"""Every fast path of the Fourier sublayer equals the reference (issue 7).

The oracles are independent of fnet: ``torch.fft.fftn(x, dim=(1, 2)).real`` for the transform and
``transformers.FNetModel`` (weights copied) for the whole encoder. Float32 results must match to
1e-5 relative to the output's scale (an FFT of n*d terms carries float32 rounding of that size).
"""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config_kwargs
from fnet.config import FNetConfig
from fnet.fourier import fft_fourier_transform, fourier_residual, fourier_transform
from fnet.modeling import FNetModel

# (n, d): even/even, odd/odd, prime/prime, prime/even, length 1 and 2, d = 1 and 2
SHAPES = [(8, 6), (9, 7), (13, 11), (31, 16), (1, 5), (2, 3), (17, 1), (4, 2), (100, 24)]


def _reference(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftn(x, dim=(1, 2)).real


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str, rel: float = 1e-5) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    if expected.numel() == 0:
        return
    scale = max(float(expected.abs().max()), 1.0)
    err = (actual.double() - expected.double()).abs()
    worst = int(err.argmax())
    assert float(err.max()) <= rel * scale, (
        f"{what}: max abs error {float(err.max()):.3g} > {rel:g} x scale {scale:.3g} "
        f"at flat index {worst} (got {float(actual.flatten()[worst]):.6g}, expected {float(expected.flatten()[worst]):.6g})"
    )


@pytest.mark.parametrize("n,d", SHAPES)
def test_fused_transform_and_residual_equal_fftn(n, d):
    x = torch.randn(3, n, d)
    _assert_close(fft_fourier_transform(x), _reference(x), f"Re(F x) at (n={n}, d={d})")
    _assert_close(fourier_residual(x), x + _reference(x), f"x + Re(F x) at (n={n}, d={d})")
    _assert_close(fourier_residual(x, method="dft"), x + _reference(x), f"DFT x + Re(F x) at (n={n}, d={d})")


@pytest.mark.parametrize("method", ["fft", "dft"])
@pytest.mark.parametrize("n,d", [(9, 7), (12, 8), (13, 11)])
def test_with_padding_mask_each_example_equals_fftn_of_its_own_tokens(method, n, d):
    x = torch.randn(4, n, d)
    lengths = [n, n - 1, 1, n // 2 + 1]
    mask = torch.zeros(4, n, dtype=torch.long)
    for i, length in enumerate(lengths):
        mask[i, :length] = 1
    out = fourier_residual(x, mask, method=method)
    for i, length in enumerate(lengths):
        own = x[i : i + 1, :length]
        _assert_close(out[i : i + 1, :length], own + _reference(own), f"{method} example {i} (length {length})")
        _assert_close(out[i, length:], x[i, length:], f"{method} pads of example {i} keep the residual only")


def test_gradient_of_fused_kernel_equals_autograd_through_fftn():
    x = torch.randn(1, 7, 5, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: fourier_residual(t), (x,))
    torch.autograd.gradcheck(lambda t: fft_fourier_transform(t), (x,))
    g = torch.randn(1, 7, 5, dtype=torch.float64)
    (fast,) = torch.autograd.grad(fourier_residual(x), x, g)
    (ref,) = torch.autograd.grad(x + _reference(x), x, g)
    _assert_close(fast, ref, "gradient of x + Re(F x)")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_under_cpu_autocast_and_half_inputs_the_transform_returns_the_input_dtype(dtype):
    x = torch.randn(2, 7, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fourier_residual(x).dtype == torch.float32
        assert fourier_transform(x).dtype == torch.float32
    low = x.to(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fourier_residual(low)
    assert out.dtype == dtype
    # computed in float32 and rounded once: within the low precision's rounding of the output
    _assert_close(out.float(), low.float() + _reference(low.float()), f"{dtype} residual", rel=1e-2)


# ----------------------------------------------------------------------------- whole encoder


def _pair(**overrides) -> tuple[FNetModel, "transformers.FNetModel"]:  # noqa: F821
    transformers = pytest.importorskip("transformers")
    kwargs = tiny_config_kwargs(**overrides)
    ours = FNetModel(FNetConfig(**kwargs)).eval()
    theirs = transformers.FNetModel(transformers.FNetConfig(**kwargs)).eval()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing), (missing, unexpected)
    return ours, theirs


@pytest.mark.parametrize("length", [1, 7, 16, 31, 50])
@pytest.mark.parametrize("hidden", [24, 27])
def test_encoder_equals_transformers_fnet(length, hidden):
    ours, theirs = _pair(hidden_size=hidden, intermediate_size=2 * hidden + 1, num_hidden_layers=3)
    ids = torch.randint(0, 61, (3, length))
    types = torch.randint(0, 4, (3, length))
    with torch.inference_mode():
        a = ours(ids, token_type_ids=types)
        b = theirs(ids, token_type_ids=types)
    _assert_close(a.last_hidden_state, b.last_hidden_state, f"last_hidden_state (n={length}, d={hidden})")
    _assert_close(a.pooler_output, b.pooler_output, f"pooler_output (n={length}, d={hidden})")


def test_training_gradients_equal_transformers_fnet():
    ours, theirs = _pair(num_hidden_layers=2)
    ids = torch.randint(0, 61, (2, 13))
    ours(ids).last_hidden_state.square().sum().backward()
    theirs(ids).last_hidden_state.square().sum().backward()
    theirs_grads = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        if param.grad is None:  # the pooler is not in this loss
            assert theirs_grads[name].grad is None, name
            continue
        _assert_close(param.grad, theirs_grads[name].grad, f"gradient of {name}", rel=1e-4)


def test_encoder_with_padding_mask_equals_transformers_on_the_unpadded_example():
    ours, theirs = _pair(num_hidden_layers=2)
    ids = torch.randint(5, 61, (2, 19))
    mask = torch.ones(2, 19, dtype=torch.long)
    mask[1, 11:] = 0
    with torch.inference_mode():
        padded = ours(ids, attention_mask=mask).last_hidden_state
        alone = theirs(ids[1:, :11]).last_hidden_state
        full = theirs(ids[:1]).last_hidden_state
    _assert_close(padded[1:, :11], alone, "padded example vs the same example alone")
    _assert_close(padded[:1], full, "unpadded example")


@pytest.mark.parametrize("length", [7, 100, 511])
def test_model_under_cpu_bf16_autocast_runs_and_tracks_float32(length):
    model = FNetModel(FNetConfig(**tiny_config_kwargs(max_position_embeddings=512))).eval()
    ids = torch.randint(0, 61, (2, length))
    with torch.inference_mode():
        ref = model(ids).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(ids).last_hidden_state
    assert torch.isfinite(out).all()
    err = float((out.float() - ref).abs().max())
    assert err < 0.2, f"bf16 autocast drifts from float32 by {err:.3g} at length {length}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("length", [7, 100, 511])
def test_half_precision_models_run_at_any_length(dtype, length):
    model = FNetModel(FNetConfig(**tiny_config_kwargs(max_position_embeddings=512))).eval()
    ids = torch.randint(0, 61, (2, length))
    with torch.inference_mode():
        ref = model(ids).last_hidden_state
        out = model.to(dtype)(ids).last_hidden_state
    assert out.dtype == dtype
    assert torch.isfinite(out).all(), f"non-finite outputs in {dtype} at length {length}"
    err = float((out.float() - ref).abs().max())
    assert err < 0.25, f"{dtype} model drifts from float32 by {err:.3g} at length {length}"


@pytest.mark.parametrize("hidden_act", ["gelu_new", "gelu"])
def test_inference_fast_path_equals_the_autograd_path(hidden_act):
    # under inference_mode the feed-forward runs oneDNN's fused matmul + GELU / + residual kernels
    model = FNetModel(FNetConfig(**tiny_config_kwargs(hidden_act=hidden_act, num_hidden_layers=3))).eval()
    ids = torch.randint(0, 61, (3, 29))
    with torch.inference_mode():
        fast = model(ids).last_hidden_state
    slow = model(ids).last_hidden_state.detach()  # grad enabled: the plain PyTorch ops
    _assert_close(fast, slow, f"inference fast path vs autograd path ({hidden_act})")


# ----------------------------------------------------------------------------- allocator (runtime.py)


def test_hugetlb_tunable_is_added_once():
    from fnet.runtime import with_hugetlb

    assert with_hugetlb("") == "glibc.malloc.hugetlb=1"
    assert with_hugetlb("glibc.malloc.arena_max=2") == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert with_hugetlb("glibc.malloc.hugetlb=0:a=1") == "a=1:glibc.malloc.hugetlb=1"


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc settings are Linux-only")
def test_entry_point_reexecs_once_with_the_tunable_and_library_calls_never_do():
    import os
    import subprocess
    import sys

    code = ("from fnet.runtime import configure_allocator; "
            "print(configure_allocator(reexec_argv=['fnet', '--version']))")
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "FNET_ALLOCATOR_REEXEC", "FNET_ALLOCATOR")}
    run = lambda extra: subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True,
                                       text=True, timeout=120)
    reexec = run({})
    assert reexec.returncode == 0 and reexec.stdout.startswith("fnet "), reexec.stdout + reexec.stderr  # the CLI ran
    marked = run({"FNET_ALLOCATOR_REEXEC": "1"})  # already re-executed: configure in place, no loop
    assert "'allocator': 'glibc-mallopt'" in marked.stdout and "'hugetlb': False" in marked.stdout, marked.stdout
    tuned = run({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})
    assert "'hugetlb': True" in tuned.stdout, tuned.stdout
    # the re-executed process hides fnet's tunable again from its children
    code = ("import os; from fnet.runtime import configure_allocator; "
            "print(configure_allocator(reexec_argv=['fnet']), os.environ.get('GLIBC_TUNABLES'))")
    after = run({"GLIBC_TUNABLES": "a=1:glibc.malloc.hugetlb=1", "FNET_ALLOCATOR_REEXEC": "1",
                 "FNET_ALLOCATOR_ORIGINAL_TUNABLES": "a=1"})
    assert "'hugetlb': True" in after.stdout and after.stdout.strip().endswith("a=1"), after.stdout
    off = run({"FNET_ALLOCATOR": "default"})
    assert "'allocator': 'default'" in off.stdout, off.stdout
