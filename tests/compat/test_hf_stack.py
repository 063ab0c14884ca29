"""fnet models with the components transformers users combine them with: PEFT's LoRA and transformers'
own Trainer, end to end on tiny models (CPU, a few seconds each), and the README's snippet, which must
run both as written (fnet) and with the import switched back to transformers."""

from __future__ import annotations

import re
import runpy

import pytest
import torch

import fnet
from conftest import REPO, tiny_config_kwargs
from fnet import FNetConfig

peft = pytest.importorskip("peft")  # pinned in the test extra
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it
transformers.logging.set_verbosity_error()


def _data(n=32, length=12, seed=0):
    """A learnable toy task: the label says whether the second token id is above 32."""
    ids = torch.randint(4, 61, (n, length), generator=torch.Generator().manual_seed(seed))
    return ids, (ids[:, 1] > 32).long()


def _base(tmp_path):
    torch.manual_seed(0)
    model = fnet.FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs(num_labels=2)))
    model.save_pretrained(tmp_path / "base")
    return fnet.FNetForSequenceClassification.from_pretrained(tmp_path / "base")


def _lora(model):
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["dense"], task_type="SEQ_CLS")
    return peft.get_peft_model(model, config)


def _train(model, steps=15, **forward):
    ids, labels = _data()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels, **forward).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_lora_trains_saves_the_adapter_and_reloads_with_identical_logits(tmp_path):
    model = _lora(_base(tmp_path))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)  # the encoder stays frozen
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    losses = _train(model)
    assert losses[-1] < 0.85 * losses[0], losses
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    ids, _ = _data(4, seed=1)
    with torch.no_grad():
        want = model.eval()(input_ids=ids).logits
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    again = peft.PeftModel.from_pretrained(fnet.FNetForSequenceClassification.from_pretrained(tmp_path / "base"),
                                           tmp_path / "adapter").eval()
    with torch.no_grad():
        got = again(input_ids=ids).logits
        base = fnet.FNetForSequenceClassification.from_pretrained(tmp_path / "base")(input_ids=ids).logits
    assert torch.equal(got, want)
    assert not torch.allclose(base, want)  # the adapter changed the model


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_lora_with_gradient_checkpointing_gives_the_same_gradients(tmp_path, use_reentrant):
    model = _lora(_base(tmp_path)).train()
    ids, labels = _data()

    def grads():
        model.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}

    plain = grads()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
    assert model.base_model.model.is_gradient_checkpointing
    checkpointed = grads()
    layer_lora = [n for n in plain if "encoder.layer.0" in n and "lora_" in n]
    assert layer_lora and plain.keys() == checkpointed.keys()  # gradients reach the adapters inside the layers
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], msg=name)
    losses = _train(model, steps=10)  # and it trains while checkpointing
    assert losses[-1] < losses[0], losses


def test_transformers_trainer_fine_tunes_an_fnet_model(tmp_path):
    torch.manual_seed(0)
    model = fnet.FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs(num_labels=2)))
    ids, labels = _data()
    data = [{"input_ids": x, "attention_mask": torch.ones_like(x), "labels": y} for x, y in zip(ids, labels)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=8, num_train_epochs=6, learning_rate=5e-3,
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
        activation_checkpointing=True,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    assert model.is_gradient_checkpointing  # the Trainer's activation_checkpointing reached the model
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 24 and sum(losses[-4:]) < 0.75 * sum(losses[:4]), losses
    trainer.save_model(str(tmp_path / "final"))  # transformers writes only the weights of a non-PreTrainedModel
    model.config.save_pretrained(tmp_path / "final")
    again = fnet.FNetForSequenceClassification.from_pretrained(tmp_path / "final")
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=0)


def test_readme_snippet_runs_with_fnet_and_with_transformers(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split("## Using fnet with the Hugging Face stack", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", body, re.S).group(1)
    first = snippet.splitlines()[0]
    assert first.startswith("from fnet import ") and "# was: from transformers import" in first
    monkeypatch.chdir(tmp_path)
    as_transformers = snippet.replace("from fnet import", "from transformers import", 1)
    for name, code in (("fnet", snippet), ("transformers", as_transformers)):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        (tmp_path / name / "snippet.py").write_text(code)
        result = runpy.run_path(str(tmp_path / name / "snippet.py"))
        assert type(result["model"]).__module__.startswith(name), name
        assert (tmp_path / name / "base" / "model.safetensors.index.json").is_file()
        assert (tmp_path / name / "adapter" / "adapter_model.safetensors").is_file()
        assert isinstance(result["tuned"], peft.PeftModel)


def test_trainer_with_a_tied_embedding_model_saves_through_save_pretrained(tmp_path):
    torch.manual_seed(0)
    model = fnet.FNetForMaskedLM(FNetConfig(**tiny_config_kwargs()))
    ids, _ = _data(16)
    data = [{"input_ids": x, "labels": x} for x in ids]
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "run"), max_steps=3, per_device_train_batch_size=8,
                                          save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    with pytest.raises(RuntimeError, match="share memory"):  # the README's caveat: the raw save of tied weights
        trainer.save_model(str(tmp_path / "raw"))
    model.save_pretrained(tmp_path / "saved")
    again = fnet.FNetForMaskedLM.from_pretrained(tmp_path / "saved")
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).logits, model.eval()(input_ids=ids).logits, rtol=0, atol=0)
