"""Model weights in and out: transformers-compatible save/load, key maps and loading reports.

A model directory holds ``config.json`` and ``model.safetensors`` (what ``transformers`` writes and
reads), optionally the tokenizer files beside them. Loading also accepts ``pytorch_model.bin`` (read
with ``weights_only=True``) and sharded safetensors with an index file.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
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

# transformers' default largest shard (``save_pretrained(max_shard_size=...)``)
DEFAULT_MAX_SHARD_SIZE = "50GB"
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def export_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The state dict (``model``'s, or ``state``) as transformers stores it: tied and aliased tensors once,
    contiguous, on CPU."""
    state = model.state_dict() if state is None else state
    config = getattr(model, "config", None)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("predictions.decoder.bias"):
            continue  # alias of cls.predictions.bias
        if key.endswith("predictions.decoder.weight") and getattr(config, "tie_word_embeddings", False):
            continue  # tied to the word embeddings
        out[key] = tensor.detach().to("cpu").contiguous()
    return out


def parse_shard_size(size: int | str) -> int:
    """Bytes in ``max_shard_size``: an int, or a string as transformers reads it: ``"5GB"`` (10**9 bytes),
    ``"500MiB"`` (2**20), ``"80Mb"`` (megabits)."""
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    match = None
    if isinstance(size, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?)(B)\s*", size, re.IGNORECASE)
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"max_shard_size={size!r} is not a size; pass bytes as an int or a string like '5GB', "
                         "'500MB', '2GiB'")
    value = float(match[1]) * _SIZE_UNITS[(match[2] + "B").upper()]
    return int(value / 8 if match[3] == "b" else value)


def save_model(
    model: torch.nn.Module,
    save_directory: str | os.PathLike,
    *,
    state_dict: dict[str, torch.Tensor] | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    safe_serialization: bool = True,
    is_main_process: bool = True,
) -> Path:
    """Write ``config.json`` and the weights: ``model.safetensors``, or shards ``model-0000i-of-0000n.safetensors``
    plus ``model.safetensors.index.json`` when they exceed ``max_shard_size`` (``safe_serialization=False``:
    ``pytorch_model.bin``). ``state_dict`` replaces the model's own. Weight files of an earlier save that this
    one does not write are removed first, so the folder never mixes two saves. Every file is written atomically."""
    directory = Path(save_directory)
    if not is_main_process:  # transformers' argument: other ranks of a distributed run write nothing
        return directory
    from safetensors.torch import save

    limit = parse_shard_size(max_shard_size)
    directory.mkdir(parents=True, exist_ok=True)
    config: FNetConfig = model.config
    config_dict = config.to_dict()
    # the public class, not a fast-path subclass swapped in from outside (fnet.unpadded's UnpaddedFNetModel)
    public = next((c for c in type(model).__mro__ if c.__module__ == "fnet.modeling"), type(model))
    config_dict["architectures"] = [public.__name__]
    state = export_state_dict(model, state_dict)
    floating = [t.dtype for t in state.values() if t.is_floating_point()]
    if floating:  # what from_pretrained(dtype="auto") reads back, as transformers writes it
        config_dict["dtype"] = str(floating[0]).removeprefix("torch.")
    files = _weight_files(state, limit) if safe_serialization else {TORCH_WEIGHTS_NAME: state}
    _remove_stale_weights(directory, keep=set(files))
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
    if not safe_serialization:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(directory / TORCH_WEIGHTS_NAME, buffer.getvalue())
        return directory
    for name, shard in files.items():
        atomic_write_bytes(directory / name, save(shard, metadata={"format": "pt"}))
    if len(files) > 1:  # the index last: a folder with an index has all its shards
        weight_map = {key: name for name, shard in files.items() for key in shard}
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values()),
                              "total_parameters": sum(t.numel() for t in state.values())},
                 "weight_map": dict(sorted(weight_map.items()))}
        atomic_write_text(directory / WEIGHTS_INDEX_NAME, json.dumps(index, indent=2) + "\n")
    return directory


def _weight_files(state: dict[str, torch.Tensor], limit: int) -> dict[str, dict[str, torch.Tensor]]:
    """File name -> tensors: one ``model.safetensors``, or shards of at most ``limit`` bytes in key order (a
    larger tensor gets a shard of its own), named as transformers names them."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    if len(shards) == 1:
        return {WEIGHTS_NAME: shards[0]}
    n = len(shards)
    return {f"model-{i + 1:05d}-of-{n:05d}.safetensors": shard for i, shard in enumerate(shards)}


def _remove_stale_weights(directory: Path, keep: set[str]) -> None:
    """Delete the weight files a save writes (single, index, shards, .bin) that this save will not rewrite."""
    names = [WEIGHTS_NAME, WEIGHTS_INDEX_NAME, TORCH_WEIGHTS_NAME]
    candidates = [directory / n for n in names] + sorted(directory.glob("model-*-of-*.safetensors"))
    for path in candidates:
        if path.name not in keep and path.is_file():
            path.unlink()


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


class WeightShapeError(ValueError, RuntimeError):
    """A checkpoint tensor's shape differs from the model's. A RuntimeError, as transformers raises, and a
    ValueError, as fnet's other load errors (the command line reports those in one line)."""


