"""Everything a run needs to continue exactly where it stopped: ``OUTPUT/checkpoints/step-N/``.

A checkpoint folder holds

* ``config.json`` + ``model.safetensors``: the model, loadable on its own (``from_pretrained``), or
  ``model.pt`` (a plain state dict) for a model without ``save_pretrained``;
* ``trainer_state.pt``: step, optimizer, scheduler, RNG states (python, numpy, torch, CUDA), the data
  position (:func:`data_position`) and the trainer's bookkeeping (:class:`Progress`);
* ``trainer_state.json``: the same bookkeeping, readable.

The folder is written as ``checkpoints/.tmp-step-N/`` and renamed to ``step-N`` last
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
STATE_NAME = "trainer_state.pt"
STATE_JSON_NAME = "trainer_state.json"
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
        if match and (child / STATE_NAME).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


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
    readable = {k: v for k, v in trainer_state.items() if isinstance(v, (int, float, str, bool, dict, list, type(None)))}
    final = save_model_folder(model, Path(output_dir) / CHECKPOINTS_DIR / f"step-{step}", {
        STATE_NAME: lambda handle: torch.save(state, handle),
        STATE_JSON_NAME: json.dumps({"step": step, **readable}, indent=2, default=str) + "\n",
    })
    if keep_last:
        for _, old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_trainer_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The dict in ``directory/trainer_state.pt`` (the one place it is unpickled)."""
    path = Path(directory) / STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a complete checkpoint (no {STATE_NAME})")
    return torch.load(path, map_location="cpu", weights_only=False)


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
