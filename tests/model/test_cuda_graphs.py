"""CUDA graphs for fixed-shape inference: replays equal the eager model (CUDA only; skips without a GPU)."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config_kwargs
from fnet import FNetConfig, FNetModel
from fnet.cuda_graphs import CUDAGraphRunner


def _model() -> FNetModel:
    torch.manual_seed(0)
    return FNetModel(FNetConfig(**tiny_config_kwargs(hidden_size=32, intermediate_size=64))).eval()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_without_cuda_the_runner_refuses_with_one_clear_line():
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        CUDAGraphRunner(_model())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_replays_equal_eager_for_each_shape_and_fresh_values(dtype):
    model = _model().cuda().to(dtype)
    runner = CUDAGraphRunner(model, max_graphs=2)
    for shape in [(4, 16), (2, 40), (4, 16), (3, 8)]:  # the third is a replay, the fourth runs eagerly
        for _ in range(2):  # fresh values each time: the replay must not return the captured ones
            ids = torch.randint(4, 61, shape, device="cuda")
            mask = torch.ones(shape, dtype=torch.long, device="cuda")
            mask[0, shape[1] // 2:] = 0
            got = runner(input_ids=ids, attention_mask=mask)
            with torch.no_grad():
                want = model(input_ids=ids, attention_mask=mask)
            torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=2e-2, rtol=2e-2)
            torch.testing.assert_close(got.pooler_output, want.pooler_output, atol=2e-2, rtol=2e-2)
    assert len(runner.graphs) == 2
    with pytest.raises(ValueError, match="model.eval"):
        CUDAGraphRunner(model.train())
