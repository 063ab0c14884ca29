"""FNetConfig (defaults, validation, presets, config.json io) and checkpoint io (both directions,
atomic writes, loading reports, clear errors)."""

from __future__ import annotations

import json
import os

import pytest
import torch
import transformers

import fnet
from conftest import tiny_config_kwargs
from fnet import FNetConfig
from fnet.checkpoint import read_state_dict
from fnet.io import atomic_write, atomic_write_text


def test_defaults_equal_transformers_fnet_config():
    ours, ref = FNetConfig(), transformers.FNetConfig()
    for name in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "hidden_act",
                 "hidden_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range",
                 "layer_norm_eps", "use_tpu_fourier_optimizations", "tpu_short_seq_length", "pad_token_id",
                 "bos_token_id", "eos_token_id", "tie_word_embeddings"):
        assert getattr(ours, name) == getattr(ref, name), name


def test_config_json_round_trip_and_transformers_reads_it(tmp_path):
    config = FNetConfig(hidden_size=48, num_hidden_layers=3, fourier_transform="dft", num_labels=3,
                        id2label={0: "neg", 1: "neu", 2: "pos"}, problem_type="single_label_classification")
    config.save_pretrained(tmp_path)
    again = FNetConfig.from_pretrained(tmp_path)
    assert again == config
    ref = transformers.FNetConfig.from_pretrained(tmp_path)
    assert (ref.hidden_size, ref.num_hidden_layers, ref.num_labels) == (48, 3, 3)
    assert ref.id2label[2] == "pos"


def test_config_written_by_transformers_loads(tmp_path):
    transformers.FNetConfig(hidden_size=40, num_hidden_layers=5, num_labels=4).save_pretrained(tmp_path)
    config = FNetConfig.from_pretrained(tmp_path)
    assert (config.hidden_size, config.num_hidden_layers, config.num_labels) == (40, 5, 4)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(hidden_size=0), "hidden_size must be a positive int"),
        (dict(num_hidden_layers=2.5), "num_hidden_layers must be an int"),
        (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be in \[0, 1\)"),
        (dict(hidden_act="mish"), "hidden_act='mish' is not supported; use one of"),
        (dict(fourier_transform="wavelet"), "fourier_transform='wavelet' is not valid"),
        (dict(vocab_size=3, pad_token_id=3), "pad_token_id=3 is outside the vocabulary"),
        (dict(problem_type="ranking"), "problem_type='ranking' is not valid"),
    ],
)
def test_validation_says_what_to_change(kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        FNetConfig(**kwargs)


def test_unknown_keys_fail_loudly(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "fnet", "hiden_size": 10}))
    with pytest.raises(ValueError, match=r"unknown FNetConfig field\(s\) \['hiden_size'\]"):
        FNetConfig.from_pretrained(tmp_path)
    with pytest.raises(TypeError):
        FNetConfig(hiden_size=10)


def test_presets():
    assert FNetConfig.from_preset("fnet-base") == FNetConfig()
    large = FNetConfig.from_preset("fnet-large")
    assert (large.hidden_size, large.num_hidden_layers, large.intermediate_size) == (1024, 24, 4096)
    small = FNetConfig.from_pretrained("fnet-small", vocab_size=1000)
    assert (small.hidden_size, small.num_hidden_layers, small.intermediate_size, small.vocab_size) == (256, 4, 1024, 1000)
    tiny = FNetConfig.from_preset("fnet-tiny")
    assert (tiny.hidden_size, tiny.num_hidden_layers, tiny.intermediate_size) == (128, 2, 512)
    with pytest.raises(ValueError, match="unknown preset 'fnet-huge'; choose one of"):
        FNetConfig.from_preset("fnet-huge")


def test_preset_model_from_pretrained_is_randomly_initialised():
    model, info = fnet.FNetModel.from_pretrained("fnet-tiny", vocab_size=100, output_loading_info=True)
    assert model.config.hidden_size == 128 and info["missing_keys"]


def test_config_json_corrupt_or_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a preset"):
        FNetConfig.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        FNetConfig.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- checkpoints


def _saved(tmp_path, cls=fnet.FNetForPreTraining, **kw):
    model = cls(FNetConfig(**tiny_config_kwargs(**kw))).eval()
    model.save_pretrained(tmp_path)
    return model