def loading_info(missing=(), unexpected=(), mismatched=(), errors=()) -> dict[str, Any]:
    """What ``from_pretrained(..., output_loading_info=True)`` returns, in transformers' layout: sets of
    ``missing_keys`` (newly initialised), ``unexpected_keys`` (in the checkpoint, not in the model: other
    heads' weights, extra keys), ``mismatched_keys`` ((key, checkpoint shape, model shape), re-initialised
    by ``ignore_mismatched_sizes``), and the list ``error_msgs``."""
    return {"missing_keys": set(missing), "unexpected_keys": set(unexpected), "mismatched_keys": set(mismatched),
            "error_msgs": list(errors)}


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
    model: torch.nn.Module, state: dict[str, torch.Tensor], ignore_mismatched_sizes: bool = False,
    strict: bool = False,
) -> dict[str, Any]:
    """Copy ``state`` into ``model`` with transformers' key conventions; return :func:`loading_info`.

    As transformers: keys the model lacks are reported (``unexpected_keys``), weights the checkpoint lacks
    keep their fresh initialisation (``missing_keys``), and a shape mismatch raises :class:`WeightShapeError`
    unless ``ignore_mismatched_sizes`` re-initialises those weights. ``strict=True`` (fnet's check, for a
    checkpoint that must hold this very model) raises ValueError naming the keys instead, for keys of another
    architecture (other task heads are fine), missing encoder weights, and mismatched non-head weights.
    """
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
    unexpected, mismatched = [], []
    to_load: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key not in expected:
            unexpected.append(key)
        elif tuple(tensor.shape) != tuple(expected[key].shape):
            mismatched.append((key, tuple(tensor.shape), tuple(expected[key].shape)))
        else:
            to_load[key] = tensor
    missing = sorted(k for k in expected if k not in to_load and k not in tied and k not in {m[0] for m in mismatched})
    if strict:
        _check_strict(model, unexpected, missing)
    if mismatched:
        shown = "; ".join(f"{k}: checkpoint {a} vs model {b}" for k, a, b in mismatched[:10])
        head_only = all(k.startswith(_HEAD_PREFIXES) for k, _, _ in mismatched)
        if not ignore_mismatched_sizes or (strict and not head_only):
            raise WeightShapeError(
                f"the config does not match the weights ({shown}); load with the checkpoint's own config"
                + (", or pass ignore_mismatched_sizes=True to re-initialise a head with a new number of labels"
                   if head_only else "")
            )
    for key, tensor in to_load.items():
        _check_loaded_tensor(key, tensor, expected[key])
    with torch.no_grad():
        for key, tensor in to_load.items():
            target = expected[key]
            target.copy_(tensor.to(dtype=target.dtype))
    model.tie_weights()
    return loading_info(missing, unexpected, mismatched)


def _is_optional(key: str) -> bool:
    """Weights that another FNet model of the same checkpoint may lack or carry: task heads and the pooler."""
    return key.startswith(_HEAD_PREFIXES) or ".pooler." in f".{key}"


def _check_strict(model: torch.nn.Module, unexpected: list[str], missing: list[str]) -> None:
    unknown = [k for k in unexpected if not _is_optional(k)]
    if unknown:
        raise ValueError(
            f"the checkpoint has {len(unknown)} key(s) that {type(model).__name__} does not know: "
            f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}; it was written by a different architecture"
        )
    backbone_missing = [k for k in missing if not _is_optional(k)]
    if backbone_missing:
        raise ValueError(
            f"the checkpoint lacks {len(backbone_missing)} encoder weight(s) of {type(model).__name__}, e.g. "
            f"{backbone_missing[:5]}; it is incomplete or holds a different model"
        )


# the floating dtypes from_pretrained(dtype=...) accepts by name, as transformers: "float16" or "torch.float16"
_DTYPE_NAMES = {"float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
                "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64}


def resolve_dtype(dtype: torch.dtype | str | None, config: FNetConfig,
                  state: dict[str, torch.Tensor] | None) -> torch.dtype | None:
    """The dtype a model is loaded in: a ``torch.dtype``, its name (``"bfloat16"``), or ``"auto"`` (the
    config's ``dtype``, else the checkpoint's first floating tensor's, else the default); None keeps float32."""
    if dtype is None or isinstance(dtype, torch.dtype):
        if isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
            raise ValueError(f"dtype={dtype} is not a floating-point dtype; use one of {sorted(_DTYPE_NAMES)} "
                             "or 'auto'")
        return dtype
    if dtype == "auto":
        if config.dtype is not None:
            return _DTYPE_NAMES[config.dtype]
        floating = [t.dtype for t in (state or {}).values() if t.is_floating_point()]
        return floating[0] if floating else torch.get_default_dtype()
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype.removeprefix("torch.")]
    raise ValueError(f"dtype={dtype!r} is not valid; use a torch.dtype, 'auto', or one of {sorted(_DTYPE_NAMES)}")


