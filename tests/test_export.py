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


def test_a_layer_scaled_model_exports_with_its_gains(tmp_path):
    """LayerScale (fnet-only, the distilled students') is part of the exported graph, not dropped."""
    torch.manual_seed(0)
    model = FNetModel(FNetConfig(**tiny_config_kwargs(mixing_layer_scale=0.5)))
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.fourier.layer_scale.uniform_(0.1, 2.0)
    model.save_pretrained(tmp_path / "scaled")
    loaded, task = load_for_export(tmp_path / "scaled")
    export_onnx(loaded, tmp_path / "model.onnx", task)
    eager = FNetModel.from_pretrained(tmp_path / "scaled").eval()
    assert check_onnx(eager, tmp_path / "model.onnx", task, SHAPES[:3]) <= 1e-4
    ungained = FNetModel(FNetConfig(**tiny_config_kwargs())).eval()
    ungained.load_state_dict({k: v for k, v in eager.state_dict().items() if "layer_scale" not in k})
    assert check_onnx(ungained, tmp_path / "model.onnx", task, SHAPES[:1]) > 1e-2  # the gains change the output


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


def test_int8_export_runs_in_onnxruntime_close_to_float32(saved, tmp_path):
    """int8 weights in exactly the layers fnet.quantize converts; the DFT MatMuls of the Fourier mixing
    stay float32. Tolerance: at real tokens, every hidden-state vector within cosine 0.999 of PyTorch
    float32, and the largest error at most 1.5x that of PyTorch's own int8 model (fnet.quantize) on the
    same inputs: the file must be as faithful as the int8 fnet already ships (measured: cosine 0.9997,
    error 0.9x PyTorch int8's)."""
    import copy

    import numpy as np
    import onnx

    import fnet
    from fnet.optimize import int8_linear_names

    model, task = load_for_export(saved / "FNetModel")
    path = tmp_path / "int8.onnx"
    info = export_onnx(model, path, task, quantize="int8")
    eager = FNetModel.from_pretrained(saved / "FNetModel").eval()
    assert info["quantize"] == "int8" and info["int8_layers"] == int8_linear_names(eager)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"], "the float32 intermediate was left behind"
    graph = onnx.load(str(path))
    ops = [node.op_type for node in graph.graph.node]
    assert ops.count("MatMulInteger") == len(info["int8_layers"]) == 5  # projection + 2 layers x (d->f, f->d)
    float_matmuls = ops.count("MatMul") + ops.count("Gemm")
    assert float_matmuls == 9, f"{float_matmuls} float MatMuls: want the 4 DFT ones per layer and the pooler's"
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["fnet.quantize"] == "int8" and meta["fnet.int8_layers"].split(",") == info["int8_layers"]

    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(0, eager.config.vocab_size, (3, 40), generator=gen)
    types = torch.randint(0, eager.config.type_vocab_size, (3, 40), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 25:] = 0
    mask[2, 9:] = 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["last_hidden_state"], {"input_ids": ids.numpy(), "token_type_ids": types.numpy(),
                                              "attention_mask": mask.numpy()})[0]
    with torch.inference_mode():
        want = eager(ids, mask, types).last_hidden_state.numpy()
        torch_int8 = fnet.quantize(copy.deepcopy(eager))(ids, mask, types).last_hidden_state.numpy()
    real = mask.bool().numpy()
    a, b = got[real], want[real]
    cosine = ((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min()
    error, torch_error = np.abs(a - b).max(), np.abs(torch_int8[real] - b).max()
    assert cosine > 0.999, f"an int8 ONNX hidden state is only cosine {cosine:.5f} from float32"
    assert error <= 1.5 * torch_error, f"int8 ONNX max abs error {error:.4f} vs PyTorch int8's {torch_error:.4f}"


def test_cli_exports_int8_and_refuses_an_unknown_kind(saved, tmp_path, capsys):
    from fnet.cli.main import main

    out = tmp_path / "cls.int8.onnx"
    code = main(["export", "--model", str(saved / "FNetForSequenceClassification"), "--output", str(out),
                 "--quantize", "int8"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "int8: 5 encoder Linear layers" in printed and "over the largest output" in printed
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["fnet.quantize"] == "int8"
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(saved / "FNetModel"), "--output", str(tmp_path / "x.onnx"), "--quantize", "int4"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--quantize" in err and "'int4'" in err and "int8" in err
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ValueError, match="--quantize 'int4' is not a choice; use int8"):
        export_onnx(load_for_export(saved / "FNetModel")[0], tmp_path / "x.onnx", quantize="int4")


@pytest.mark.parametrize("worst", [0.5, float("nan")])
def test_a_file_that_fails_its_check_is_not_written_and_exits_2(saved, tmp_path, capsys, monkeypatch, worst):
    """An int8 export whose own check failed (12.7% off) printed a warning, kept the file and exited 1."""
    import fnet.export
    from fnet.cli.main import main

    monkeypatch.setattr(fnet.export, "check_onnx", lambda *args, **kwargs: worst)
    out = tmp_path / "cls.onnx"
    code = main(["export", "--model", str(saved / "FNetForSequenceClassification"), "--output", str(out),
                 "--quantize", "int8"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing was written" in err and "export without --quantize" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_a_missing_exporter_dependency_is_one_line_before_any_work(saved, tmp_path, capsys, monkeypatch):
    import importlib.util

    from fnet.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    code = main(["export", "--model", str(saved / "FNetModel"), "--output", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "onnxscript" in err and "pip install 'fnet[export]'" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_export_refuses_an_output_inside_its_model_folder(saved, tmp_path, capsys):
    from fnet.cli.main import main

    model = saved / "FNetModel"
    assert main(["export", "--model", str(model), "--output", str(model / "model.onnx")]) == 2
    assert "lies inside the --model folder" in capsys.readouterr().err
    assert not (model / "model.onnx").exists()
