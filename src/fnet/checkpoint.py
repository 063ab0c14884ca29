"""Model weights in and out: transformers-compatible save/load, key maps and loading reports.

A model directory holds ``config.json`` and ``model.safetensors`` (what ``transformers`` writes and
reads), optionally the tokenizer files beside them. Loading also accepts ``pytorch_model.bin`` (read
with ``weights_only=True``) and sharded safetensors with an index file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fnet.config import CONFIG_NAME, PRESETS, FNetConfig
from fnet.io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger("fnet")

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TORCH_WEIGHTS_NAME = "pytorch_model.bin"

# buffers that older transformers checkpoints carry and that hold no learned values
_IGNORED_KEYS = ("fnet.embeddings.position_ids", "fnet.embeddings.token_type_ids",
                 "embeddings.position_ids", "embeddings.token_type_ids")
# heads of other FNet task models: present in a checkpoint, simply unused by this model
_HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")


# ----------------------------------------------------------------------------- saving


def export_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as transformers stores it: tied and aliased tensors once, contiguous, on CPU."""
    state = model.state_dict()
    config = getattr(model, "config", None)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("predictions.decoder.bias"):
            continue  # alias of cls.predictions.bias
        if key.endswith("predictions.decoder.weight") and getattr(config, "tie_word_embeddings", False):
            continue  # tied to the word embeddings
        out[key] = tensor.detach().to("cpu").contiguous()
    return out


def save_model(model: torch.nn.Module, save_directory: str | os.PathLike) -> Path:
    from safetensors.torch import save

    directory = Path(save_directory)
    directory.mkdir(parents=True, exist_ok=True)
    config: FNetConfig = model.config
    config_dict = config.to_dict()
    # the public class, not a fast-path subclass swapped in from outside (fnet.unpadded's UnpaddedFNetModel)
    public = next((c for c in type(model).__mro__ if c.__module__ == "fnet.modeling"), type(model))
    config_dict["architectures"] = [public.__name__]
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
    blob = save(export_state_dict(model), metadata={"format": "pt"})
    atomic_write_bytes(directory / WEIGHTS_NAME, blob)
    return directory


# ----------------------------------------------------------------------------- reading


def read_state_dict(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the weights of a model directory (safetensors, sharded safetensors, or pytorch_model.bin)."""
    directory = Path(directory)
    single, index, legacy = directory / WEIGHTS_NAME, directory / WEIGHTS_INDEX_NAME, directory / TORCH_WEIGHTS_NAME
    if single.is_file():
        return _read_safetensors(single)
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{index} is not a valid safetensors index ({err})") from err
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_read_safetensors(directory / shard))
        return state
    if legacy.is_file():
        try:
            state = torch.load(legacy, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle/zip errors of many kinds: report them as one
            raise ValueError(f"{legacy} could not be read as a PyTorch state dict ({type(err).__name__}: {err}); "
                             "the file is corrupt or not a checkpoint") from err
        if not isinstance(state, dict):
            raise ValueError(f"{legacy} does not hold a state dict (got {type(state).__name__})")
        return state
    raise FileNotFoundError(
        f"no weights in {directory}: expected {WEIGHTS_NAME}, {WEIGHTS_INDEX_NAME} or {TORCH_WEIGHTS_NAME}"
    )


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"missing weights file {path}")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for truncated/corrupt headers
        raise ValueError(f"{path} is not a readable safetensors file ({err}); the file is corrupt or truncated") from err


# ----------------------------------------------------------------------------- loading


@dataclass
class LoadingInfo:
    """What happened when weights were loaded into a model."""

    missing_keys: list[str] = field(default_factory=list)  # newly initialised (e.g. a new task head)
    unused_keys: list[str] = field(default_factory=list)  # other heads' weights, present but unused
    mismatched_keys: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # re-initialised, by request


def _model_type(directory: Path) -> str | None:
    """The ``model_type`` a directory's config.json declares (None when absent or unreadable)."""
    try:
        data = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data.get("model_type") if isinstance(data, dict) else None


def load_config(name_or_dir: str | os.PathLike, **overrides: Any) -> FNetConfig:
    return FNetConfig.from_pretrained(name_or_dir, **overrides)


def _align_prefix(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Match the checkpoint's ``fnet.`` prefix to the model: backbone <-> task model in both directions."""
    prefix = "fnet."
    model_keys = model.state_dict().keys()
    model_prefixed = any(k.startswith(prefix) for k in model_keys)
    ckpt_prefixed = any(k.startswith(prefix) for k in state)
    if model_prefixed and not ckpt_prefixed:
        return {(k if k.startswith(_HEAD_PREFIXES) else prefix + k): v for k, v in state.items()}
    if not model_prefixed and ckpt_prefixed:
        return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
    return dict(state)


def _drop_dft_buffers(state: dict[str, torch.Tensor], config: FNetConfig) -> dict[str, torch.Tensor]:
    """Check and drop the DFT matrices of transformers' ``use_tpu_fourier_optimizations`` checkpoints.

    transformers stores ``...fourier.self.dft_mat_seq`` (``tpu_short_seq_length`` square) and
    ``...fourier.self.dft_mat_hidden`` (``hidden_size`` square), complex64, in every layer; they hold no
    learned values, and fnet builds its own (``fourier.dft_matrices``, any length).  Each one must equal the
    DFT matrix of its size, or loading fails naming the key: a checkpoint whose matrices were changed does
    not compute a Fourier transform, and fnet would silently compute a different model.
    """
    from fnet.fourier import dft_matrices

    sizes = {"dft_mat_seq": ("tpu_short_seq_length", config.tpu_short_seq_length),
             "dft_mat_hidden": ("hidden_size", config.hidden_size)}
    out = {}
    for key, tensor in state.items():
        name = key.rsplit(".", 1)[-1]
        if name not in sizes or ".fourier." not in f".{key}":
            out[key] = tensor
            continue
        field_name, n = sizes[name]
        if tuple(tensor.shape) != (n, n):
            raise ValueError(f"the checkpoint's {key} has shape {tuple(tensor.shape)}, but the config's "
                             f"{field_name}={n} makes it ({n}, {n}); load with the checkpoint's own config.json")
        cos, sin = dft_matrices(n, dtype=torch.float64)
        expected = torch.complex(cos, -sin)
        err = (tensor.to(torch.complex128) - expected).abs().max().item() if n else 0.0
        if not err <= 1e-4 * max(1.0, n ** 0.5):  # complex64 rounding of exp(-2*pi*i*jk/n); also catches NaN
            raise ValueError(f"the checkpoint's {key} is not the {n}-point DFT matrix (max abs difference {err:.3g}); "
                             "fnet computes the Fourier transform itself and cannot load a model whose matrices "
                             "were changed")
    return out


def _check_loaded_tensor(key: str, tensor: torch.Tensor, target: torch.Tensor) -> None:
    """Refuse weights that would load as garbage: integer or bool tensors for float parameters (a cast
    would turn them into meaningless values silently) and NaN or inf values."""
    if target.is_floating_point() and not (tensor.is_floating_point() or tensor.is_complex()):
        raise ValueError(f"the checkpoint's {key} is {str(tensor.dtype).removeprefix('torch.')}, not a float tensor; "
                         "the weights file is not a model's or was edited: restore it")
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"the checkpoint's {key} holds NaN or inf values; the weights file is corrupt or the run that "
                         "wrote it diverged: use an earlier checkpoint")


def load_state_dict_into(
    model: torch.nn.Module, state: dict[str, torch.Tensor], ignore_mismatched_sizes: bool = False
) -> LoadingInfo:
    """Copy ``state`` into ``model`` with transformers' key conventions; errors name the bad keys."""
    state = {k: v for k, v in state.items() if k not in _IGNORED_KEYS}
    state = _drop_dft_buffers(state, model.config)
    state = _align_prefix(state, model)
    # cls.predictions.decoder.bias is an alias of cls.predictions.bias
    for key in list(state):
        if key.endswith("predictions.decoder.bias"):
            alias = key.replace("decoder.bias", "bias")
            state.setdefault(alias, state[key])
            del state[key]
    expected = model.state_dict()
    tied = {k for k in expected if k.endswith("predictions.decoder.bias")}
    if getattr(model.config, "tie_word_embeddings", False):
        tied |= {k for k in expected if k.endswith("predictions.decoder.weight")}
    info = LoadingInfo()
    unknown, mismatched = [], []
    to_load: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key not in expected:
            optional = key.startswith(_HEAD_PREFIXES) or f".{key}".find(".pooler.") >= 0
            (info.unused_keys if optional else unknown).append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[key].shape):
            mismatched.append((key, tuple(tensor.shape), tuple(expected[key].shape)))
            continue
        to_load[key] = tensor
    if unknown:
        raise ValueError(
            f"the checkpoint has {len(unknown)} key(s) that {type(model).__name__} does not know: "
            f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}; it was written by a different architecture"
        )
    if mismatched:
        shown = "; ".join(f"{k}: checkpoint {a} vs model {b}" for k, a, b in mismatched[:10])
        head_only = all(k.startswith(_HEAD_PREFIXES) for k, _, _ in mismatched)
        if not (ignore_mismatched_sizes and head_only):
            raise ValueError(
                f"the config does not match the weights ({shown}); load with the checkpoint's own config"
                + (", or pass ignore_mismatched_sizes=True to re-initialise a head with a new number of labels"
                   if head_only else "")
            )
        info.mismatched_keys = mismatched
    for key, tensor in to_load.items():
        _check_loaded_tensor(key, tensor, expected[key])
    with torch.no_grad():
        for key, tensor in to_load.items():
            target = expected[key]
            target.copy_(tensor.to(dtype=target.dtype))
    info.missing_keys = sorted(k for k in expected if k not in to_load and k not in tied)
    backbone_missing = [k for k in info.missing_keys if not k.startswith(_HEAD_PREFIXES) and ".pooler." not in f".{k}"]
    if backbone_missing:
        raise ValueError(
            f"the checkpoint lacks {len(backbone_missing)} encoder weight(s) of {type(model).__name__}, e.g. "
            f"{backbone_missing[:5]}; it is incomplete or holds a different model"
        )
    model.tie_weights()
    return info


