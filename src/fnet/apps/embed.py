"""``fnet embed``: one sentence embedding (a float32 row of a .npy file) per line of a text file, on
any device (:mod:`fnet.harness`); under torchrun each rank embeds a share and rank 0 writes the file.
The embedding recipe itself (pooling, normalisation, batching) is :mod:`fnet.embeddings`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.embeddings import POOLINGS, embedding_defaults, encode_texts, load_tokenizer
from fnet.harness import QUANTIZE_CHOICES, QUANTIZE_HELP, DeviceOptions, check_quantize_device
from fnet.io import read_lines
from fnet.options import option, require

__all__ = ["EmbedConfig", "embed_file", "read_lines"]


@dataclass
class EmbedConfig(DeviceOptions):
    """Options of ``fnet embed`` (one float32 row per input line)."""

    model: str | None = option(None, "model folder or Hugging Face Hub id (an fnet model, a BERT checkpoint, or a "
                                     "student made by fnet distill)")
    input: str | None = option(None, "UTF-8 text file, one text per line; blank lines get a row too (embedded as "
                                     "[CLS] [SEP]) and are listed in the record")
    output: str | None = option(None, "the .npy file to write (N rows x hidden size, float32); the record goes "
                                      "beside it as .json")
    max_length: int | None = option(None, "tokens per text, longer ones are truncated and listed in the record "
                                          "(default: the model folder's max_seq_length, else its position table)")
    pooling: str | None = option(None, "mean or cls (default: the model folder's sentence-transformers pooling, "
                                       "else mean)", choices=POOLINGS)
    normalize: bool | None = option(None, "unit-length rows (default: as the model folder's modules.json says, "
                                          "else off); --no-normalize turns it off")
    batch_size: int = option(32, "texts per forward pass (batches group texts of similar length)")
    quantize: str | None = option(None, QUANTIZE_HELP, choices=QUANTIZE_CHOICES)
    tokenizer: str | None = option(None, "tokenizer folder or Hub id (default: the model's)")
    overwrite: bool = option(False, "replace an existing --output file")
    progress: bool = option(True, "show a progress bar in texts/s (--no-progress to hide)")


def _npy_bytes(array: "np.ndarray") -> bytes:
    """The .npy file of ``array`` in memory: written with one ``write`` call, a file-size limit or a full
    disk raises instead of leaving a silently truncated file (``np.save`` to a file writes through C)."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def embed_file(config: EmbedConfig) -> dict[str, Any]:
    """Embed every line of ``config.input`` into ``config.output`` (.npy) plus a record (.json beside it)."""
    from fnet import harness, run_folder
    from fnet.io import atomic_write, atomic_write_text
    from fnet.modeling import FNetModel
    from fnet.optimize import optimize_for_inference

    require(config, "model", "input", "output")
    harness.check_device(config)
    output = Path(config.output)
    if output.suffix != ".npy":
        raise ValueError(f"--output {output} must end in .npy")
    if config.quantize not in (None, *QUANTIZE_CHOICES):
        raise ValueError(f"--quantize {config.quantize!r} is not a choice; use {' or '.join(QUANTIZE_CHOICES)}")
    if config.max_length is not None and config.max_length < 1:
        raise ValueError(f"--max-length must be >= 1 (leave it out for the model's own), got {config.max_length}")
    record_path = output.with_suffix(".json")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"--output {output}: the folder {output.parent} does not exist")
    from fnet.hub import resolve

    folder = resolve(config.model, what="model", flag="--model")
    inputs = {"--model": str(folder), "--input": config.input, "--tokenizer": config.tokenizer}
    run_folder.check_finished(folder)
    claim = {"overwrite": config.overwrite, "inputs": inputs, "side_files": (record_path,)}
    run_folder.check_claim_file(output, **claim)  # the .npy and its record, before any work
    texts = read_lines(config.input)
    # fused CPU kernels (or int8 Linear layers), as predict uses
    with harness.start(config, command="embed") as run:
        check_quantize_device(config.quantize, run.device)
        model = FNetModel.from_pretrained(folder, strict=True).to(run.device)
        model = optimize_for_inference(model, quantize_weights=config.quantize)
        model.name_or_path = str(folder)
        tokenizer = load_tokenizer(config.tokenizer or folder)
        if config.tokenizer:  # the model reads ids of the tokenizer it was trained with
            run_folder.check_tokenizer(folder, "--model", tokenizer, config.tokenizer)
        result = encode_texts(model, texts, tokenizer, batch_size=config.batch_size, max_length=config.max_length,
                              pooling=config.pooling, normalize=config.normalize, progress=config.progress, run=run)
        if not run.is_main:  # rank 0 writes
            return {}
    bad = ~np.isfinite(result.embeddings).all(axis=1)
    if bad.any():
        raise ValueError(f"--model {config.model} gave NaN or inf embeddings for {int(bad.sum())} of {len(bad)} "
                         f"line(s) (first: row {int(np.argmax(bad))}); its weights are broken: nothing was written")
    with run_folder.claim_file(output, **claim) as tmp:
        atomic_write(tmp, lambda handle: handle.write(_npy_bytes(result.embeddings)))
    record = {"model": str(config.model), "input": str(config.input), "output": str(output),
              "rows": len(texts), "dim": int(result.embeddings.shape[1]), "pooling": result.pooling,
              "normalize": result.normalize, "max_length": result.max_length, "quantize": config.quantize,
              "recipe": embedding_defaults(folder).source,
              "blank_rows": result.empty, "truncated_rows": result.truncated,
              "texts_per_s": round(result.stats["texts_per_s"], 2), "tokens_per_s": round(result.stats["tokens_per_s"], 1),
              "seconds": result.stats["seconds"]}
    atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    return record
