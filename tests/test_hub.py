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
