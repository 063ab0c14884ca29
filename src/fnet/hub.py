"""Names of models and tokenizers: a local folder, or a Hugging Face Hub id through ``huggingface_hub``.

Everything in fnet that takes a model or tokenizer (``from_pretrained``, ``--model``, ``--tokenizer``,
``--teacher``) passes the name through :func:`resolve`, which returns a local folder:

* an existing folder is used as it is;
* anything else that is a valid Hub id (``owner/name`` or ``name``, optionally ``owner/name@REVISION``: a
  branch, tag or commit, the command line's way to pin one) is looked up with
  ``huggingface_hub.snapshot_download``, which keeps its own cache (``HF_HUB_CACHE`` / ``HF_HOME``, or
  ``cache_dir``) and honours ``HF_HUB_OFFLINE=1`` and ``local_files_only`` (the cache only, no network).

Only what fnet reads is fetched: configs, tokenizer files and the weights; ``model.safetensors`` is
preferred, and ``pytorch_model.bin`` (read later with ``weights_only=True``) is fetched only for a
repository without safetensors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["resolve", "is_hub_id", "split_revision", "HUB_OPTIONS"]

# the keyword arguments every ``from_pretrained`` passes on to :func:`resolve`
HUB_OPTIONS = ("revision", "cache_dir", "local_files_only", "token")

# everything fnet can read from a model or tokenizer folder, except the weights
_METADATA = ["*.json", "*.model", "vocab.txt", "merges.txt", "*.toml", "modules.json", "1_Pooling/*"]
_SAFETENSORS = ["*.safetensors", "*.safetensors.index.json"]
_TORCH = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def is_hub_id(name: str) -> bool:
    return bool(_ID.match(name)) and ".." not in name and not name.endswith((".", "-"))


def split_revision(name: str, revision: str | None = None, flag: str = "--model") -> tuple[str, str | None]:
    """``owner/name@rev`` -> (``owner/name``, ``rev``); a ``revision`` given as well must agree."""
    if "@" not in name:
        return name, revision
    name, _, pinned = name.rpartition("@")
    if not pinned or not name:
        raise FileNotFoundError(f"{flag} {name}@{pinned}: expected ID@REVISION (a branch, tag or commit)")
    if revision is not None and revision != pinned:
        raise ValueError(f"{flag} {name}@{pinned} pins revision {pinned!r} but revision={revision!r} was passed too; "
                         "give one")
    return name, pinned


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve(name_or_path: str | os.PathLike, *, what: str = "model", flag: str = "--model",
            revision: str | None = None, cache_dir: str | os.PathLike | None = None,
            local_files_only: bool | None = None, token: str | bool | None = None,
            weights: bool = True, subfolder: str = "") -> Path:
    """A local folder holding ``name_or_path``'s files (``weights=False``: configs and tokenizer only;
    ``subfolder``: the files sit in that folder of the repository or directory, as in transformers).

    Raises FileNotFoundError with one line naming the id, the flag and whether this machine is offline.
    """
    path = Path(name_or_path)
    if path.is_dir():
        if subfolder and not (path / subfolder).is_dir():
            raise FileNotFoundError(f"{flag} {name_or_path}: no subfolder {subfolder!r} in that folder")
        return path / subfolder
    name = str(name_or_path)
    if path.exists():
        raise FileNotFoundError(f"{flag} {name} is a file; expected a {what} folder or a Hugging Face Hub id")
    name, revision = split_revision(name, revision, flag)
    if not is_hub_id(name) or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{flag} {name}: no such {what} folder (and not a Hugging Face Hub id)")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub import errors as hub_errors
    except ImportError:  # pragma: no cover - a dependency of fnet, present unless uninstalled
        raise FileNotFoundError(f"{flag} {name}: no such folder, and huggingface_hub is not installed to look it up "
                                "as a Hub id (pip install huggingface_hub)") from None
    offline = _offline() or bool(local_files_only)
    kwargs = dict(revision=revision, cache_dir=str(cache_dir) if cache_dir else None, token=token,
                  local_files_only=offline)
    where = f" at revision {revision}" if revision else ""
    try:
        folder = Path(snapshot_download(name, allow_patterns=_patterns(_METADATA + (_SAFETENSORS if weights else []),
                                                                       subfolder), **kwargs)) / subfolder
        if weights and not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(name, allow_patterns=_patterns(_METADATA + _TORCH, subfolder),
                                            **kwargs)) / subfolder
    except (hub_errors.LocalEntryNotFoundError, hub_errors.CachedRepoTreeNotFoundError):
        state = ("this machine is offline (HF_HUB_OFFLINE=1 or local_files_only)" if offline
                 else "the Hub could not be reached")
        raise FileNotFoundError(f"{flag} {name}{where}: not in the Hugging Face cache "
                                f"({cache_dir or _cache_root()}) and {state}; download it once where the Hub is "
                                f"reachable, or pass a local {what} folder") from None
    except hub_errors.RevisionNotFoundError:
        raise FileNotFoundError(f"{flag} {name}@{revision}: no such revision on the Hugging Face Hub; "
                                "pin an existing branch, tag or commit after the @") from None
    except hub_errors.RepositoryNotFoundError:
        raise FileNotFoundError(f"{flag} {name}: no such {what} folder, and no such repository on the Hugging Face "
                                "Hub (or it is private: log in with `hf auth login`)") from None
    except hub_errors.HFValidationError:
        raise FileNotFoundError(f"{flag} {name}: no such {what} folder (and not a valid Hub id)") from None
    except (OSError, hub_errors.HfHubHTTPError) as err:
        raise FileNotFoundError(f"{flag} {name}: could not be fetched from the Hugging Face Hub "
                                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                                "set HF_HUB_OFFLINE=1 to use the cache only, or pass a local folder") from None
    return folder


def _patterns(patterns: list[str], subfolder: str) -> list[str]:
    """``patterns`` for files in ``subfolder`` of the repository (the root when empty)."""
    return [f"{subfolder.strip('/')}/{p}" for p in patterns] if subfolder else patterns


def _cache_root() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)
