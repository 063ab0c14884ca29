"""Output folders of fnet commands: claimed, locked, marked and replaced whole. One call does it all:

    from fnet import run_folder

    with run_folder.claim(config.output, kind="finetune", overwrite=config.overwrite,
                          inputs={"--model": config.model}) as out:
        ... write everything under out.path ...
        out.record(tokenizer=tokenizer.fingerprint(), task="classification")

What :func:`claim` guarantees (the README's "Reliability" section lists the tests):

* **Nothing overwritten unless told.** A folder that holds anything is refused (:class:`OutputError`,
  naming the flag, what the folder holds and the fix) unless ``overwrite=True`` (``--overwrite``), or
  ``resume=True`` and the folder is a run of the same kind (``fnet pretrain --resume``). The input
  folders of the command (``inputs``, e.g. ``--model``) are named when the output is one of them.
* **Replaced atomically.** With ``overwrite`` the new content is written beside the old folder
  (``.fnet-tmp-NAME``) and swapped in by :func:`fnet.io.atomic_replace_dir` only when the command succeeds:
  a failure or a kill leaves the old folder as it was.
* **One run per folder.** ``OUTPUT/.fnet.lock`` is held (``fcntl.flock``) for the whole run and
  names its holder (pid, host, command); a second run refuses with :class:`FolderLocked` naming it.
  The kernel drops the lock when a process dies, so a lock file left by a killed run is recognised
  as stale, reported (a log warning) and taken over.
* **What made the folder.** ``OUTPUT/fnet_folder.json`` (:data:`MARKER_NAME`) records the command
  kind, the command line, the fnet version, whether the run finished, and what :meth:`Claim.record`
  adds (the tokenizer's fingerprint, the task). :func:`recorded_tokenizer` and
  :func:`check_tokenizer` compare tokenizers with it.
* **No partial output.** When the command fails, a folder the claim created is removed unless it
  holds something to continue from (``keep``, e.g. ``checkpoints``); a staging folder is always removed.

Under torchrun only rank 0 claims (``main=False`` on the other ranks: they get the same ``path`` and
touch nothing). Single output *files* (``fnet export --output FILE``) go through :func:`claim_file`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from fnet.io import atomic_replace_dir, atomic_write_text, reserved_name, temporary_dir_beside, umask

if TYPE_CHECKING:
    from fnet.data.tokenizer import SavedTokenizer

__all__ = ["MARKER_NAME", "LOCK_NAME", "OutputError", "FolderLocked", "Claim", "claim", "check_claim", "claim_file",
           "check_disjoint", "check_claim_file", "check_finished",
           "read_marker", "describe", "recorded_tokenizer", "check_tokenizer", "check_output_path"]

logger = logging.getLogger(__name__)

MARKER_NAME = "fnet_folder.json"
LOCK_NAME = ".fnet.lock"
_IGNORED = {LOCK_NAME}  # what an otherwise empty folder may hold


class OutputError(ValueError):
    """An output path that cannot be used as given (a user error; the message names the flag and the fix)."""


class FolderLocked(OutputError):
    """Another live process holds the folder's lock."""


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "main.py")):
        argv[0] = "fnet"
    return " ".join([Path(argv[0]).name, *argv[1:]]) if argv else "python"


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of a folder made by an fnet command, or None."""
    path = Path(folder) / MARKER_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_finished(folder: str | os.PathLike, flag: str = "--model") -> None:
    """Refuse a folder whose fnet marker says its run has not finished (its final model is not written)."""
    marker = read_marker(folder)
    if marker and marker.get("made_by") == "fnet" and marker.get("state") != "complete":
        raise ValueError(f"{flag} {folder} is an unfinished `fnet {marker.get('kind', '?')}` run (its final model is "
                         f"not written yet): wait for it to finish, or continue it with --resume")


def describe(folder: str | os.PathLike) -> str:
    """What a folder holds, in words (for messages)."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker:
        what = f"the output of `fnet {marker.get('kind', '?')}`"
        if marker.get("task"):
            what += f" (task {marker['task']})"
        if marker.get("state") != "complete":
            what += ", unfinished"
        return what
    if (folder / "fnet_task.json").is_file():
        task = _json_field(folder / "fnet_task.json", "task")
        return f"a fine-tuned model (task {task})"
    if (folder / "checkpoints").is_dir():
        return "a training run (checkpoints/)"
    if (folder / "config.json").is_file():
        return "a model (config.json)"
    if any((folder / name).is_file() for name in ("spiece.model", "vocab.txt", "tokenizer.json")):
        return "a tokenizer"
    names = sorted(p.name for p in folder.iterdir() if p.name not in _IGNORED)
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{len(names)} file(s) fnet did not make ({shown})"


