"""Sentence embeddings: fnet's encode() against sentence-transformers' recipe computed with transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from conftest import shared_data
from fnet import FNetConfig, FNetModel
from fnet.apps.embed import read_lines
from fnet.embeddings import embedding_defaults, pool


def _sentences(n: int = 48) -> list[str]:
    path = shared_data("classification/sst2/glue_dev.tsv")
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t")[0] for row in rows[:n]]


def _reference(folder, texts, max_length, pooling, normalize):
    """sentence-transformers' Transformer -> Pooling -> Normalize, written with transformers + numpy."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.double().numpy()  # (b, n, d)
    mask = batch["attention_mask"].double().numpy()[:, :, None]  # (b, n, 1)
    vectors = hidden[:, 0] if pooling == "cls" else (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
    if normalize:
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def test_minilm_folder_recipe_is_read(minilm_dir):
    defaults = embedding_defaults(minilm_dir)
    assert (defaults.pooling, defaults.normalize, defaults.max_length) == ("mean", True, 256)


def test_minilm_embeddings_equal_sentence_transformers_recipe(minilm_dir):
    texts = _sentences() + ["", "word " * 400]  # an empty text and one that must be truncated to 256 tokens
    model = FNetModel.from_pretrained(minilm_dir)
    got = model.encode(texts, batch_size=7)  # defaults from the folder: mean, normalised, 256 tokens
    expected = _reference(minilm_dir, texts, 256, "mean", True)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    err = np.abs(got - expected).max()
    assert err <= 1e-5, f"embeddings differ from the sentence-transformers recipe by {err:.2e}"


def test_cls_pooling_without_normalisation_matches_recipe(minilm_dir):
    texts = _sentences(12)
    model = FNetModel.from_pretrained(minilm_dir)
    got = model.encode(texts, pooling="cls", normalize=False, max_length=32)
    expected = _reference(minilm_dir, texts, 32, "cls", False)
    err = np.abs(got - expected).max()
    assert err <= 1e-4 * np.abs(expected).max(), f"cls embeddings differ by {err:.2e}"


def test_fourier_embeddings_do_not_depend_on_batch_neighbours(minilm_dir):
    """Order is restored after length bucketing, and each row is independent of its batch's padding."""
    from fnet.tokenization import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                        max_position_embeddings=64, pad_token_id=0, embedding_projection=False)
    model = FNetModel(config).eval()
    texts = ["a", "a much longer text with many more words than the others", "mid length text", "", "b c"]
    together = model.encode(texts, tokenizer, batch_size=5, max_length=64)
    alone = np.stack([model.encode([t], tokenizer, max_length=64)[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)


def test_pool_means_over_real_tokens_only():
    hidden = torch.arange(12, dtype=torch.float32).view(1, 3, 4)  # (b, n, d)
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0, 4.0, 5.0]]
    assert pool(hidden, mask, "cls").tolist() == [[0.0, 1.0, 2.0, 3.0]]
    with pytest.raises(ValueError, match="mean, cls"):
        pool(hidden, mask, "max")


def test_read_lines_keeps_blank_lines_and_refuses_non_utf8(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"one\r\n\nthree\n")
    assert read_lines(path) == ["one", "", "three"]
    path.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(ValueError, match=r"--input .* is not UTF-8 \(line 2"):
        read_lines(path)


def test_unsupported_pooling_config_names_the_flag(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(ValueError, match="--pooling mean|cls"):
        embedding_defaults(tmp_path)


LEGACY_TOKENIZER = Path(__file__).resolve().parent / "fixtures" / "legacy-0.1" / "pretrain-run"


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory):
    """A small random FNet encoder (d=64, 2 layers) saved with the legacy fixture's SentencePiece tokenizer."""
    from fnet.tokenization import AutoTokenizer

    folder = tmp_path_factory.mktemp("small-embed")
    for name in ("spiece.model", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(LEGACY_TOKENIZER / name, folder / name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, intermediate_size=256,
                        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    FNetModel(config).save_pretrained(folder)
    return folder


TEXTS = ["the cat sat on the mat", "a", "", "one two three four five six seven eight nine ten " * 2, "red sun"]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_int8_embeddings_stay_close_to_float32(small_model_dir):
    """fnet.quantize(model) then encode (the documented way; encode has no quantize= argument)."""
    import fnet

    fp32 = FNetModel.from_pretrained(small_model_dir).encode(TEXTS, batch_size=2)
    model = fnet.quantize(FNetModel.from_pretrained(small_model_dir))
    assert isinstance(model.encoder.layer[0].intermediate.dense, torch.ao.nn.quantized.dynamic.Linear)
    int8 = model.encode(TEXTS, batch_size=2)
    cosines = _cosines(fp32, int8)
    assert cosines.min() > 0.99, f"int8 vs float32 cosine per text: {np.round(cosines, 4).tolist()}"
    unit = fp32 / np.linalg.norm(fp32, axis=1, keepdims=True)
    across = (unit @ unit.T)[~np.eye(len(TEXTS), dtype=bool)]
    assert across.max() < 0.99, f"different texts are {across.max():.3f} alike: 0.99 would not tell rows apart"
    assert np.abs(fp32 - int8).max() > 0, "int8 gave float32's exact numbers: the quantized layers did not run"


def test_fnet_embed_quantize_int8(small_model_dir, tmp_path, capsys):
    from fnet.cli.main import main

    rows = tmp_path / "in.txt"
    rows.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    outputs = {}
    for mode in ("fp32", "int8"):
        npy = tmp_path / f"{mode}.npy"
        extra = ["--quantize", "int8"] if mode == "int8" else []
        assert main(["embed", "--model", str(small_model_dir), "--input", str(rows), "--output", str(npy),
                     "--batch-size", "2", "--no-progress", *extra]) == 0
        printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert printed["quantize"] == (None if mode == "fp32" else "int8")
        assert json.loads(npy.with_suffix(".json").read_text())["quantize"] == printed["quantize"]
        outputs[mode] = np.load(npy)
    np.testing.assert_allclose(outputs["fp32"], FNetModel.from_pretrained(small_model_dir).encode(TEXTS),
                               atol=1e-5, rtol=0)
    cosines = _cosines(outputs["fp32"], outputs["int8"])
    assert cosines.min() > 0.99 and np.abs(outputs["fp32"] - outputs["int8"]).max() > 0, cosines.tolist()

    with pytest.raises(SystemExit) as exit_info:
        main(["embed", "--model", str(small_model_dir), "--input", str(rows), "--output", str(tmp_path / "x.npy"),
              "--quantize", "int4"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--quantize" in err and "'int4'" in err and "int8" in err