def load_model(
    cls,
    name_or_dir: str | os.PathLike,
    *,
    config: FNetConfig | None = None,
    ignore_mismatched_sizes: bool = False,
    dtype: torch.dtype | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
    flag: str = "--model",
    **config_overrides: Any,
):
    """Build ``cls`` and load weights from a folder or a Hugging Face Hub id (``revision``, ``cache_dir``,
    ``local_files_only``, ``token``: see :func:`fnet.hub.resolve`; ``flag`` is named in errors); a preset
    name gives a randomly initialised model."""
    from fnet.hub import resolve
    from fnet.model_size import check_model_folder

    if isinstance(name_or_dir, str) and name_or_dir in PRESETS:
        model = cls(config or FNetConfig.from_preset(name_or_dir, **config_overrides))
        info = LoadingInfo(missing_keys=sorted(model.state_dict()))
        return (model.to(dtype) if dtype else model), info
    try:
        directory = resolve(name_or_dir, what="model", flag=flag, revision=revision, cache_dir=cache_dir,
                            local_files_only=local_files_only, token=token)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}; it is neither a preset ({', '.join(PRESETS)})") from None
    if config is None:
        config = load_config(directory, **config_overrides)
    check_model_folder(config, directory)  # sizes agree with the weight headers and fit memory, before allocating
    model = cls(config)
    state = read_state_dict(directory)
    if _model_type(directory) == "bert":  # transformers BERT: same encoder with the attention mixer
        from fnet.convert_bert import state_dict_from_bert

        state = state_dict_from_bert(state)
    info = load_state_dict_into(model, state, ignore_mismatched_sizes=ignore_mismatched_sizes)
    if info.missing_keys:
        logger.warning("%s: newly initialised from scratch (not in %s): %s", cls.__name__, directory, info.missing_keys)
    if info.unused_keys:
        logger.info("%s: checkpoint weights not used by this model: %s", cls.__name__, info.unused_keys)
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model, info
