"""Build a Hugging Face Hub cache folder by hand (the layout ``huggingface_hub`` reads), for offline tests."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def add_to_hub_cache(cache_dir: str | os.PathLike, repo_id: str, folder: str | os.PathLike,
                     revision: str = "main") -> Path:
    """Put the files of ``folder`` into ``cache_dir`` as snapshot ``revision`` of model ``repo_id``.

    Files go to ``blobs/<sha256>`` and the snapshot holds symbolic links to them, as the library does.
    Returns the snapshot folder.
    """
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    commit = hashlib.sha1("".join(str(p.relative_to(folder)) for p in files).encode() + revision.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for path in files:
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot
