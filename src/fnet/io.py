"""Atomic files and folders: the one implementation every writer in fnet uses.

A reader never sees a half-written file or folder: content is written beside the target under a
hidden temporary name, flushed to disk, then renamed over the target (``os.replace`` is atomic on
POSIX). New files and folders get the permissions the process umask allows, as ``open`` would give
them (``mkstemp`` alone would leave files at 0600).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, IO, Iterator

__all__ = ["umask", "fsync_dir", "atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_replace_dir",
           "temporary_dir_beside", "reserved_name", "RESERVED_PREFIX", "utf8_lines", "read_lines"]


def umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry (a rename inside it) to disk; a no-op where directories cannot be opened."""
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


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError) and err.filename is None:  # name the file in the message
            raise OSError(err.errno, err.strerror or str(err), str(path)) from None
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


RESERVED_PREFIX = ".fnet-"  # every temporary or backup name fnet writes beside a target starts with it


def reserved_name(target: str | os.PathLike, tag: str) -> Path:
    """``.fnet-TAG-NAME`` beside ``target``: the one place fnet's temporary and backup names are made.

    The prefix is fnet's own, so removing a leftover of that name never touches a user's file
    (a user's ``.tmp-NAME`` or ``.old-NAME`` beside an output is left alone)."""
    target = Path(target)
    return target.parent / f"{RESERVED_PREFIX}{tag}-{target.name}"


def temporary_dir_beside(target: str | os.PathLike, tag: str = "tmp") -> Path:
    """A fresh, empty hidden folder next to ``target`` (same filesystem, so it can be renamed onto it),
    named by :func:`reserved_name`. A leftover of a process killed while writing is removed first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = reserved_name(target, tag)
    if tmp.is_symlink() or tmp.is_file():
        tmp.unlink()
    elif tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(mode=0o777 & ~umask())
    return tmp


def atomic_replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the finished folder ``tmp`` onto ``target``, replacing any old ``target`` whole.

    The old folder is first renamed aside (``.fnet-old-NAME``) and deleted only after the new one is in
    place, so a crash leaves either the complete old folder or the complete new one on disk, never a
    mixture.
    """
    tmp, target = Path(tmp), Path(target)
    fsync_dir(tmp)
    old = reserved_name(target, "old")
    if old.is_symlink() or old.is_file():
        old.unlink()
    elif old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return target


def utf8_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, read line by line (a leading byte-order mark is
    dropped). Raises ``ValueError`` naming the file, line and byte offset at the first invalid byte:
    every command that reads raw text refuses Latin-1 or binary files the same way."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file not found: {path}")
    offset = 0
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{path}: line {lineno}: invalid UTF-8 at byte offset {offset + err.start} "
                    f"(byte {err.start} of the line: {raw[err.start:err.start + 1]!r}); re-encode the file as UTF-8"
                ) from None
            offset += len(raw)
            yield lineno, line.lstrip("\ufeff") if lineno == 1 else line


def read_lines(path: str | os.PathLike, flag: str = "--input") -> list[str]:
    """The lines of a UTF-8 file (``\\n`` or ``\\r\\n``); a final newline does not add an empty line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ValueError(f"{flag} {path} is not UTF-8 (line {line}, byte {err.start}); convert it to UTF-8") from None
    except OSError as err:
        raise ValueError(f"{flag} {path} cannot be read ({err.strerror})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