def test_save_writes_config_and_safetensors_without_tied_duplicates(tmp_path):
    _saved(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    keys = set(read_state_dict(tmp_path))
    assert "cls.predictions.bias" in keys
    assert "cls.predictions.decoder.weight" not in keys and "cls.predictions.decoder.bias" not in keys
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["FNetForPreTraining"]


def test_backbone_into_task_model_reports_new_head(tmp_path):
    pre = _saved(tmp_path)
    clf, info = fnet.FNetForSequenceClassification.from_pretrained(tmp_path, num_labels=3, output_loading_info=True)
    assert info["missing_keys"] == {"classifier.bias", "classifier.weight"}
    assert any(k.startswith("cls.") for k in info["unexpected_keys"])
    torch.testing.assert_close(clf.fnet.embeddings.projection.weight, pre.fnet.embeddings.projection.weight)
    # and a bare FNetModel from the same directory (prefix stripped)
    base, info = fnet.FNetModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == set()
    ids = torch.randint(0, 61, (2, 5))
    with torch.no_grad():
        torch.testing.assert_close(base(input_ids=ids).last_hidden_state, pre.fnet(input_ids=ids).last_hidden_state)


def test_task_model_loads_bare_backbone_checkpoint(tmp_path):
    base = _saved(tmp_path, fnet.FNetModel)
    clf, info = fnet.FNetForQuestionAnswering.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == {"qa_outputs.bias", "qa_outputs.weight"}
    torch.testing.assert_close(clf.fnet.pooler.dense.weight, base.pooler.dense.weight)


def test_mismatched_head_needs_opt_in(tmp_path):
    _saved(tmp_path, fnet.FNetForSequenceClassification, num_labels=2)
    with pytest.raises(ValueError, match="classifier.weight: checkpoint .*ignore_mismatched_sizes=True"):
        fnet.FNetForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = fnet.FNetForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert model.classifier.out_features == 5 and len(info["mismatched_keys"]) == 2


def test_config_that_does_not_match_weights(tmp_path):
    _saved(tmp_path, fnet.FNetModel)
    with pytest.raises(ValueError, match="config does not match the weights.*word_embeddings"):
        fnet.FNetModel.from_pretrained(tmp_path, vocab_size=99)


def test_unknown_keys_are_named(tmp_path):
    from safetensors.torch import save_file

    model = _saved(tmp_path, fnet.FNetModel)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["encoder.layer.0.attention.self.query.weight"] = torch.zeros(2, 2)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="does not know: .*attention.self.query.weight"):
        fnet.FNetModel.from_pretrained(tmp_path, strict=True)


def test_incomplete_checkpoint_is_an_error(tmp_path):
    from safetensors.torch import save_file

    model = _saved(tmp_path, fnet.FNetModel)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if "layer.1." not in k}
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="lacks .* encoder weight"):
        fnet.FNetModel.from_pretrained(tmp_path, strict=True)


def test_missing_and_corrupt_weights(tmp_path):
    _saved(tmp_path, fnet.FNetModel)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        fnet.FNetModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights in"):
        fnet.FNetModel.from_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="could not be read as a PyTorch state dict"):
        fnet.FNetModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such model folder.*neither a preset"):
        fnet.FNetModel.from_pretrained(tmp_path / "missing")


def test_pytorch_model_bin_with_position_ids_loads(tmp_path):
    torch.manual_seed(0)
    ref = transformers.FNetForMaskedLM(transformers.FNetConfig(**tiny_config_kwargs())).eval()
    ref.config.save_pretrained(tmp_path)
    state = dict(ref.state_dict())
    state["fnet.embeddings.position_ids"] = torch.arange(64)[None]  # as older checkpoints carry
    torch.save(state, tmp_path / "pytorch_model.bin")
    ours, info = fnet.FNetForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    ids = torch.randint(0, 61, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, ref(input_ids=ids).logits, atol=1e-5, rtol=0)


def test_atomic_write_leaves_old_file_when_write_fails(tmp_path):
    path = tmp_path / "config.json"
    atomic_write_text(path, "old")

    class Boom(Exception):
        pass

    def failing(handle):
        handle.write(b"partial")
        raise Boom()

    with pytest.raises(Boom):
        atomic_write(path, failing)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["config.json"], "temp files must be cleaned up"


def test_dtype_argument(tmp_path):
    _saved(tmp_path, fnet.FNetModel)
    model = fnet.FNetModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    out = model(input_ids=torch.randint(0, 61, (1, 9)))
    assert out.last_hidden_state.dtype == torch.bfloat16


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, fnet; fnet.__version__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "import fnet must not import torch"


@pytest.mark.parametrize("preset", ["fnet-base", "fnet-mini", "fnet-tiny"])
def test_default_config_round_trips_exactly(preset, tmp_path):
    config = FNetConfig.from_preset(preset, num_labels=4)
    config.save_pretrained(tmp_path)
    assert FNetConfig.from_pretrained(tmp_path) == config
    assert transformers.FNetConfig.from_pretrained(tmp_path).num_labels == 4


@pytest.mark.parametrize("preset", ["fnet-base", "fnet-large", "fnet-small", "fnet-mini", "fnet-tiny"])
def test_every_preset_also_builds_the_attention_and_hybrid_variants(preset):
    attention = FNetConfig.from_preset(preset, token_mixer="attention")
    hybrid = FNetConfig.from_preset(preset, hybrid_layout="top", hybrid_attention_layers=1)
    assert attention.hidden_size % attention.num_attention_heads == 0
    assert hybrid.layer_mixers()[-1] == "attention"


def test_config_checkpoint_and_convert_bert_import_no_circle():
    """config is a leaf (io only); convert_bert and checkpoint import it, never the other way round."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, fnet.config; print(sorted(m for m in sys.modules if m.startswith('fnet')), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['fnet', 'fnet.config', 'fnet.io'] False", out
    source = Path(fnet.__file__).parent

    def imported(module):
        tree = ast.parse((source / f"{module}.py").read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        return {n.split(".", 1)[1] for n in names if n.startswith("fnet.")}

    assert imported("config") == {"io", "hub"}  # foundations only (hub is imported when a name is resolved)
    assert "checkpoint" not in imported("convert_bert") and "config" in imported("convert_bert")