def load_model(
    cls,
    name_or_dir: str | os.PathLike | None,
    *,
    config: FNetConfig | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    ignore_mismatched_sizes: bool = False,
    strict: bool = False,
    dtype: torch.dtype | str | None = None,
    subfolder: str = "",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
    flag: str = "--model",
    **config_overrides: Any,
):
    """Build ``cls`` and load weights from a folder or a Hugging Face Hub id (``revision``, ``cache_dir``,
    ``local_files_only``, ``token``, ``subfolder``: see :func:`fnet.hub.resolve`; ``flag`` is named in
    errors), or from ``state_dict`` (``name_or_dir=None`` with ``config``); a preset name gives a randomly
    initialised model. ``config_overrides`` replace config fields. Returns (model, :func:`loading_info`)."""
    from fnet.hub import resolve
    from fnet.model_size import check_model_folder

    if torch.empty(()).device.type == "meta":
        raise RuntimeError(f"{cls.__name__}.from_pretrained was called under `with torch.device('meta')` (or a meta "
                           "default device), where no weights can be loaded; for an empty model on the meta device "
                           f"build it with {cls.__name__}(config) inside the context instead")
    if config is not None and config_overrides:  # applied as to a loaded config.json (num_labels renames labels)
        config = FNetConfig.from_dict(config.to_dict(), **config_overrides)
    if name_or_dir is None:
        if config is None or state_dict is None:
            raise ValueError("from_pretrained(None, ...) needs both config= and state_dict=")
        model = cls(config)
        info = load_state_dict_into(model, state_dict, ignore_mismatched_sizes, strict)
        return _finish_loading(model, info, resolve_dtype(dtype, config, state_dict), "the given state_dict")
    if isinstance(name_or_dir, str) and name_or_dir in PRESETS and state_dict is None:
        model = cls(config or FNetConfig.from_preset(name_or_dir, **config_overrides))
        target = resolve_dtype(dtype, model.config, None)
        return (model.to(target) if target else model), loading_info(missing=model.state_dict())
    try:
        directory = resolve(name_or_dir, what="model", flag=flag, revision=revision, cache_dir=cache_dir,
                            local_files_only=local_files_only, token=token, subfolder=subfolder)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}; it is neither a preset ({', '.join(PRESETS)})") from None
    if config is None:
        if not (directory / CONFIG_NAME).is_file() and any(directory.glob("*.safetensors")):
            raise FileNotFoundError(
                f"{directory} holds weights but no {CONFIG_NAME} (transformers' Trainer.save_model writes only the "
                "weights of a model that is not a transformers PreTrainedModel): pass config=model.config, or "
                "write it with model.config.save_pretrained(folder)")
        config = load_config(directory, **config_overrides)
        config._name_or_path = str(name_or_dir)
    try:  # before allocating: the sizes fit memory and agree with the weight headers
        check_model_folder(config, directory, weights=not ignore_mismatched_sizes, layers=strict)
    except ValueError as err:
        raise (WeightShapeError(str(err)) if "does not match the weights" in str(err) else err) from None
    model = cls(config)
    state = read_state_dict(directory) if state_dict is None else state_dict
    if _model_type(directory) == "bert" and state_dict is None:  # transformers BERT: same encoder, attention mixer
        from fnet.convert_bert import state_dict_from_bert

        state = state_dict_from_bert(state)
    info = load_state_dict_into(model, state, ignore_mismatched_sizes, strict)
    return _finish_loading(model, info, resolve_dtype(dtype, config, state), str(directory))


def _finish_loading(model: torch.nn.Module, info: dict[str, Any], dtype: torch.dtype | None, source: str):
    """Report what was not loaded (as transformers' load report does), cast, and put the model in eval mode."""
    name = type(model).__name__
    if info["missing_keys"]:
        logger.warning("%s: newly initialised (not in %s): %s", name, source, sorted(info["missing_keys"]))
    if info["mismatched_keys"]:
        logger.warning("%s: re-initialised for a new shape (ignore_mismatched_sizes): %s", name,
                       sorted(info["mismatched_keys"]))
    other_heads = sorted(k for k in info["unexpected_keys"] if _is_optional(k))
    if other_heads:
        logger.info("%s: checkpoint weights of other heads, not used by this model: %s", name, other_heads)
    unknown = sorted(k for k in info["unexpected_keys"] if not _is_optional(k))
    if unknown:
        logger.warning("%s: checkpoint keys this model does not have, not loaded (from_pretrained(strict=True) "
                       "refuses them): %s", name, unknown)
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model, info
