"""A model's size, known before anything is allocated: checked against the machine and the weights.

A ``config.json`` is text anyone can edit. ``"hidden_size": 10000000`` or ``"num_hidden_layers":
1000000`` would make ``FNetModel(config)`` try to allocate terabytes, or build modules for minutes,
before the weights are even read. Every command that builds a model from a folder's config, or makes a
bigger one (``fnet grow``), asks this module first:

* :func:`estimated_parameters`: a lower bound of the parameter count from the config alone (the
  embeddings and the feed-forward layers, which dominate every FNet and BERT shape);
* :func:`check_fits`: refuse a config whose float32 weights alone exceed the memory this machine has
  available, or whose depth is beyond any trained encoder (:data:`MAX_LAYERS`);
* :func:`check_against_weights`: compare the config's sizes with the tensor shapes in the folder's
  safetensors headers (read without loading a tensor), naming the ``config.json`` key that disagrees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["MAX_LAYERS", "MAX_POSITIONS", "estimated_parameters", "available_memory", "check_fits", "weight_shapes",
           "check_against_weights", "check_model_folder"]

MAX_LAYERS = 1024  # deeper than any published encoder by 10x; building more modules takes minutes
MAX_POSITIONS = 2**20  # tokens per sequence: 8x the longest input fnet has measured; inputs are padded to it


def estimated_parameters(config: Any) -> int:
    """A lower bound of the parameters of a model of ``config`` (embeddings + feed-forward layers)."""
    hidden = int(config.hidden_size)
    width = int(getattr(config, "embedding_size", None) or hidden)
    tables = (int(config.vocab_size) + int(config.max_position_embeddings) + int(config.type_vocab_size)) * width
    layers = 1 if getattr(config, "share_layers", False) else int(config.num_hidden_layers)
    return tables + layers * 2 * hidden * int(config.intermediate_size)


def available_memory() -> int | None:
    """Bytes this process could still allocate: MemAvailable (Linux), else the physical memory; None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 2**30:,.1f} GB"


def check_fits(config: Any, where: str, bytes_per_parameter: int = 4) -> int:
    """Raise ``ValueError`` (naming ``where``: the file or flags that set the sizes) when a model of
    ``config`` cannot be built on this machine; returns the estimated parameter count."""
    layers = int(config.num_hidden_layers)
    if layers > MAX_LAYERS:
        raise ValueError(f"{where}: num_hidden_layers={layers} is more than {MAX_LAYERS}; no encoder that deep can be "
                         "trained or run here: lower it")
    if int(config.max_position_embeddings) > MAX_POSITIONS:
        raise ValueError(f"{where}: max_position_embeddings={config.max_position_embeddings} is more than "
                         f"{MAX_POSITIONS:,} tokens per sequence; inputs are padded to their length, which this "
                         "machine cannot hold: lower the sizes")
    params = estimated_parameters(config)
    need, have = params * bytes_per_parameter, available_memory()
    if have is not None and need > have:
        raise ValueError(f"{where}: a model of this shape needs at least {_gb(need)} for its weights "
                         f"({params:,} parameters: hidden_size={config.hidden_size}, num_hidden_layers={layers}, "
                         f"intermediate_size={config.intermediate_size}, vocab_size={config.vocab_size}, "
                         f"max_position_embeddings={config.max_position_embeddings}) but {_gb(have)} is available: "
                         "lower the sizes")
    return params


def weight_shapes(directory: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a folder's safetensors weights (single file or sharded), from the file
    headers only; empty when the folder has no safetensors weights."""
    from safetensors import safe_open

    directory = Path(directory)
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # the loader reports a broken index with its own message
    elif (directory / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name in files:
        try:
            with safe_open(str(directory / name), framework="pt") as handle:
                for key in handle.keys():
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception:  # a truncated or foreign file: the loader names it when it reads the tensors
            return {}
    return shapes


def _find(shapes: dict[str, tuple[int, ...]], suffix: str) -> tuple[str, tuple[int, ...]] | None:
    for key, shape in shapes.items():
        if key == suffix or key.endswith("." + suffix):
            return key, shape
    return None


def check_against_weights(config: Any, shapes: dict[str, tuple[int, ...]], where: str, layers: bool = True) -> None:
    """Raise ``ValueError`` naming the first config size that the weights contradict (``layers``: also
    a config with more layers than the weights hold)."""
    if not shapes:
        return
    width = getattr(config, "embedding_size", None) or config.hidden_size
    expected = [
        ("embeddings.word_embeddings.weight", 0, "vocab_size", config.vocab_size),
        ("embeddings.word_embeddings.weight", 1, "embedding_size" if width != config.hidden_size else "hidden_size",
         width),
        ("embeddings.position_embeddings.weight", 0, "max_position_embeddings", config.max_position_embeddings),
        ("embeddings.token_type_embeddings.weight", 0, "type_vocab_size", config.type_vocab_size),
        ("encoder.layer.0.output.dense.weight", 0, "hidden_size", config.hidden_size),
        ("encoder.layer.0.output.dense.weight", 1, "intermediate_size", config.intermediate_size),
    ]
    for suffix, axis, key, value in expected:
        found = _find(shapes, suffix)
        if found is not None and len(found[1]) > axis and found[1][axis] != value:
            raise ValueError(f"{where}: the config does not match the weights: {key}={value}, but {found[0]} has "
                             f"shape {list(found[1])}; restore config.json or use the weights it was saved with")
    indices = {index for index in map(_layer_index, shapes) if index is not None}
    held = max(indices) + 1 if indices else 0
    if layers and indices and not getattr(config, "share_layers", False) and held < config.num_hidden_layers:
        missing = f"{held}" if held + 1 == config.num_hidden_layers else f"{held}..{config.num_hidden_layers - 1}"
        raise ValueError(f"{where}: num_hidden_layers={config.num_hidden_layers}, but the weights hold {held} layer(s): "
                         f"the checkpoint lacks the encoder weights of layer(s) {missing}, or config.json was edited; "
                         "restore config.json or use the weights it was saved with")


def _layer_index(key: str) -> int | None:
    parts = key.split(".")
    for i in range(len(parts) - 2):
        if parts[i] == "encoder" and parts[i + 1] == "layer" and parts[i + 2].isdigit():
            return int(parts[i + 2])
    return None


def check_model_folder(config: Any, directory: str | os.PathLike, *, weights: bool = True, layers: bool = True) -> None:
    """Both checks for a model about to be built from ``directory``'s config: it fits this machine, and
    its sizes agree with the weight headers (``weights=False`` skips that, e.g. when mismatched sizes are
    to be ignored; ``layers=False`` allows fewer layers in the weights than in the config, whose missing
    weights then keep their initialisation, as transformers loads them)."""
    where = f"{Path(directory) / 'config.json'}"
    check_fits(config, where)
    if weights:
        check_against_weights(config, weight_shapes(directory), where, layers=layers)
