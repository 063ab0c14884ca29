"""``fnet export``: write a saved model as ONNX (dynamic batch and sequence length).

``fnet export --model DIR --format onnx --output FILE [--task auto] [--opset N] [--no-check]``.
The mixing is exported in its DFT-matrix form (plain MatMul/Cos/Sin built from the runtime length);
see fnet/export.py. Unless ``--no-check``, the file is run in onnxruntime (when installed) against
PyTorch at two batch sizes and lengths, and the largest difference is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.export import DEFAULT_OPSET, TASKS

    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX",
        description="Export a saved fnet model to ONNX with dynamic batch size and sequence length.",
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="model directory (config.json + weights)")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="output format (default: onnx)")
    parser.add_argument("--output", required=True, metavar="FILE", help="file to write, e.g. model.onnx")
    parser.add_argument("--task", choices=["auto", *TASKS], default="auto",
                        help="which head to export; auto reads `architectures` from config.json (default)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, metavar="N",
                        help=f"ONNX opset version (default: {DEFAULT_OPSET})")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the exported file in onnxruntime against PyTorch")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.export import check_onnx, export_onnx, load_for_export

    from fnet import run_folder

    run_folder.check_output_path(args.output, want="file")
    if Path(args.output).exists() and not args.overwrite:
        raise run_folder.OutputError(f"--output {args.output} already exists; choose another --output, or pass "
                                     "--overwrite to replace it")
    model, task = load_for_export(args.model, args.task)
    with run_folder.claim_file(args.output, overwrite=args.overwrite) as tmp:
        info = export_onnx(model, tmp, task, opset=args.opset)
    info["path"] = args.output
    print(f"wrote {info['path']} (task {task}, opset {info['opset']}, inputs {', '.join(info['inputs'])}; "
          f"outputs {', '.join(info['outputs'])}; batch and sequence dynamic, up to {info['max_sequence_length']} tokens)")
    if args.no_check:
        return 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime is not installed: skipped the check (pip install onnxruntime)")
        return 0
    longest = info["max_sequence_length"]
    shapes = [(1, min(7, longest)), (3, min(33, longest))]
    worst = check_onnx(model, args.output, task, shapes)
    print(f"onnxruntime vs PyTorch at (batch, seq) {shapes}, last example padded: max abs difference {worst:.2e}")
    if worst > 1e-4:
        print("warning: the difference exceeds 1e-4")
        return 1
    return 0