def _json_field(path: Path, key: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def check_output_path(path: str | os.PathLike, flag: str = "--output", want: str = "folder") -> Path:
    """Refuse, before any work, an output that cannot be created where it is: a folder path that is a
    file or lies under a file, a file path that is a folder, or a place this process cannot write."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{flag} {path} is a symbolic link to {os.readlink(path)}, which does not exist; remove the "
                          f"link or point it at a {want}, or choose another {flag}")
    if want == "folder" and path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file; give a folder path")
    if want == "file" and path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file path, e.g. {path / 'model.onnx'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{flag} {path} lies under {parent}, which is a file; give a path in a folder")
            break
    existing = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        raise OutputError(f"{flag} {path}: {existing} is not writable by this user; choose another {flag} "
                          "or change its permissions")
    return path


# ----------------------------------------------------------------------------- the lock


class _Lock:
    """``fcntl.flock`` on ``folder/.fnet.lock``, whose content names the holder."""

    def __init__(self, folder: Path, flag: str):
        self.path = folder / LOCK_NAME
        self.flag = flag
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = _holder_text(_read_json_file(self.path))
            raise FolderLocked(f"{self.flag} {self.path.parent} is in use by {holder}; wait for it to finish, "
                               f"or choose another {self.flag}") from None
        previous = _read_json_file(self.path)
        if previous:  # the kernel released it: its holder died without cleaning up
            logger.warning("%s: took over a stale lock left by %s (that process is gone)", self.path.parent,
                           _holder_text(previous))
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command_line(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if self.path.exists() and os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _read_json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _holder_text(info: dict[str, Any]) -> str:
    if not info:
        return "another process"
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')} (`{info.get('command', '?')}`, "
            f"since {info.get('since', '?')})")


# ----------------------------------------------------------------------------- the claim


@dataclass
class Claim:
    """A claimed output: write under :attr:`path`; :attr:`previous` is the marker found on resume."""

    target: Path  # the folder the user named
    path: Path  # where to write now: the target, or a staging folder beside it (overwrite)
    kind: str
    previous: dict[str, Any] | None = None
    main: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    def record(self, **info: Any) -> None:
        """Add facts to the folder's marker (e.g. ``tokenizer=tok.fingerprint()``, ``task=...``)."""
        self.info.update(info)
        if self.main:
            self._write_marker("running")

    def _write_marker(self, state: str) -> None:
        from fnet import __version__

        marker = {"made_by": "fnet", "kind": self.kind, "state": state, "command": _command_line(),
                  "fnet_version": __version__, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), **self.info}
        atomic_write_text(self.path / MARKER_NAME, json.dumps(marker, indent=2, default=str) + "\n")


def _staging_path(target: Path) -> Path:
    return reserved_name(target, "tmp")  # fnet.io.temporary_dir_beside's name


def _is_empty(folder: Path) -> bool:
    return all(p.name in _IGNORED for p in folder.iterdir())


