"""fnet's models and config behave as transformers' FNet where a transformers user relies on them.

Each test drives fnet and transformers 5 (the parity oracle) through the same call and compares what
comes back: loading reports, output objects, dtypes, errors, config files, checkpointing, resizing,
sharded files, ``torch.export``. Tiny configurations; CPU; a few seconds in all.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import fnet
from conftest import tiny_config_kwargs
from fnet import FNetConfig

transformers.logging.set_verbosity_error()


def _hf_checkpoint(path, cls=transformers.FNetForPreTraining, **overrides):
    """A transformers model saved to ``path`` (its own files), returned in eval mode."""
    torch.manual_seed(0)
    model = cls(transformers.FNetConfig(**tiny_config_kwargs(**overrides))).eval()
    model.save_pretrained(path)
    return model


def _ids(b=2, n=7):
    return torch.randint(4, 61, (b, n), generator=torch.Generator().manual_seed(1))


# ----------------------------------------------------------------------------- 1, 2: loading reports


@pytest.mark.parametrize("name, overrides", [
    ("FNetForSequenceClassification", {"num_labels": 3}), ("FNetModel", {}), ("FNetForMaskedLM", {}),
    ("FNetForQuestionAnswering", {}),
])
def test_output_loading_info_is_transformers_dict(tmp_path, name, overrides):
    _hf_checkpoint(tmp_path)
    _, want = getattr(transformers, name).from_pretrained(tmp_path, output_loading_info=True, **overrides)
    _, got = getattr(fnet, name).from_pretrained(tmp_path, output_loading_info=True, **overrides)
    assert got == want, f"fnet {got} vs transformers {want}"
    assert set(got) == {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"}


def test_extra_and_missing_keys_load_and_are_reported_unless_strict(tmp_path):
    ref = _hf_checkpoint(tmp_path, transformers.FNetForSequenceClassification)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["extra.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    want_model, want = transformers.FNetForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    got_model, got = fnet.FNetForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert got == want and got["unexpected_keys"] == {"extra.weight"}
    with torch.no_grad():
        torch.testing.assert_close(got_model(input_ids=_ids()).logits, ref(input_ids=_ids()).logits)
    with pytest.raises(ValueError, match=r"does not know: \['extra.weight'\]"):
        fnet.FNetForSequenceClassification.from_pretrained(tmp_path, strict=True)
    # an encoder weight the checkpoint lacks: newly initialised and reported, or refused under strict
    del state["fnet.encoder.layer.1.output.dense.weight"], state["extra.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    _, want = transformers.FNetForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    _, got = fnet.FNetForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert got == want and got["missing_keys"] == {"fnet.encoder.layer.1.output.dense.weight"}
    with pytest.raises(ValueError, match="lacks 1 encoder weight"):
        fnet.FNetForSequenceClassification.from_pretrained(tmp_path, strict=True)


# ----------------------------------------------------------------------------- 3: config flags


def test_config_output_hidden_states_and_return_dict_are_honoured(tmp_path):
    ref = _hf_checkpoint(tmp_path, transformers.FNetForSequenceClassification)
    ours = fnet.FNetForSequenceClassification.from_pretrained(tmp_path, output_hidden_states=True)
    theirs = transformers.FNetForSequenceClassification.from_pretrained(tmp_path, output_hidden_states=True)
    assert ours.config.output_hidden_states and theirs.config.output_hidden_states
    with torch.no_grad():
        got, want = ours(input_ids=_ids()), theirs(input_ids=_ids())
        assert len(got.hidden_states) == len(want.hidden_states) == 3
        for a, b in zip(got.hidden_states, want.hidden_states):
            torch.testing.assert_close(a, b)
        for model in (ours, theirs):
            model.config.return_dict = False
        got, want = ours(input_ids=_ids()), theirs(input_ids=_ids())
        assert isinstance(got, tuple) and len(got) == len(want) == 2
        torch.testing.assert_close(got[0], want[0])
        assert isinstance(ours(input_ids=_ids(), return_dict=True), fnet.SequenceClassifierOutput)  # the argument wins
    base = fnet.FNetModel(FNetConfig(**tiny_config_kwargs(output_hidden_states=True))).eval()
    assert len(base(input_ids=_ids()).hidden_states) == 3
    assert base(input_ids=_ids(), output_hidden_states=False).hidden_states is None
    with pytest.raises(ValueError, match="output_attentions=True: FNet .* no attention maps"):
        base(input_ids=_ids(), output_attentions=True)
    fast = fnet.optimize_for_inference(base)  # the real-tokens-only path honours the config too
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        assert len(fast(input_ids=_ids(), attention_mask=mask).hidden_states) == 3
        fast.config.return_dict = False
        assert isinstance(fast(input_ids=_ids(), attention_mask=mask), tuple)


# ----------------------------------------------------------------------------- 4: dict-like outputs


def test_outputs_are_dict_like_as_in_transformers(tmp_path):
    _hf_checkpoint(tmp_path, transformers.FNetForSequenceClassification)
    ours = fnet.FNetForSequenceClassification.from_pretrained(tmp_path)
    theirs = transformers.FNetForSequenceClassification.from_pretrained(tmp_path).eval()
    labels = torch.tensor([0, 1])
    for kwargs in ({}, {"labels": labels}, {"labels": labels, "output_hidden_states": True}):
        with torch.no_grad():
            got, want = ours(input_ids=_ids(), **kwargs), theirs(input_ids=_ids(), **kwargs)
        assert list(got) == list(want) == list(got.keys()), kwargs  # iteration yields the set fields' names
        assert ("logits" in got) and ("loss" in got) == ("loss" in want) == ("labels" in kwargs)
        assert [k for k, _ in got.items()] == list(want.keys())
        torch.testing.assert_close(got[0], want[0])  # int indexing skips the fields that are None
        torch.testing.assert_close(got["logits"], want["logits"])
        assert len(got.to_tuple()) == len(want.to_tuple()) == len(list(got.values()))
        assert [type(v) for v in got[:2]] == [type(v) for v in want[:2]]
    with pytest.raises(KeyError):
        got = ours(input_ids=_ids())
        got["loss"]  # noqa: B018 - a field that is None is not a key, as in transformers


# ----------------------------------------------------------------------------- 5: dtype


def test_from_pretrained_dtype_names_torch_dtype_and_auto(tmp_path):
    _hf_checkpoint(tmp_path, transformers.FNetModel)
    for dtype, expected in (("float16", torch.float16), ("bfloat16", torch.bfloat16), (torch.float16, torch.float16),
                            ("auto", torch.float32)):
        assert fnet.FNetModel.from_pretrained(tmp_path, dtype=dtype).dtype == expected, dtype
        assert transformers.FNetModel.from_pretrained(tmp_path, dtype=dtype).dtype == expected, dtype
    assert fnet.FNetModel.from_pretrained(tmp_path, torch_dtype=torch.bfloat16).dtype == torch.bfloat16
    assert fnet.FNetModel.from_pretrained(tmp_path, torch_dtype="float16").dtype == torch.float16
    assert fnet.FNetModel.from_pretrained(tmp_path).dtype == torch.float32  # fnet's default (transformers: "auto")
    with pytest.raises(ValueError, match="dtype='int8' is not valid"):
        fnet.FNetModel.from_pretrained(tmp_path, dtype="int8")
    # "auto" follows a bfloat16 checkpoint, from its config's dtype or (without one) from the weights
    transformers.FNetModel.from_pretrained(tmp_path, dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    assert transformers.FNetModel.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16
    assert fnet.FNetModel.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16
    data = json.loads((tmp_path / "bf16" / "config.json").read_text())
    del data["dtype"]
    (tmp_path / "bf16" / "config.json").write_text(json.dumps(data))
    assert fnet.FNetModel.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16
    fnet.FNetModel.from_pretrained(tmp_path).to(torch.float16).save_pretrained(tmp_path / "ours16")
    assert json.loads((tmp_path / "ours16" / "config.json").read_text())["dtype"] == "float16"
    assert transformers.FNetModel.from_pretrained(tmp_path / "ours16").dtype == torch.float16


def test_from_pretrained_device_map_on_one_device(tmp_path):
    _hf_checkpoint(tmp_path, transformers.FNetModel)
    for device_map in ("cpu", "auto", {"": "cpu"}, torch.device("cpu")):
        assert fnet.FNetModel.from_pretrained(tmp_path, device_map=device_map, low_cpu_mem_usage=True).device.type == "cpu"
    with pytest.raises(ValueError, match="splits the model across devices"):
        fnet.FNetModel.from_pretrained(tmp_path, device_map={"embeddings": "cpu", "encoder": "cpu"})


# ----------------------------------------------------------------------------- 6: mismatched heads


def test_mismatched_head_is_a_runtime_error_with_ignore_mismatched_sizes(tmp_path):
    _hf_checkpoint(tmp_path, transformers.FNetForSequenceClassification)
    with pytest.raises(RuntimeError):
        transformers.FNetForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    with pytest.raises(RuntimeError, match="classifier.weight: checkpoint .*ignore_mismatched_sizes=True"):
        fnet.FNetForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    _, want = transformers.FNetForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    model, got = fnet.FNetForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert got == want and model.classifier.out_features == 5 and len(got["mismatched_keys"]) == 2


# ----------------------------------------------------------------------------- 7: state_dict without a folder


def test_from_pretrained_none_with_config_and_state_dict(tmp_path):
    ref = _hf_checkpoint(tmp_path, transformers.FNetForMaskedLM)
    config = FNetConfig.from_pretrained(tmp_path)
    ours, info = fnet.FNetForMaskedLM.from_pretrained(None, config=config, state_dict=ref.state_dict(),
                                                      output_loading_info=True)
    theirs = transformers.FNetForMaskedLM.from_pretrained(None, config=ref.config, state_dict=ref.state_dict())
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=_ids()).logits, theirs(input_ids=_ids()).logits)
    with pytest.raises(ValueError, match="needs both config= and state_dict="):
        fnet.FNetForMaskedLM.from_pretrained(None, config=config)


# ----------------------------------------------------------------------------- 8: config


def test_config_takes_every_key_of_a_transformers_config(tmp_path):
    theirs = transformers.FNetConfig(hidden_size=40, num_hidden_layers=3, num_labels=4, output_hidden_states=True)
    ours = FNetConfig(**theirs.to_dict())
    assert (ours.hidden_size, ours.num_labels, ours.output_hidden_states) == (40, 4, True)
    assert ours.id2label == theirs.id2label and ours.label2id == theirs.label2id
    assert FNetConfig(num_labels=3).id2label == transformers.FNetConfig(num_labels=3).id2label
    ours.num_labels = 2  # a new count renames the labels, as in transformers
    theirs.num_labels = 2
    assert ours.id2label == theirs.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    named = FNetConfig(id2label={0: "neg", 1: "pos"})
    assert named.label2id == {"neg": 0, "pos": 1} and named.num_labels == 2
    with pytest.raises(ValueError, match="model_type must be 'fnet'"):
        FNetConfig(model_type="bert")


def test_config_to_json_file_and_subfolder(tmp_path):
    config = FNetConfig(hidden_size=40, num_hidden_layers=3, intermediate_size=80, num_labels=3)
    config.to_json_file(tmp_path / "diff.json")
    config.to_json_file(tmp_path / "full.json", use_diff=False)
    diff = json.loads((tmp_path / "diff.json").read_text())
    assert diff["hidden_size"] == 40 and "vocab_size" not in diff and diff["model_type"] == "fnet"
    for name in ("diff.json", "full.json"):
        theirs = transformers.FNetConfig.from_json_file(tmp_path / name)
        assert (theirs.hidden_size, theirs.num_hidden_layers, theirs.num_labels) == (40, 3, 3)
        assert FNetConfig.from_json_file(tmp_path / name) == config
    _hf_checkpoint(tmp_path / "repo" / "encoder", transformers.FNetModel)
    assert FNetConfig.from_pretrained(tmp_path / "repo", subfolder="encoder").hidden_size == 24
    ours = fnet.FNetModel.from_pretrained(tmp_path / "repo", subfolder="encoder")
    theirs = transformers.FNetModel.from_pretrained(tmp_path / "repo", subfolder="encoder")
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=_ids()).last_hidden_state, theirs(input_ids=_ids()).last_hidden_state)
    with pytest.raises(FileNotFoundError, match="no subfolder 'decoder'"):
        fnet.FNetModel.from_pretrained(tmp_path / "repo", subfolder="decoder")


# ----------------------------------------------------------------------------- 9, 10: training helpers


def test_enable_and_disable_input_require_grads():
    for model in (fnet.FNetModel(FNetConfig(**tiny_config_kwargs())),
                  transformers.FNetModel(transformers.FNetConfig(**tiny_config_kwargs()))):
        model.requires_grad_(False)
        assert not model(input_ids=_ids()).last_hidden_state.requires_grad
        model.enable_input_require_grads()
        assert model(input_ids=_ids()).last_hidden_state.requires_grad, type(model)
        model.disable_input_require_grads()
        assert not model(input_ids=_ids()).last_hidden_state.requires_grad


def _grads(model, **kwargs):
    model.zero_grad()
    model(input_ids=_ids(4, 9), labels=torch.tensor([0, 1, 1, 0]), **kwargs).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_gradient_checkpointing_surface(monkeypatch, use_reentrant):
    model = fnet.FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs(num_hidden_layers=4))).train()
    assert model.supports_gradient_checkpointing and not model.is_gradient_checkpointing
    model.fnet.embeddings.requires_grad_(False)  # frozen embeddings: the case PEFT and the Trainer meet
    plain = _grads(model)
    calls = []
    real = fnet.modeling.checkpoint
    monkeypatch.setattr(fnet.modeling, "checkpoint", lambda *a, **k: calls.append(k) or real(*a, **k))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
    assert model.is_gradient_checkpointing and model.is_activation_checkpointing
    checkpointed = _grads(model)
    assert len(calls) == 4 and all(k == {"use_reentrant": use_reentrant} for k in calls)
    assert plain.keys() == checkpointed.keys() and any("encoder.layer.0" in n for n in plain)
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, msg=name)
    with torch.no_grad():
        model(input_ids=_ids())
    model.eval()(input_ids=_ids())
    assert len(calls) == 4, "recomputation only while training with autograd on"
    model.train().activation_checkpointing_enable(every_n_layers=2)
    _grads(model)
    assert len(calls) == 6  # layers 0 and 2
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing
    _grads(model)
    assert len(calls) == 6


def test_gradient_checkpointing_config_flag_and_trainer_call():
    model = fnet.FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs(gradient_checkpointing=True)))
    assert model.is_gradient_checkpointing and not model.config.gradient_checkpointing  # consumed, as transformers
    theirs = transformers.FNetForSequenceClassification(transformers.FNetConfig(**tiny_config_kwargs()))
    assert theirs.supports_gradient_checkpointing
    # the call transformers' Trainer makes for activation_checkpointing=True
    plain = fnet.FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs()))
    plain.activation_checkpointing_enable(activation_checkpointing_kwargs=None, every_n_layers=1, offload=False)
    assert plain.is_activation_checkpointing


def test_offloaded_checkpointing_gives_the_same_gradients():
    model = fnet.FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs())).train()
    plain = _grads(model)
    model.activation_checkpointing_enable(offload=True)
    offloaded = _grads(model)
    assert plain.keys() == offloaded.keys()
    for name, grad in plain.items():
        torch.testing.assert_close(offloaded[name], grad, msg=name)
    with pytest.raises(ValueError, match="every_n_layers must be a positive int"):
        model.activation_checkpointing_enable(every_n_layers=0)


# ----------------------------------------------------------------------------- 11: resizing the vocabulary


def test_resize_token_embeddings_as_transformers(tmp_path):
    ref = _hf_checkpoint(tmp_path, transformers.FNetForMaskedLM)
    ours = fnet.FNetForMaskedLM.from_pretrained(tmp_path)
    old = ours.get_input_embeddings().weight.detach().clone()
    old_bias = ours.cls.predictions.bias.detach().clone()
    for model in (ours, ref):
        assert model.resize_token_embeddings(None, pad_to_multiple_of=16).num_embeddings == 64
        assert model.resize_token_embeddings(66, pad_to_multiple_of=8).num_embeddings == 72
        assert model.config.vocab_size == 72 and model.resize_token_embeddings().num_embeddings == 72
    mean = old.mean(0)
    for model in (ours, ref):
        new = model.get_input_embeddings().weight.detach()
        torch.testing.assert_close(new[:61], old)
        assert (new[61:] - mean).abs().max() < 1e-4, type(model)  # at the old rows' mean (+ ~1e-6 noise)
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied
        bias = model.cls.predictions.decoder.bias.detach()
        torch.testing.assert_close(bias[:61], old_bias)
        assert (bias[61:] - old_bias.mean()).abs().max() < 1e-6
    ids = torch.randint(4, 72, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, ref(input_ids=ids).logits, atol=1e-4, rtol=0)
    plain = fnet.FNetForMaskedLM(FNetConfig(**tiny_config_kwargs()))
    plain.resize_token_embeddings(200, mean_resizing=False)
    spread = plain.get_input_embeddings().weight[61:].detach()
    assert 0.01 < spread.std().item() < 0.03  # the reference init, N(0, 0.02)
    with pytest.raises(ValueError, match="pad_to_multiple_of must be a positive int"):
        plain.resize_token_embeddings(10, pad_to_multiple_of=0)


# ----------------------------------------------------------------------------- beside: saving, export, meta


def test_sharded_save_and_load_both_ways(tmp_path):
    ref = _hf_checkpoint(tmp_path / "single", transformers.FNetForMaskedLM)
    ours = fnet.FNetForMaskedLM.from_pretrained(tmp_path / "single")
    ours.save_pretrained(tmp_path / "ours", max_shard_size="20KB")
    ref.save_pretrained(tmp_path / "theirs", max_shard_size="20KB")
    names = sorted(p.name for p in (tmp_path / "ours").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "theirs").iterdir())  # model-0000i-of-0000n.safetensors
    assert "model.safetensors.index.json" in names and "model.safetensors" not in names
    index = json.loads((tmp_path / "ours" / "model.safetensors.index.json").read_text())
    theirs_index = json.loads((tmp_path / "theirs" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(theirs_index["weight_map"])
    assert index["metadata"]["total_size"] == theirs_index["metadata"]["total_size"]
    ids = _ids()
    with torch.no_grad():
        want = ref(input_ids=ids).logits
        for model in (fnet.FNetForMaskedLM.from_pretrained(tmp_path / "ours"),
                      fnet.FNetForMaskedLM.from_pretrained(tmp_path / "theirs"),
                      transformers.FNetForMaskedLM.from_pretrained(tmp_path / "ours")):
            torch.testing.assert_close(model(input_ids=ids).logits, want)
    # a later single-file save replaces the shards (no stale weights beside it), and back
    ours.save_pretrained(tmp_path / "ours")
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["config.json", "model.safetensors"]
    ours.save_pretrained(tmp_path / "ours", max_shard_size=30_000)
    assert "model.safetensors" not in {p.name for p in (tmp_path / "ours").iterdir()}
    with pytest.raises(ValueError, match="max_shard_size='lots' is not a size"):
        ours.save_pretrained(tmp_path / "bad", max_shard_size="lots")


def test_save_pretrained_state_dict_and_pytorch_bin(tmp_path):
    model = fnet.FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs())).eval()
    state = {k: torch.zeros_like(v) if k.startswith("classifier.") else v for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path / "given", state_dict=state)
    again = fnet.FNetForSequenceClassification.from_pretrained(tmp_path / "given")
    assert again.classifier.weight.abs().sum() == 0 and model.classifier.weight.abs().sum() > 0
    model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["config.json", "pytorch_model.bin"]
    with torch.no_grad():
        want = model(input_ids=_ids()).logits
        for loaded in (fnet.FNetForSequenceClassification.from_pretrained(tmp_path / "bin"),
                       transformers.FNetForSequenceClassification.from_pretrained(tmp_path / "bin")):
            torch.testing.assert_close(loaded(input_ids=_ids()).logits, want)
    model.save_pretrained(tmp_path / "other", is_main_process=False)
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("cls", [fnet.FNetModel, fnet.FNetForSequenceClassification])
def test_torch_export(cls):
    model = cls(FNetConfig(**tiny_config_kwargs())).eval()
    ids = _ids()
    program = torch.export.export(model, (ids,))
    got = program.module()(_ids(2, 7))
    want = model(input_ids=_ids(2, 7))
    assert type(got) is type(want) and list(got.keys()) == list(want.keys())
    for a, b in zip(got.values(), want.values()):
        torch.testing.assert_close(a, b)


def test_from_pretrained_under_meta_device_is_an_error(tmp_path):
    _hf_checkpoint(tmp_path, transformers.FNetModel)
    with torch.device("meta"):
        with pytest.raises(RuntimeError, match="meta"):
            transformers.FNetModel.from_pretrained(tmp_path)
        with pytest.raises(RuntimeError, match=r"under `with torch.device\('meta'\)`.*FNetModel\(config\)"):
            fnet.FNetModel.from_pretrained(tmp_path)
        empty = fnet.FNetModel(FNetConfig.from_pretrained(tmp_path))  # the way to an empty model
    assert empty.device.type == "meta"


def test_trainer_weights_without_config_get_a_clear_error(tmp_path):
    model = fnet.FNetModel(FNetConfig(**tiny_config_kwargs()))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(FileNotFoundError, match="no config.json .*config=model.config"):
        fnet.FNetModel.from_pretrained(tmp_path)
    again = fnet.FNetModel.from_pretrained(tmp_path, config=model.config)
    torch.testing.assert_close(again.pooler.dense.weight, model.pooler.dense.weight)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_device_map_cuda_and_offloaded_checkpointing_give_the_same_gradients(tmp_path):
    _hf_checkpoint(tmp_path, transformers.FNetForSequenceClassification)
    model = fnet.FNetForSequenceClassification.from_pretrained(tmp_path, device_map="cuda:0").train()
    assert model.device.type == "cuda"
    ids, labels = _ids(4, 9).cuda(), torch.tensor([0, 1, 1, 0], device="cuda")

    def grads():
        model.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads()
    model.activation_checkpointing_enable(offload=True)  # saved layer inputs live in pinned CPU memory
    offloaded = grads()
    assert plain.keys() == offloaded.keys()
    for name, grad in plain.items():
        torch.testing.assert_close(offloaded[name], grad, msg=name)
