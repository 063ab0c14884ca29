"""ONNX export (issue 7): onnxruntime runs the exported file with outputs equal to PyTorch's.

One export per head, then onnxruntime at two batch sizes and three lengths (none of them the
export's example length, 16), with a right-padded example in each batch, compared to <= 1e-4.
"""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config_kwargs
from fnet.config import FNetConfig
from fnet.export import check_onnx, export_onnx, load_for_export, resolve_task
from fnet.modeling import FNetForSequenceClassification, FNetModel

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
pytest.importorskip("onnxscript", reason="torch's ONNX exporter needs onnxscript (pip install onnxscript)")

SHAPES = [(b, n) for b in (1, 3) for n in (5, 23, 64)]  # 64 = max_position_embeddings of the tiny config


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    for cls in (FNetModel, FNetForSequenceClassification):
        cls(FNetConfig(**tiny_config_kwargs(num_labels=3))).save_pretrained(root / cls.__name__)
    return root


def test_base_model_exports_and_matches_pytorch_at_dynamic_shapes(saved, tmp_path):
    model, task = load_for_export(saved / "FNetModel")
    assert task == "feature-extraction"
    info = export_onnx(model, tmp_path / "model.onnx", task)
    assert info["outputs"] == ["last_hidden_state", "pooler_output"]
    # the PyTorch side is the model as users load it (FFT mixing), so the check covers DFT == FFT too
    eager = FNetModel.from_pretrained(saved / "FNetModel").eval()
    worst = check_onnx(eager, tmp_path / "model.onnx", task, SHAPES)
    assert worst <= 1e-4, f"onnxruntime differs from PyTorch by {worst:.3g}"
    worst_unpadded = check_onnx(eager, tmp_path / "model.onnx", task, SHAPES[:2], pad=False)
    assert worst_unpadded <= 1e-4, f"onnxruntime differs from PyTorch by {worst_unpadded:.3g} without padding"


def test_cli_exports_the_classifier_and_checks_it(saved, tmp_path, capsys):
    from fnet.cli.main import main

    out = tmp_path / "cls.onnx"
    assert resolve_task(saved / "FNetForSequenceClassification") == "sequence-classification"
    code = main(["export", "--model", str(saved / "FNetForSequenceClassification"), "--format", "onnx",
                 "--output", str(out), "--opset", "18"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "task sequence-classification" in printed and "max abs difference" in printed
    eager = FNetForSequenceClassification.from_pretrained(saved / "FNetForSequenceClassification").eval()
    worst = check_onnx(eager, out, "sequence-classification", SHAPES)
    assert worst <= 1e-4, f"onnxruntime logits differ from PyTorch by {worst:.3g}"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "token_type_ids", "attention_mask"]
    assert session.get_outputs()[0].shape[-1] == 3


def test_export_errors_are_clear(saved, tmp_path):
    with pytest.raises(ValueError, match="unknown --task 'translation'"):
        resolve_task(saved / "FNetModel", "translation")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_task(tmp_path)
    fft_model = FNetModel.from_pretrained(saved / "FNetModel")
    with pytest.raises(ValueError, match="fourier_transform='dft'"):
        export_onnx(fft_model, tmp_path / "x.onnx")
    dft_model, task = load_for_export(saved / "FNetModel")
    with pytest.raises(ValueError, match="opset 11 is outside the range fnet exports, 18..23"):
        export_onnx(dft_model, tmp_path / "x.onnx", task, opset=11)
