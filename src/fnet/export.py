"""Export FNet models to ONNX, with dynamic batch size and sequence length.

The FFT has no ONNX operator that every runtime implements, so the exported graph uses the
DFT-matrix form of the mixing, ``Re(F_n x F_d) = C_n x C_d - S_n x S_d`` (fourier.py): the sequence
matrices are built inside the graph from the runtime length (arange, integer product mod n, cos,
sin) and applied with plain MatMuls, so one file serves every batch size and length up to
``min(max_position_embeddings, dft_max_length)``. With ``attention_mask`` each example is mixed over
its own tokens (a per-example masked DFT matrix), so padded batches give exact per-example outputs.

Graph inputs: ``input_ids``, ``token_type_ids``, ``attention_mask`` (all int64, (batch, seq)).
Outputs by task: ``last_hidden_state`` (b, n, d) and ``pooler_output`` (b, d) for the base model,
``logits`` for the heads (``start_logits``/``end_logits`` for question answering).

``quantize="int8"`` (``fnet export --quantize int8``) writes the float32 graph, then onnxruntime's
dynamic quantization of exactly the layers ``fnet.quantize`` converts in PyTorch
(:func:`fnet.optimize.int8_linear_names`: the encoder's Linear layers and the embedding projection),
found through the module path the exporter records on every node. The DFT matrices of the Fourier
mixing are constants of the graph too, and onnxruntime would quantize their MatMuls as well if
asked for every MatMul; they stay float32 (as do the pooler and the heads), which is both more
accurate and what PyTorch's int8 does. Weights are int8 with one scale per tensor and 7-bit range
(``reduce_range``): on x86 CPUs without VNNI, onnxruntime's u8 x s8 kernels can saturate 16-bit
sums with full-range weights, and the file may run on any CPU. The file's metadata records
``fnet.quantize`` and the layers converted.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from fnet.config import CONFIG_NAME
from fnet.runtime import log_level

logger = logging.getLogger(__name__)


class ExportTarget(NamedTuple):
    """What ``fnet export --task NAME`` writes."""

    model_class_name: str  # the fnet.modeling class loaded
    outputs: tuple[str, ...]  # output fields, in graph order
    untrained_ok: tuple[str, ...] = ()  # key fragments that may be missing from a checkpoint (with a warning)


ENCODER = "feature-extraction"  # what a checkpoint without an exportable head is exported as
AUTO = ("auto", None)  # --task values meaning "from config.json's architectures"


def _export_tasks() -> dict[str, ExportTarget]:
    """The encoder, each task family's head (from the registry, fnet.tasks), and the MLM head."""
    from fnet.tasks import FAMILIES

    tasks = {ENCODER: ExportTarget("FNetModel", ("last_hidden_state", "pooler_output"), untrained_ok=(".pooler.",))}
    for family in FAMILIES.values():
        if family.export is not None:
            tasks[family.export.name] = ExportTarget(family.model_class_name, family.export.outputs)
    tasks["masked-lm"] = ExportTarget("FNetForMaskedLM", ("logits",))
    return tasks


# task name -> what is exported
TASKS: dict[str, ExportTarget] = _export_tasks()
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 18, 23  # torch's exporter writes 18 and converts upwards


def resolve_task(model_dir: str | os.PathLike, task: str | None = "auto") -> str:
    """The export task: given explicitly, or read from ``architectures`` in the model's config.json."""
    if task in TASKS:
        return task
    if task not in AUTO:
        raise ValueError(f"unknown --task {task!r}; use auto or one of {', '.join(TASKS)}")
    path = Path(model_dir) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {model_dir}: not a saved model directory")
    architectures = json.loads(path.read_text(encoding="utf-8")).get("architectures") or ["FNetModel"]
    for name, target in TASKS.items():
        if architectures[0] == target.model_class_name:
            return name
    # pretraining / NSP / multiple-choice checkpoints: export their encoder
    return ENCODER


class _OnnxWrapper(nn.Module):
    """Positional inputs -> a tuple of output tensors, as the exporter wants them."""

    def __init__(self, model: nn.Module, outputs: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.outputs = outputs

    def forward(self, input_ids, token_type_ids, attention_mask):
        out = self.model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask,
                         return_dict=True)
        return tuple(getattr(out, name) for name in self.outputs)


