"""CUDA graphs for fixed-shape inference: one captured forward per input shape, replayed.

A forward pass of a small encoder launches hundreds of kernels; at short lengths the GPU finishes
them faster than Python issues them. A CUDA graph records the launches once and replays them with
one call. Length buckets (``fnet.inference.LengthBuckets``) make shapes repeat, so a handful of
graphs serve a whole inference job::

    runner = fnet.cuda_graphs.CUDAGraphRunner(model.cuda().eval().to(torch.bfloat16))
    out = runner(input_ids=ids, attention_mask=mask)   # same output type as model(...)

The first call for a shape runs the model eagerly (warm-up, with the model's own input checks) and
captures it; later calls with that shape copy the inputs into the graph's static buffers, replay,
and return clones of the static outputs (``clone_outputs=False`` returns the buffers themselves,
overwritten by the next replay). At most ``max_graphs`` shapes are captured; others run eagerly.
The model is not changed. Replays do not run the model's input checks (ids in range, mask values):
the first call of each shape does, later calls trust their inputs, as any CUDA graph must. During
capture no check reads tensor values (``fourier.is_tracing``), so a given ``attention_mask`` always
takes the masked form (exact for any mask, also one without pads).

With ``torch.compile`` the same job is ``torch.compile(model, mode="reduce-overhead")``; this runner
needs no compiler and no warm-up compile per shape.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import torch
from torch import nn

from fnet.data.prefetch import map_tensors

__all__ = ["CUDAGraphRunner"]

_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


class _Graph:
    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: dict[str, torch.Tensor], output: Any):
        self.graph, self.inputs, self.output = graph, inputs, output


class CUDAGraphRunner:
    """Replays one captured forward of ``model`` per input shape. ``model`` must be on a CUDA device and in
    eval mode; call the runner with keyword tensors (the model's inputs) of any shape."""

    def __init__(self, model: nn.Module, max_graphs: int = 16, clone_outputs: bool = True, warmup: int = 2):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDAGraphRunner needs a CUDA GPU; run the model itself on this machine")
        device = next(model.parameters()).device
        if device.type != "cuda":
            raise ValueError(f"CUDAGraphRunner needs the model on a CUDA device, it is on {device}; call model.cuda()")
        if model.training:
            raise ValueError("CUDAGraphRunner replays inference forwards: call model.eval() first")
        self.model, self.device = model, device
        self.max_graphs, self.clone_outputs, self.warmup = max_graphs, clone_outputs, warmup
        self.graphs: dict[tuple, _Graph] = {}

    def _key(self, inputs: dict[str, torch.Tensor]) -> tuple:
        return tuple((name, tuple(t.shape), t.dtype) for name, t in sorted(inputs.items()))

    def _capture(self, inputs: dict[str, torch.Tensor]) -> _Graph:
        static = {name: t.to(self.device).clone() for name, t in inputs.items()}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.no_grad():  # warm-up: allocator, cuBLAS handles, DFT caches, checks
            for _ in range(self.warmup):
                self.model(**static)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            output = self.model(**static)
        return _Graph(graph, static, output)

    def __call__(self, **inputs: torch.Tensor | None) -> Any:
        inputs = {name: t for name, t in inputs.items() if t is not None}
        unknown = sorted(set(inputs) - set(_INPUTS))
        if unknown:
            raise TypeError(f"CUDAGraphRunner takes tensors {list(_INPUTS)}, got {unknown}")
        key = self._key(inputs)
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= self.max_graphs:
                with torch.no_grad():
                    return self.model(**inputs)
            entry = self.graphs[key] = self._capture(inputs)
            # the captured run computed the inputs given at capture; replay below is for this call's values
        for name, tensor in inputs.items():
            entry.inputs[name].copy_(tensor, non_blocking=True)
        entry.graph.replay()
        return _clone(entry.output) if self.clone_outputs else entry.output


def _clone(output: Any) -> Any:
    """A copy of a model output (dataclass, tuple or tensor) whose tensors the next replay cannot overwrite."""
    if is_dataclass(output):
        return type(output)(**{f.name: map_tensors(getattr(output, f.name), torch.clone) for f in fields(output)})
    return map_tensors(output, torch.clone)
