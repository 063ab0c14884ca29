"""Typed run options: a dataclass is the one place a default is written; the CLI is built from it.

A run config (``PretrainConfig``, ``FinetuneConfig``, ...) is a dataclass whose fields are declared
with :func:`option`. From it:

* :func:`add_arguments` adds one ``--flag`` per field to an argparse parser, with the field's help
  text and default (shown in ``--help``), its type taken from the annotation;
* :func:`read_options_file` reads a ``run.toml`` / ``run.json`` whose keys are the field names
  (dashes or underscores); unknown keys fail with the list of valid ones;
* :func:`build` merges, later winning: the dataclass defaults, the options file, the command line.

Types understood: ``str``, ``int``, ``float``, ``bool`` (``--flag`` when the default is False,
``--flag/--no-flag`` when it is True), ``list[str]`` (``nargs="+"``) and ``X | None`` of those.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["option", "add_arguments", "read_file", "read_options_file", "check_keys", "build", "flag_name",
           "field_types"]


def option(default: Any = None, help: str = "", *, choices: typing.Sequence[Any] | None = None,
           metavar: str | None = None, cli: bool = True, flag: str | None = None, signed: bool = False,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field carrying its CLI help (``cli=False``: not a flag, still a file/API option).

    Numbers given by a flag or a run file are finite and >= 0 unless ``signed=True`` (:func:`build`
    checks, naming the flag); a command's own checks add the finer ranges."""
    metadata = {"help": help, "choices": choices, "metavar": metavar, "cli": cli, "flag": flag, "signed": signed}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def flag_of(cls: type, name: str) -> str:
    """The CLI flag of field ``name`` of dataclass ``cls`` (for error messages)."""
    return flag_name(next(f for f in dataclasses.fields(cls) if f.name == name))


def require(config: Any, *names: str, hint: str = "") -> None:
    """Raise ``ValueError`` naming the flag of the first of ``names`` that ``config`` leaves empty."""
    for name in names:
        if getattr(config, name) in (None, "", []):
            raise ValueError(f"{flag_of(type(config), name)} is required{hint}")


def require_at_least(config: Any, minimum: int, *names: str) -> None:
    """Raise ``ValueError`` naming the flag of the first of ``names`` whose value is below ``minimum``
    (None: a default decided later, not checked here)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < minimum:
            raise ValueError(f"{flag_of(type(config), name)} must be >= {minimum}, got {value}")


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(the base type, whether None is allowed) of an annotation."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return tp, False


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> base type (``list`` for list fields) of a dataclass."""
    hints = typing.get_type_hints(cls)
    out = {}
    for field in dataclasses.fields(cls):
        base, _ = _unwrap(hints[field.name])
        out[field.name] = list if typing.get_origin(base) is list or base is list else base
    return out


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                  only: typing.Iterable[str] | None = None, exclude: typing.Iterable[str] = (),
                  required: typing.Iterable[str] = ()) -> None:
    """One flag per CLI field of ``cls``; every flag defaults to None so :func:`build` sees what was given."""
    kinds = field_types(cls)
    only = set(only) if only is not None else None
    exclude, required = set(exclude), set(required)
    own = cls.__dict__.get("__annotations__", {})  # the class's own fields first, inherited ones after
    for field in sorted(dataclasses.fields(cls), key=lambda f: f.name not in own):
        if not field.metadata.get("cli", True) or field.name in exclude or (only is not None and field.name not in only):
            continue
        kind, default = kinds[field.name], _default_of(field)
        text = field.metadata.get("help", "")
        shown = "" if default is None or kind is bool or default == [] else f" (default: {default})"
        kwargs: dict[str, Any] = {"default": None, "dest": field.name}
        if field.name in required:
            kwargs["required"] = True
        if kind is bool:
            # True or None (a default decided later): --flag and --no-flag
            action = argparse.BooleanOptionalAction if default or default is None else "store_true"
            parser.add_argument(flag_name(field), action=action, help=text.replace("%", "%%"), **kwargs)
            continue
        if kind is list:
            kwargs["nargs"] = "+"
            kwargs["metavar"] = field.metadata.get("metavar") or "FILE"
        else:
            kwargs["type"] = kind if kind in (int, float) else str
            if field.metadata.get("metavar"):
                kwargs["metavar"] = field.metadata["metavar"]
        if field.metadata.get("choices"):
            kwargs["choices"] = list(field.metadata["choices"])
        parser.add_argument(flag_name(field), help=(text + shown).replace("%", "%%"), **kwargs)


def read_file(path: str | os.PathLike, flag: str = "--config") -> dict[str, Any]:
    """The table in a ``.toml`` or ``.json`` file, keys as written (errors name ``flag`` and the path)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as err:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{flag} {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'} ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{flag} {path} must hold a table/object of options")
    return data


def read_options_file(path: str | os.PathLike, cls: type, flag: str = "--config",
                      exclude: typing.Iterable[str] = ()) -> dict[str, Any]:
    """The options in a ``.toml`` or ``.json`` run config, keys checked against ``cls``'s fields
    (``exclude``: fields that a file may not set)."""
    data = read_file(path, flag)
    return check_keys({k.replace("-", "_"): v for k, v in data.items()}, cls, where=f"{flag} {path}", exclude=exclude)


def check_keys(options: dict[str, Any], cls: type, where: str, exclude: typing.Iterable[str] = ()) -> dict[str, Any]:
    valid = {f.name for f in dataclasses.fields(cls)} - set(exclude)
    unknown = sorted(k for k in options if k not in valid)
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {unknown}; valid options are {sorted(valid)}")
    return options


def _coerce(name: str, value: Any, kind: Any, signed: bool = False) -> Any:
    """``value`` as ``kind``; ``name`` is what the message names (the flag, or the file and key)."""
    if value is None:
        return None
    if kind is list:
        return [value] if isinstance(value, str) else [str(v) for v in value]
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if kind in (int, float):
        try:
            if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise ValueError  # a bool is not a number, 2.5 is not a count
            number = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None
        if kind is float and not math.isfinite(number):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if number < 0 and not signed:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
        return number
    return value if kind is not str else str(value)


def build(cls: type, args: argparse.Namespace | None = None, file_options: dict[str, Any] | None = None,
          **overrides: Any) -> Any:
    """``cls`` from its defaults <- ``file_options`` <- the flags given in ``args`` <- ``overrides``."""
    kinds = field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    given = {k: v for k, v in vars(args or argparse.Namespace()).items() if k in kinds and v is not None}
    for where, source in (("run file option", file_options or {}), ("flag", given), ("option", overrides)):
        for key, value in source.items():
            name = flag_name(fields[key]) if where == "flag" else f"{where} {key!r} ({flag_name(fields[key])})"
            values[key] = _coerce(name, value, kinds[key], fields[key].metadata.get("signed", False))
    return cls(**values)
