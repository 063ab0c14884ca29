"""``fnet export``: write a saved model as ONNX (dynamic batch and sequence length).

``fnet export --model DIR --format onnx --output FILE [--task auto] [--opset N] [--quantize int8] [--no-check]``.
The mixing is exported in its DFT-matrix form (plain MatMul/Cos/Sin built from the runtime length);
see fnet/export.py. ``--quantize int8`` writes int8 weights for the encoder's Linear layers
(onnxruntime's dynamic quantization; the Fourier mixing, pooler and heads stay float32). Unless
``--no-check``, the file is run in onnxruntime (when installed) against PyTorch float32 at two batch
sizes and lengths before it is written, and the largest difference is printed: it must stay within
1e-4 for a float32 file, and within 10% of the largest output for an int8 one (otherwise nothing is
written and the command exits 2 with advice) (int8 files measured 1-3% off, a trained
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


def _require(modules: tuple[str, ...], why: str) -> None:
    """One line naming the missing packages and the install, before any work."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"{why} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                         f"installed: `pip install 'fnet[export]'` (onnx, onnxscript, onnxruntime)")


def run(args: argparse.Namespace) -> int:
    from fnet import run_folder
    from fnet.apps.export import ExportConfig
    from fnet.cli import config_from
    from fnet.export import DEFAULT_OPSET, export_onnx, load_for_export

    config = config_from(args, ExportConfig)
    config.validate()
    run_folder.check_output_path(config.output, want="file")
    if Path(config.output).exists() and not config.overwrite:
        raise run_folder.OutputError(f"--output {config.output} already exists; choose another --output, or pass "
                                     "--overwrite to replace it")
    run_folder.check_disjoint(config.output, {"--model": config.model})
    _require(("onnx", "onnxscript"), "fnet export")
    if config.quantize:
        _require(("onnxruntime",), "--quantize")
    if config.check:
        _require(("onnxruntime",), "the check of the exported file (--no-check skips it)")
    model, task = load_for_export(config.model, config.task)
    with run_folder.claim_file(config.output, overwrite=config.overwrite, inputs={"--model": config.model}) as tmp:
        info = export_onnx(model, tmp, task, opset=config.opset or DEFAULT_OPSET, quantize=config.quantize)
        if config.check:  # a file that fails its check is never left at --output
            _check(model, tmp, task, info)
    info["path"] = config.output
    print(f"wrote {info['path']} (task {task}, opset {info['opset']}, inputs {', '.join(info['inputs'])}; "
          f"outputs {', '.join(info['outputs'])}; batch and sequence dynamic, up to {info['max_sequence_length']} tokens)")
    if info["quantize"]:
        print(f"{info['quantize']}: {len(info['int8_layers'])} encoder Linear layers; the Fourier mixing, pooler "
              "and heads stay float32")
    if "check" in info:
        print(info["check"])
    return 0


def _check(model, path: Path, task: str, info: dict) -> None:
    """Run the file in onnxruntime against PyTorch float32; raise (exit 2, nothing written) past the bound."""
    import math

    from fnet.export import check_onnx

    longest = info["max_sequence_length"]
    shapes = [(1, min(7, longest)), (3, min(33, longest))]
    int8 = info["quantize"] is not None
    worst = check_onnx(model, path, task, shapes, relative=int8)
    measure = "max abs difference over the largest output" if int8 else "max abs difference"
    bound = INT8_TOLERANCE if int8 else FLOAT32_TOLERANCE
    if not (math.isfinite(worst) and worst <= bound):
        advice = ("export without --quantize (float32), or pass --no-check to keep an int8 file this far off"
                  if int8 else "pass --no-check to keep the file anyway, and report it")
        raise ValueError(f"the exported file differs from PyTorch float32 by {worst:.3g} ({measure}, bound {bound:g}) "
                         f"at (batch, seq) {shapes}; nothing was written: {advice}")
    info["check"] = f"onnxruntime vs PyTorch float32 at (batch, seq) {shapes}, last example padded: {measure} {worst:.2e}"
