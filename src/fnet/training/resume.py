"""Everything a run needs to continue exactly where it stopped: ``OUTPUT/checkpoints/step-N/``.

A checkpoint folder holds

* ``config.json`` + ``model.safetensors``: the model, loadable on its own (``from_pretrained``), or
  ``model.pt`` (a plain state dict) for a model without ``save_pretrained``;
* ``trainer_state.json`` + ``trainer_state.safetensors``: step, optimizer, scheduler, RNG states
  (python, numpy, torch, CUDA), the data position (:func:`data_position`) and the trainer's
  bookkeeping (:class:`Progress`). No pickle: every tensor and array is stored in the safetensors
  file and referenced by name from the JSON, which holds everything else (:func:`encode_state`).
  Reading a checkpoint cannot run code.

Checkpoints of fnet 0.1 hold ``trainer_state.pt`` (a pickle) instead. It is read with
``torch.load(weights_only=True)`` and an explicit allow-list of the only non-tensor types such files
contain (numpy arrays and dtypes of the numpy RNG state); anything else fails with one line naming
the file, and nothing in it runs.

The folder is written as ``checkpoints/.fnet-tmp-step-N/`` and renamed to ``step-N`` last
(:mod:`fnet.io`), so a ``step-N`` folder is complete whenever a process is killed; only the newest
``keep_last`` are kept. Model weights alone (no training state) are :mod:`fnet.checkpoint`'s business.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np
import torch

from fnet.io import atomic_replace_dir, atomic_write, atomic_write_text, temporary_dir_beside

CHECKPOINTS_DIR = "checkpoints"
STATE_JSON_NAME = "trainer_state.json"  # the state, tensors replaced by references
STATE_TENSORS_NAME = "trainer_state.safetensors"  # the tensors and arrays the JSON refers to
LEGACY_STATE_NAME = "trainer_state.pt"  # fnet 0.1: a pickle, read with weights_only=True only
STATE_FORMAT = "fnet-trainer-state/1"
MODEL_STATE_NAME = "model.pt"  # weights of a model without save_pretrained
_STEP_DIR = re.compile(r"^step-(\d+)$")


# ----------------------------------------------------------------------------- RNG and data position


def rng_state() -> dict[str, Any]:
    """The state of every generator a step draws from (python, numpy, torch, CUDA when in use)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def data_position(data: Any, step: int) -> dict[str, Any]:
    """Where step-indexed data stands after ``step`` steps (informational: the batches of a step are a
    function of the step, see :class:`fnet.data.collate.StepBatches`, so resuming needs only the step)."""
    position: dict[str, Any] = {"step": step}
    if hasattr(data, "locate"):
        epoch, within = data.locate(step)
        position.update(epoch=epoch, step_in_epoch=within, seed=data.seed, global_batch=data.global_batch,
                        world_size=data.world_size)
    return position


# ----------------------------------------------------------------------------- trainer bookkeeping


@dataclass
class Progress:
    """The trainer's bookkeeping that a checkpoint carries beside the step."""

    step: int = 0  # optimizer steps done
    best_metric: float | None = None  # best value of TrainerConfig.best_metric so far
    best_step: int | None = None  # the step that reached it
    bad_evals: int = 0  # evaluations since the last improvement (early stopping)
    elapsed_s: float = 0.0  # training seconds, carried across resumes
    world_size: int = 1  # processes of the run that wrote the checkpoint

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Progress":
        return cls(step=int(state["step"]), best_metric=state.get("best_metric"), best_step=state.get("best_step"),
                   bad_evals=int(state.get("bad_evals", 0)), elapsed_s=float(state.get("elapsed_s", 0.0)),
                   world_size=int(state.get("world_size", 1)))


def trainer_state(progress: Progress, data: dict[str, Any], trainer_config: dict[str, Any],
                  extra: dict[str, Any]) -> dict[str, Any]:
    """The trainer's part of ``trainer_state.pt`` (the keys fnet 0.1 wrote, which :meth:`Progress.from_state` reads)."""
    return {"data": data, "best_metric": progress.best_metric, "best_step": progress.best_step,
            "bad_evals": progress.bad_evals, "elapsed_s": progress.elapsed_s, "world_size": progress.world_size,
            "trainer_config": trainer_config, "extra": extra}


# ----------------------------------------------------------------------------- model files


def save_model_files(model: torch.nn.Module, directory: Path) -> None:
    """The model's weights in ``directory``: ``save_pretrained`` when it has one, else ``model.pt``."""
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(directory)
    else:
        state = model.state_dict()
        atomic_write(directory / MODEL_STATE_NAME, lambda handle: torch.save(state, handle))


def load_model_files(model: torch.nn.Module, directory: Path) -> None:
    """Copy the weights saved by :func:`save_model_files` into ``model`` (exactly, same dtype)."""
    if (directory / MODEL_STATE_NAME).is_file():
        model.load_state_dict(torch.load(directory / MODEL_STATE_NAME, map_location="cpu", weights_only=True))
        return
    from fnet.checkpoint import load_state_dict_into, read_state_dict

    load_state_dict_into(model, read_state_dict(directory))


def save_model_folder(model: torch.nn.Module, target: Path,
                      files: dict[str, str | Callable[[IO[bytes]], Any]] | None = None) -> Path:
    """Replace the folder ``target`` whole by the model's weights plus ``files`` (name -> text, or
    name -> a function writing the file's bytes to a handle)."""
    tmp = temporary_dir_beside(target)
    save_model_files(model, tmp)
    for name, content in (files or {}).items():
        if isinstance(content, str):
            atomic_write_text(tmp / name, content)
        else:
            atomic_write(tmp / name, content)
    return atomic_replace_dir(tmp, target)


