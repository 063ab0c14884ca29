"""Hub ids resolve through huggingface_hub's cache, offline; failures are one line naming id, flag and state."""

from __future__ import annotations

import pytest

from fnet.hub import is_hub_id, resolve
from hub_helpers import add_to_hub_cache
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "legacy-0.1" / "classifier"


def test_local_folder_is_used_as_is(tmp_path):
    assert resolve(tmp_path) == tmp_path


def test_cached_id_resolves_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = add_to_hub_cache(tmp_path, "someone/tiny-fnet", FIXTURE)
    folder = resolve("someone/tiny-fnet", cache_dir=tmp_path)
    assert folder == snapshot
    assert (folder / "model.safetensors").read_bytes() == (FIXTURE / "model.safetensors").read_bytes()


def test_revision_selects_the_snapshot(tmp_path):
    add_to_hub_cache(tmp_path, "someone/tiny-fnet", FIXTURE)
    other = add_to_hub_cache(tmp_path, "someone/tiny-fnet", FIXTURE.parent / "pretrain-run", revision="v2")
    assert resolve("someone/tiny-fnet", cache_dir=tmp_path, revision="v2", local_files_only=True) == other


def test_missing_id_offline_is_one_line_naming_id_flag_and_offline(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        resolve("someone/absent", cache_dir=tmp_path, local_files_only=True, flag="--teacher")
    text = str(err.value)
    assert "\n" not in text and "--teacher someone/absent" in text and "offline" in text


def test_a_file_or_bad_name_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file"):
        resolve(tmp_path / "f")
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        resolve("./not/here/either")
    assert is_hub_id("google/fnet-base") and is_hub_id("bert-base-uncased")
    assert not is_hub_id("a/b/c") and not is_hub_id("../x")


# ----------------------------------------------------------------------------- every loader takes an id


def test_model_config_and_tokenizer_load_by_id_offline(tmp_path, monkeypatch):
    import torch

    import fnet

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    add_to_hub_cache(tmp_path, "someone/classifier", FIXTURE)
    local = fnet.FNetForSequenceClassification.from_pretrained(FIXTURE)
    by_id = fnet.FNetForSequenceClassification.from_pretrained("someone/classifier", cache_dir=tmp_path)
    for (name, a), (_, b) in zip(local.state_dict().items(), by_id.state_dict().items()):
        assert torch.equal(a, b), name
    assert fnet.FNetConfig.from_pretrained("someone/classifier", cache_dir=tmp_path) == local.config
    tok = fnet.AutoTokenizer.from_pretrained("someone/classifier", cache_dir=tmp_path)
    assert isinstance(tok, fnet.FNetTokenizer) and tok("a b c")["input_ids"] == \
        fnet.FNetTokenizer.from_pretrained(FIXTURE)("a b c")["input_ids"]
    assert fnet.FNetTokenizer.from_pretrained("someone/classifier", cache_dir=tmp_path).vocab_size == tok.vocab_size


def test_revision_by_keyword_or_at_suffix(tmp_path):
    import fnet

    add_to_hub_cache(tmp_path, "someone/tiny-fnet", FIXTURE)
    v2 = add_to_hub_cache(tmp_path, "someone/tiny-fnet", FIXTURE.parent / "pretrain-run", revision="v2")
    assert resolve("someone/tiny-fnet@v2", cache_dir=tmp_path, local_files_only=True) == v2
    config = fnet.FNetConfig.from_pretrained("someone/tiny-fnet", revision="v2", cache_dir=tmp_path,
                                             local_files_only=True)
    assert config == fnet.FNetConfig.from_pretrained(FIXTURE.parent / "pretrain-run")
    assert config != fnet.FNetConfig.from_pretrained(FIXTURE)
    with pytest.raises(ValueError, match="give one"):
        resolve("someone/tiny-fnet@v2", revision="main", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(FileNotFoundError, match="someone/tiny-fnet at revision v3.*offline"):
        resolve("someone/tiny-fnet@v3", cache_dir=tmp_path, local_files_only=True)


def test_pytorch_model_bin_only_repository_loads_with_weights_only(tmp_path):
    """A repository without safetensors: pytorch_model.bin is fetched and read with weights_only=True."""
    import torch

    import fnet
    from fnet.checkpoint import read_state_dict

    folder = tmp_path / "bin-only"
    folder.mkdir()
    for name in ("config.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((FIXTURE / name).read_bytes())
    state = read_state_dict(FIXTURE)
    torch.save(state, folder / "pytorch_model.bin")
    add_to_hub_cache(tmp_path / "cache", "someone/bin-only", folder)
    model = fnet.FNetForSequenceClassification.from_pretrained("someone/bin-only", cache_dir=tmp_path / "cache",
                                                              local_files_only=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k in loaded)
    # a pickle that would run code is refused (weights_only=True), never executed
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, folder / "pytorch_model.bin")
    add_to_hub_cache(tmp_path / "cache2", "someone/evil", folder)
    with pytest.raises(ValueError, match="could not be read as a PyTorch state dict"):
        fnet.FNetModel.from_pretrained("someone/evil", cache_dir=tmp_path / "cache2", local_files_only=True)


def _fnet_cli(args, env_extra, cwd):
    import os
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **env_extra}
    return subprocess.run([sys.executable, "-m", "fnet.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_cli_predict_by_id_offline_and_a_missing_id_is_one_line(tmp_path):
    import json

    cache = tmp_path / "hub"
    add_to_hub_cache(cache, "someone/classifier", FIXTURE)
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    by_id = _fnet_cli(["predict", "--model", "someone/classifier", "apple good river"], env, tmp_path)
    local = _fnet_cli(["predict", "--model", str(FIXTURE), "apple good river"], env, tmp_path)
    assert by_id.returncode == 0, by_id.stderr
    assert json.loads(by_id.stdout) == json.loads(local.stdout)
    missing = _fnet_cli(["predict", "--model", "someone/absent", "text"], env, tmp_path)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    lines = [line for line in missing.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--model someone/absent" in lines[0] and "offline" in lines[0], missing.stderr


def test_export_loads_a_model_by_hub_id(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from fnet.export import load_for_export

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    add_to_hub_cache(tmp_path, "someone/tiny-classifier", FIXTURE)
    model, task = load_for_export("someone/tiny-classifier")
    assert task == "sequence-classification" and type(model).__name__ == "FNetForSequenceClassification"