def load_for_export(model_dir: str | os.PathLike, task: str | None = "auto") -> tuple[nn.Module, str]:
    """Load the model of ``task`` from ``model_dir`` (a folder or a Hub id) with the DFT-matrix mixing, in
    eval mode, float32."""
    import fnet.modeling as modeling
    from fnet.hub import resolve

    model_dir = resolve(model_dir, flag="--model")
    task = resolve_task(model_dir, task)
    target = TASKS[task]
    cls = getattr(modeling, target.model_class_name)
    with log_level("fnet", logging.ERROR):  # missing heads are reported below, as one error
        model, info = cls.from_pretrained(model_dir, fourier_transform="dft", output_loading_info=True, strict=True)
    missing = sorted(info["missing_keys"])
    untrained = [k for k in missing if not any(part in f".{k}" for part in target.untrained_ok)]
    if untrained:
        raise ValueError(f"--task {task}: {model_dir} has no trained {task} head (its config.json names "
                         f"{_architecture(model_dir)}; missing {', '.join(untrained[:3])}"
                         f"{', ...' if len(untrained) > 3 else ''}), so the export would hold random weights; "
                         f"use --task auto, or {ENCODER} for the encoder")
    if missing:
        logger.warning("%s lacks %s: those outputs of the export are untrained", model_dir, ", ".join(missing[:3]))
    return model.float().eval(), task


def _architecture(model_dir: str | os.PathLike) -> str:
    try:
        return (json.loads((Path(model_dir) / CONFIG_NAME).read_text(encoding="utf-8")).get("architectures")
                or ["FNetModel"])[0]
    except (OSError, ValueError):
        return "an unknown architecture"


def export_onnx(
    model: nn.Module,
    output: str | os.PathLike,
    task: str = ENCODER,
    opset: int = DEFAULT_OPSET,
    example_length: int = 16,
    example_batch: int = 2,
    quantize: str | None = None,
) -> dict[str, Any]:
    """Write ``model`` (an fnet model using ``fourier_transform="dft"``) as ONNX with dynamic axes.

    The example inputs only fix dtypes and ranks: batch and sequence are symbolic
    (``torch.export.Dim``), from 1 to ``min(max_position_embeddings, dft_max_length)`` tokens.
    ``quantize="int8"``: int8 encoder Linear layers through onnxruntime (module docstring).
    Returns a summary (path, task, opset, input/output names, longest sequence, quantization).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if quantize is not None:
        from fnet.optimize import QUANTIZE_CHOICES

        if quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"--quantize {quantize!r} is not a choice; use {' or '.join(QUANTIZE_CHOICES)}")
        try:
            import onnxruntime.quantization  # noqa: F401
        except ImportError:
            raise ValueError(f"--quantize {quantize} quantizes through onnxruntime, which is not installed "
                             "(pip install onnxruntime)") from None
        return _export_int8(model, Path(output), task, opset, example_length, example_batch)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is outside the range fnet exports, {MIN_OPSET}..{MAX_OPSET} "
                         f"(torch's exporter writes opset {MIN_OPSET} natively)")
    config = model.config
    if not config.uses_dft:
        raise ValueError("export needs the DFT-matrix mixing: load the model with fourier_transform='dft' "
                         "(fnet.export.load_for_export does)")
    outputs = TASKS[task].outputs
    wrapper = _OnnxWrapper(model, outputs).eval()
    max_length = min(config.max_position_embeddings, config.dft_max_length)
    example_length = max(2, min(example_length, max_length - 1))
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (example_batch, example_length), generator=gen)
    types = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("sequence", min=1, max=max_length)
    dynamic = {name: {0: batch, 1: seq} for name in INPUT_NAMES}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and axis-naming chatter
        program = torch.onnx.export(
            wrapper, (ids, types, mask), None, input_names=list(INPUT_NAMES), output_names=list(outputs),
            dynamic_shapes=dynamic, opset_version=opset, dynamo=True, external_data=False, verbose=False,
        )
    program.save(str(output), external_data=False)
    return {"path": str(output), "task": task, "opset": opset, "inputs": list(INPUT_NAMES),
            "outputs": list(outputs), "max_sequence_length": max_length, "quantize": None}


WRAPPED = "model"  # the attribute of _OnnxWrapper holding the model: the first part of every node's module path
NAME_SCOPES = "pkg.torch.onnx.name_scopes"  # node metadata: the module path of the PyTorch call it came from


def _export_int8(model: nn.Module, output: Path, task: str, opset: int, example_length: int,
                 example_batch: int) -> dict[str, Any]:
    """The float32 export into a temporary folder beside ``output``, then its int8 version to ``output``."""
    import shutil

    from fnet.io import temporary_dir_beside

    work = temporary_dir_beside(output, tag="export")
    try:
        info = export_onnx(model, work / "float32.onnx", task, opset, example_length, example_batch)
        layers = quantize_onnx(model, work / "float32.onnx", output, work=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {**info, "path": str(output), "quantize": "int8", "int8_layers": layers}


def quantize_onnx(model: nn.Module, source: str | os.PathLike, target: str | os.PathLike,
                  work: str | os.PathLike | None = None) -> list[str]:
    """Write ``target``: the float32 ONNX file ``source`` (exported from ``model``) with int8 weights in
    the layers of :func:`fnet.optimize.int8_linear_names`, and the rest float32. Returns those layers.

    ``work``: a folder for onnxruntime's intermediate file (default: a temporary one beside ``target``).
    """
    import ast
    import shutil

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from fnet.io import atomic_write_bytes, temporary_dir_beside
    from fnet.optimize import int8_linear_names

    layers = int8_linear_names(model)
    wanted = {f"{WRAPPED}.{name}": name for name in layers}
    graph = onnx.load(str(source))
    nodes, found = [], set()
    for node in graph.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == NAME_SCOPES), None)
        hit = wanted.keys() & set(ast.literal_eval(scopes)) if scopes and node.op_type in ("MatMul", "Gemm") else ()
        if hit:
            nodes.append(node.name)
            found |= hit
    if found != set(wanted):
        missing = sorted(wanted[name] for name in set(wanted) - found)
        raise RuntimeError(f"int8 export: no MatMul of {', '.join(missing[:3])} in {source} (the exporter's "
                           f"{NAME_SCOPES} node metadata is missing or changed); export without --quantize")
    scratch = Path(work) if work is not None else temporary_dir_beside(Path(target), tag="int8")
    try:
        with log_level("", logging.ERROR):  # onnxruntime's root-logger advice to pre-process the graph first
            quantize_dynamic(graph, scratch / "int8.onnx", weight_type=QuantType.QInt8, per_channel=False,
                             reduce_range=True, nodes_to_quantize=nodes)
        quantized = onnx.load(str(scratch / "int8.onnx"))
    finally:
        if work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    for key, value in (("fnet.quantize", "int8"), ("fnet.int8_layers", ",".join(layers))):
        entry = quantized.metadata_props.add()
        entry.key, entry.value = key, value
    atomic_write_bytes(target, quantized.SerializeToString())
    return layers


def _quiet_exporter():
    """Silence the exporter's registry log lines ("torchvision is not installed. Skipping ...")."""
    return log_level("torch.onnx._internal.exporter._registration", logging.ERROR)