# ----------------------------------------------------------------------------- checkpoint folders


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first, as (step, directory)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and _has_state(child):
            found.append((int(match.group(1)), child))
    return sorted(found)


def _has_state(directory: Path) -> bool:
    return ((directory / STATE_TENSORS_NAME).is_file() and (directory / STATE_JSON_NAME).is_file()) \
        or (directory / LEGACY_STATE_NAME).is_file()


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def save_checkpoint(
    output_dir: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
    keep_last: int | None = None,
) -> Path:
    """Write ``checkpoints/step-{step}`` atomically and delete all but the newest ``keep_last``."""
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(),
        **trainer_state,
    }
    document, tensors = encode_state(state)
    final = save_model_folder(model, Path(output_dir) / CHECKPOINTS_DIR / f"step-{step}", {
        STATE_TENSORS_NAME: lambda handle: handle.write(_safetensors_bytes(tensors)),
        STATE_JSON_NAME: json.dumps({"format": STATE_FORMAT, "step": step, "state": document}, indent=1) + "\n",
    })
    if keep_last:
        for _, old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


class CheckpointError(ValueError):
    """A checkpoint's training state cannot be read safely (a user error: the message names the file)."""


# ----------------------------------------------------------------------------- state <-> JSON + tensors


def encode_state(state: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tuples, tensors, numpy arrays, python scalars and strings)
    into a JSON-able document and the tensors it refers to; :func:`decode_state` inverts it exactly.

    Dicts with other than string keys (an optimizer's ``state``), tuples and arrays are tagged so that
    types survive the round trip (``random.setstate`` wants tuples, ``np.random.set_state`` arrays).
    """
    tensors: dict[str, torch.Tensor] = {}

    def enc(value: Any, where: str) -> Any:
        if isinstance(value, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = value.detach().cpu().clone().contiguous()
            return {"__tensor__": name}
        if isinstance(value, np.ndarray):
            name = f"t{len(tensors)}"
            # int64 holds every numpy RNG word (uint32) exactly; the dtype is restored on reading
            held = value.astype(np.int64) if value.dtype.kind in "ui" else value
            tensors[name] = torch.from_numpy(np.ascontiguousarray(held)).clone()
            return {"__ndarray__": name, "dtype": value.dtype.str}
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: enc(v, f"{where}.{k}") for k, v in value.items()}
            return {"__items__": [[enc(k, where), enc(v, f"{where}[{k!r}]")] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"__tuple__": [enc(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [enc(v, f"{where}[{i}]") for i, v in enumerate(value)]
        raise TypeError(f"training state {where} is a {type(value).__name__}, which a checkpoint cannot hold "
                        "(use tensors, arrays, numbers, strings, lists and dicts)")

    return enc(state, "state"), tensors


def decode_state(document: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The state :func:`encode_state` split into ``document`` and ``tensors``."""

    def dec(value: Any) -> Any:
        if isinstance(value, list):
            return [dec(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy().astype(np.dtype(value["dtype"]))
        if "__tuple__" in value:
            return tuple(dec(v) for v in value["__tuple__"])
        if "__items__" in value:
            return {_hashable(dec(k)): dec(v) for k, v in value["__items__"]}
        return {k: dec(v) for k, v in value.items()}

    return dec(document)


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors)


def _legacy_safe_globals() -> list[Any]:
    """The non-tensor types a fnet 0.1 ``trainer_state.pt`` holds: the numpy RNG state's array and dtype."""
    import importlib

    names: list[Any] = [np.ndarray, np.dtype]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2.x, 1.x
        try:
            names.append(importlib.import_module(module)._reconstruct)
        except (ImportError, AttributeError):
            pass
    names += [type(np.dtype(code)) for code in ("uint32", "int64", "float64", "float32", "int32")]
    return names


def read_trainer_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The training state of a checkpoint folder; never runs code from the files it reads."""
    directory = Path(directory)
    tensors_path, json_path = directory / STATE_TENSORS_NAME, directory / STATE_JSON_NAME
    if tensors_path.is_file() and json_path.is_file():
        from safetensors.torch import load

        try:
            header = json.loads(json_path.read_text(encoding="utf-8"))
            if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
                raise ValueError(f"not a {STATE_FORMAT} file")
            return decode_state(header["state"], load(tensors_path.read_bytes()))
        except Exception as err:  # corrupt or foreign files: one line naming the folder
            raise CheckpointError(f"{directory} holds an unreadable training state ({type(err).__name__}: "
                                  f"{_first_line(err)}); remove that checkpoint folder to resume from an "
                                  "older one") from None
    legacy = directory / LEGACY_STATE_NAME
    if not legacy.is_file():
        raise FileNotFoundError(f"{directory} is not a complete checkpoint (no {STATE_TENSORS_NAME})")
    try:
        with torch.serialization.safe_globals(_legacy_safe_globals()):
            return torch.load(legacy, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = _first_line(str(err).split("WeightsUnpickler error:")[-1].strip())
        raise CheckpointError(f"{legacy} holds objects an fnet checkpoint never contains, so it was not loaded "
                              f"({reason[:200]}); remove that checkpoint folder, or resume from another") from None


def _first_line(err: Any) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def load_checkpoint(
    directory: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states; return the whole trainer state dict."""
    directory = Path(directory)
    state = read_trainer_state(directory)
    load_model_files(model, directory)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng:
        set_rng_state(state["rng"])
    return state