@contextlib.contextmanager
def claim(path: str | os.PathLike, kind: str, *, overwrite: bool = False, resume: bool = False,
          flag: str = "--output", inputs: dict[str, Any] | None = None, keep: tuple[str, ...] = (),
          main: bool = True) -> Iterator[Claim]:
    """Claim the output folder ``path`` for an ``fnet {kind}`` run; see the module docstring.

    ``inputs``: flag -> path (or list of paths) of what the command reads; an output that is, contains
    or lies inside one is refused (:func:`check_disjoint`), except on resume, which only adds to its own folder.
    ``keep``: names inside the folder that make a failed run's folder worth keeping (``checkpoints``).
    """
    target = check_output_path(path, flag)
    if not resume:  # a resumed run only adds to its own folder (whose inputs may be its own saved files)
        check_disjoint(target, inputs or {}, flag)
    if not main:  # torchrun ranks > 0: where rank 0 will write (call before rank 0 claims), nothing touched
        staged = overwrite and not resume and target.is_dir() and not _is_empty(target)
        yield Claim(target, _staging_path(target) if staged else target, kind, previous=read_marker(target),
                    main=False)
        return
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True, mode=0o777 & ~umask())
    lock = _Lock(target, flag)
    lock.acquire()
    staging = None
    try:
        previous = read_marker(target)
        if not _is_empty(target):
            _check_reuse(target, kind, previous, overwrite=overwrite, resume=resume, flag=flag, inputs=inputs or {})
            if overwrite and not resume:
                staging = temporary_dir_beside(target)
        out = Claim(target, staging or target, kind, previous=previous if staging is None else None)
        if resume and previous:  # what the run recorded (its tokenizer) stays until it is checked
            out.info = {k: v for k, v in previous.items()
                        if k not in ("made_by", "kind", "state", "command", "fnet_version", "updated")}
        out._write_marker("running")
        try:
            yield out
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            elif created and not any((target / name).exists() for name in keep):
                shutil.rmtree(target, ignore_errors=True)
            raise
        out._write_marker("complete")
        if staging is not None:
            atomic_replace_dir(staging, target)
    finally:
        lock.release()


def check_claim(path: str | os.PathLike, kind: str, *, overwrite: bool = False, resume: bool = False,
                flag: str = "--output", inputs: dict[str, Any] | None = None) -> Path:
    """What :func:`claim` will check, checked now without touching anything (call it before expensive
    work; the claim repeats it under the lock)."""
    target = check_output_path(path, flag)
    if not resume:  # a resumed run only adds to its own folder (whose inputs may be its own saved files)
        check_disjoint(target, inputs or {}, flag)
    if target.is_dir() and not _is_empty(target):
        _check_reuse(target, kind, read_marker(target), overwrite=overwrite, resume=resume, flag=flag,
                     inputs=inputs or {})
    return target


def _relation(output: Path, source: Path) -> str | None:
    """How ``output`` overlaps the existing path ``source``: "is", "contains", "lies inside" or None."""
    out, src = output.resolve(), source.resolve()
    if out == src:
        return "is"
    if out in src.parents:
        return "contains"
    if src in out.parents:
        return "lies inside"
    return None


def check_disjoint(output: str | os.PathLike, inputs: dict[str, Any], flag: str = "--output") -> None:
    """Refuse an output that is, contains or lies inside one of the command's inputs (flag -> path, or a
    list of paths; Hub ids and paths that do not exist are skipped). No flag, ``--overwrite`` included,
    allows it: replacing or writing into an input would destroy what the command reads."""
    output = Path(output)
    for input_flag, values in inputs.items():
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if not value or not os.path.lexists(value):
                continue
            try:
                relation = _relation(output, Path(value))
            except (OSError, RuntimeError):  # a symlink loop: not a path anything can be written through
                continue
            if relation:
                kind = "folder" if Path(value).is_dir() else "file"
                raise OutputError(f"{flag} {output} {relation} the {input_flag} {kind} {value}; an output may not "
                                  f"overlap what the command reads: choose another {flag}")


# commands with --resume: an unfinished run of theirs (its checkpoints, in that folder) can be continued
RESUMABLE = {"pretrain": "checkpoints", "distill": "checkpoints", "finetune": "training/checkpoints"}


