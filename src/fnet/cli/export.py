"""``fnet export``: write a saved model as ONNX (dynamic batch and sequence length).

``fnet export --model DIR --format onnx --output FILE [--task auto] [--opset N] [--quantize int8] [--no-check]``.
The mixing is exported in its DFT-matrix form (plain MatMul/Cos/Sin built from the runtime length);
see fnet/export.py. ``--quantize int8`` writes int8 weights for the encoder's Linear layers
(onnxruntime's dynamic quantization; the Fourier mixing, pooler and heads stay float32). Unless
``--no-check``, the file is run in onnxruntime (when installed) against PyTorch float32 at two batch
sizes and lengths, and the largest difference is printed: it must stay within 1e-4 for a float32
file, and within 10% of the largest output for an int8 one (int8 files measured 1-3% off, a trained
4-layer AG News classifier 1.1%; PyTorch's own int8 is 2-5% off on the same small models: the bound
leaves room for other trained weights and still catches a broken graph).
"""

from __future__ import annotations

import argparse
from pathlib import Path

FLOAT32_TOLERANCE = 1e-4  # max abs difference, onnxruntime float32 vs PyTorch float32
INT8_TOLERANCE = 0.1  # max abs difference over the largest output, onnxruntime int8 vs PyTorch float32


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.apps.export import ExportConfig
    from fnet.cli import add_config_arguments

    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX",
        description="Export a saved fnet model to ONNX with dynamic batch size and sequence length.",
    )
    add_config_arguments(parser, ExportConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet import run_folder
    from fnet.apps.export import ExportConfig
    from fnet.cli import config_from
    from fnet.export import DEFAULT_OPSET, check_onnx, export_onnx, load_for_export

    config = config_from(args, ExportConfig)
    config.validate()
    run_folder.check_output_path(config.output, want="file")
    if Path(config.output).exists() and not config.overwrite:
        raise run_folder.OutputError(f"--output {config.output} already exists; choose another --output, or pass "
                                     "--overwrite to replace it")
    model, task = load_for_export(config.model, config.task)
    with run_folder.claim_file(config.output, overwrite=config.overwrite) as tmp:
        info = export_onnx(model, tmp, task, opset=config.opset or DEFAULT_OPSET, quantize=config.quantize)
    info["path"] = config.output
    print(f"wrote {info['path']} (task {task}, opset {info['opset']}, inputs {', '.join(info['inputs'])}; "
          f"outputs {', '.join(info['outputs'])}; batch and sequence dynamic, up to {info['max_sequence_length']} tokens)")
    if info["quantize"]:
        print(f"{info['quantize']}: {len(info['int8_layers'])} encoder Linear layers; the Fourier mixing, pooler "
              "and heads stay float32")
    if not config.check:
        return 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime is not installed: skipped the check (pip install onnxruntime)")
        return 0
    longest = info["max_sequence_length"]
    shapes = [(1, min(7, longest)), (3, min(33, longest))]
    int8 = info["quantize"] is not None
    worst = check_onnx(model, config.output, task, shapes, relative=int8)
    measure = "max abs difference over the largest output" if int8 else "max abs difference"
    print(f"onnxruntime vs PyTorch float32 at (batch, seq) {shapes}, last example padded: {measure} {worst:.2e}")
    bound = INT8_TOLERANCE if int8 else FLOAT32_TOLERANCE
    if worst > bound:
        print(f"warning: the difference exceeds {bound:g}")
        return 1
    return 0