def check_onnx(
    model: nn.Module, path: str | os.PathLike, task: str, shapes: list[tuple[int, int]], pad: bool = True,
    relative: bool = False,
) -> float:
    """Run the ONNX file in onnxruntime and PyTorch on random inputs; return the max abs difference
    (``relative``: each output's max abs difference over its largest absolute value, the measure an
    int8 file is checked by, as its error scales with the outputs).

    ``shapes`` are (batch, seq) pairs; with ``pad`` the last example of each batch is right-padded.
    """
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = TASKS[task].outputs
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for b, n in shapes:
        ids = torch.randint(0, model.config.vocab_size, (b, n), generator=gen)
        types = torch.randint(0, model.config.type_vocab_size, (b, n), generator=gen)
        mask = torch.ones(b, n, dtype=torch.long)
        if pad and n > 1:
            mask[-1, n // 2 + 1 :] = 0
        feeds = {"input_ids": ids.numpy(), "token_type_ids": types.numpy(), "attention_mask": mask.numpy()}
        got = session.run(list(outputs), feeds)
        with torch.inference_mode():
            ref = model(input_ids=ids, token_type_ids=types, attention_mask=mask, return_dict=True)
        for name, value in zip(outputs, got):
            expected = getattr(ref, name).numpy()
            if value.shape != expected.shape:
                raise AssertionError(f"{name}: onnx shape {value.shape} != torch shape {expected.shape} at {(b, n)}")
            error = float(np.abs(value - expected).max())
            worst = max(worst, error / max(float(np.abs(expected).max()), 1e-12) if relative else error)
    return worst