def _check_reuse(target: Path, kind: str, previous: dict[str, Any] | None, *, overwrite: bool, resume: bool,
                 flag: str, inputs: dict[str, Any]) -> None:
    """Raise unless a non-empty ``target`` may be written by this run."""
    what = describe(target)
    if resume:
        if previous is not None and previous.get("made_by") == "fnet" and previous.get("kind") == kind:
            return
        if previous is None and (target / "run_config.json").is_file() and (target / "checkpoints").is_dir():
            return  # a training run of fnet 0.1, which wrote no marker (its run_config.json is checked later)
        raise OutputError(f"{flag} {target} holds {what}; --resume continues only a run that `fnet {kind}` made "
                          f"there: choose another {flag}")
    if overwrite:
        return
    hint = ""
    if kind in RESUMABLE and (previous is None or previous.get("kind") == kind) \
            and (target / RESUMABLE[kind]).is_dir():
        hint = "pass --resume to continue it, "
    raise OutputError(f"{flag} {target} already holds {what}; {hint}choose another {flag}, or pass --overwrite "
                      "to replace it")


def check_claim_file(path: str | os.PathLike, *, overwrite: bool = False, flag: str = "--output",
                     inputs: dict[str, Any] | None = None, side_files: tuple[str | os.PathLike, ...] = ()) -> Path:
    """What :func:`claim_file` checks, checked now without touching anything (call it before expensive
    work, on every rank; the claim repeats it)."""
    target = check_output_path(path, flag, want="file")
    for written in (target, *map(Path, side_files)):
        check_disjoint(written, inputs or {}, flag)
        if written != target:
            check_output_path(written, flag, want="file")
        if written.exists() and not overwrite:
            what = "" if written == target else f" (the record written beside {target})"
            raise OutputError(f"{flag} {target}: {written}{what} already exists; choose another {flag}, or pass "
                              "--overwrite to replace it")
    return target


@contextlib.contextmanager
def claim_file(path: str | os.PathLike, *, overwrite: bool = False, flag: str = "--output",
               inputs: dict[str, Any] | None = None, side_files: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """Claim the output file ``path``: refused when it (or one of ``side_files``, the records the
    command writes beside it) exists unless ``overwrite``, and always when it or a side file overlaps
    one of ``inputs`` (:func:`check_disjoint`); yields a temporary path beside it to write, renamed over
    ``path`` when the block succeeds (removed when it fails). A second claim of the same file while the
    first runs refuses, naming the holder."""
    target = check_claim_file(path, overwrite=overwrite, flag=flag, inputs=inputs, side_files=side_files)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o777 & ~umask())
    lock = _Lock(target.parent, flag)
    lock.path = target.parent / f".{target.name}.fnet.lock"
    lock.acquire()
    tmp = reserved_name(target, "tmp")
    try:
        try:
            yield tmp
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, target)
    finally:
        lock.release()


# ----------------------------------------------------------------------------- tokenizer identity


def recorded_tokenizer(folder: str | os.PathLike) -> str | None:
    """The fingerprint of the tokenizer a folder was made with: the marker's, else that of the
    tokenizer files saved in it, else None."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker and marker.get("tokenizer"):
        return str(marker["tokenizer"])
    if any((folder / name).is_file() for name in ("spiece.model", "vocab.txt", "tokenizer.json")):
        from fnet.tokenization import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(folder).fingerprint()
        except Exception:  # unreadable tokenizer files: nothing recorded to compare with
            return None
    return None


def check_tokenizer(folder: str | os.PathLike, folder_flag: str, tokenizer: SavedTokenizer, tokenizer_source: Any,
                    tokenizer_flag: str = "--tokenizer") -> str:
    """Refuse a tokenizer other than the one ``folder`` was made with, naming both; returns the
    tokenizer's fingerprint (to record)."""
    mine = tokenizer.fingerprint()
    theirs = recorded_tokenizer(folder)
    if theirs is not None and theirs != mine:
        raise OutputError(f"{tokenizer_flag} {tokenizer_source} (tokenizer {mine}) is not the tokenizer {folder_flag} "
                          f"{folder} was made with ({theirs}); pass the tokenizer saved with it, e.g. "
                          f"{tokenizer_flag} {folder}")
    return mine
