"""Training-state checkpoints: ``OUTPUT/checkpoints/step-N/``, written atomically, last K kept.

A checkpoint directory holds

* ``config.json`` + ``model.safetensors``: the model, loadable on its own (``from_pretrained``), or
  ``model.pt`` (a plain state dict) for a model without ``save_pretrained``;
* ``trainer_state.pt``: step, optimizer, scheduler, RNG states (python, numpy, torch, CUDA), the data
  position and the trainer's bookkeeping (best metric, early-stopping counter);
* ``trainer_state.json``: the same bookkeeping, readable.

Every file is written to ``checkpoints/.tmp-step-N/`` with fsync, and the directory is renamed to
``step-N`` last, so a ``step-N`` directory is complete whenever a process is killed.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fnet.checkpoint import atomic_torch_save, atomic_write_text

CHECKPOINTS_DIR = "checkpoints"
STATE_NAME = "trainer_state.pt"
STATE_JSON_NAME = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def rng_state() -> dict[str, Any]:
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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_model_files(model: torch.nn.Module, directory: Path) -> None:
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(directory)
    else:
        atomic_torch_save(model.state_dict(), directory / "model.pt")


def load_model_files(model: torch.nn.Module, directory: Path) -> None:
    """Copy the weights saved by :func:`save_model_files` into ``model`` (exactly, same dtype)."""
    if (directory / "model.pt").is_file():
        model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
        return
    from fnet.checkpoint import load_state_dict_into, read_state_dict

    load_state_dict_into(model, read_state_dict(directory))


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
    root = Path(output_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    if tmp.exists():
        shutil.rmtree(tmp)  # left over by a process killed while writing
    tmp.mkdir()
    save_model_files(model, tmp)
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(),
        **trainer_state,
    }
    atomic_torch_save(state, tmp / STATE_NAME)
    readable = {k: v for k, v in trainer_state.items() if isinstance(v, (int, float, str, bool, dict, list, type(None)))}
    atomic_write_text(tmp / STATE_JSON_NAME, json.dumps({"step": step, **readable}, indent=2, default=str) + "\n")
    _fsync_dir(tmp)
    if final.exists():  # the same step saved again (e.g. a re-run): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    if keep_last:
        for _, old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    directory: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states; return the whole trainer state dict."""
    directory = Path(directory)
    if not (directory / STATE_NAME).is_file():
        raise FileNotFoundError(f"{directory} is not a complete checkpoint (no {STATE_NAME})")
    state = torch.load(directory / STATE_NAME, map_location="cpu", weights_only=False)
    load_model_files(model, directory)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng:
        set_rng_state(state["rng"])
    return state
