"""The options of `fnet export` (:mod:`fnet.export` writes the ONNX file; the command checks it)."""

from __future__ import annotations

from dataclasses import dataclass

from fnet.harness import QUANTIZE_CHOICES
from fnet.options import option, require

__all__ = ["ExportConfig"]


@dataclass
class ExportConfig:
    """`fnet export`: a saved model as ONNX with dynamic batch size and sequence length."""

    model: str | None = option(None, "model directory (config.json + weights) (required)", metavar="DIR")
    format: str = option("onnx", "output format", choices=("onnx",))
    output: str | None = option(None, "file to write, e.g. model.onnx (required)", metavar="FILE")
    task: str = option("auto", "which head to export: auto reads `architectures` from config.json; or "
                               "feature-extraction, masked-lm, or a task family's head (fnet.export.TASKS)")
    opset: int | None = option(None, "ONNX opset version, 18 to 23 (default: fnet.export.DEFAULT_OPSET, 18)",
                               metavar="N")
    quantize: str | None = option(None, "int8: int8 weights for the encoder's Linear layers (onnxruntime dynamic "
                                        "quantization; the Fourier mixing, pooler and heads stay float32)",
                                  choices=QUANTIZE_CHOICES)
    overwrite: bool = option(False, "replace --output if it exists")
    check: bool = option(True, "run the exported file in onnxruntime against PyTorch (--no-check: skip)")

    def validate(self) -> None:
        require(self, "model", "output")
