"""Runs of the sentence VAE (:mod:`fnet.vae.model`): train, encode, sample, interpolate, reconstruct.

Each is a typed config dataclass whose fields are the flags of ``fnet vae <command>`` and a function.
Training runs on the one :class:`fnet.training.loop.Trainer` (checkpoints, exact ``--resume``, time
budgets) in one process; the output folder is claimed like every fnet run (:mod:`fnet.run_folder`) and
holds ``vae_config.json``, ``model.safetensors``, the tokenizer, ``metrics.jsonl`` and ``vae_summary.json``.

Training text: every non-blank line of ``--train-files`` is one sentence; a line longer than
``--max-length`` pieces is skipped (counted in the summary), not cut: the model is of whole sentences.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.options import option, require, require_at_least
from fnet.training.run_options import RunOptions
from fnet.vae import POSTERIORS

logger = logging.getLogger(__name__)

__all__ = ["VAETrainConfig", "VAEEncodeConfig", "VAESampleConfig", "VAEInterpolateConfig", "Sentences", "train",
           "load", "encode", "sample", "interpolate", "reconstruct", "read_sentences",
           "sentence_rows", "posterior_means"]

CHECKPOINTS_KEEP = ("checkpoints",)


# ----------------------------------------------------------------------------- configs


@dataclass
class VAETrainConfig(RunOptions):
    """Options of ``fnet vae train`` (``--help`` shows each with its flag)."""

    train_files: list[str] | None = option(None, "UTF-8 text files, one sentence per line")
    tokenizer: str | None = option(None, "tokenizer folder or Hub id (e.g. from `fnet tokenizer train`)")
    output: str | None = option(None, "output folder: the VAE, its tokenizer, metrics.jsonl, checkpoints/")
    eval_files: list[str] | None = option(None, "held-out sentences (one per line) for eval_* metrics")
    preset: str = option("fnet-tiny", "shape of the encoder and of the decoder (an FNetConfig preset)")
    posterior: str = option("vmf", "vmf (fixed kappa, uniform prior on the sphere: a constant KL) or gaussian "
                                   "(N(0, I) prior: the baseline whose KL can collapse)", choices=POSTERIORS)
    latent_dim: int = option(64, "size k of the latent z (on the sphere S^(k-1) for vmf)")
    kappa: float = option(50.0, "vMF concentration, fixed: larger keeps z closer to the encoder's direction and "
                                "costs a higher constant KL (printed at the start)")
    kl_weight: float = option(1.0, "weight of the KL term (1: the ELBO)")
    max_length: int = option(32, "longest sentence in pieces; longer lines are skipped")
    batch_size: int = option(64, "sentences per optimizer step")
    max_steps: int = option(2000, "optimizer steps (the schedule decays to 0 at this step)")
    time_budget: float = option(0.0, "stop after this many minutes of training (the lr schedule follows whichever "
                                     "of steps and time is further along); 0: no limit")
    lr: float = option(1e-3, "peak learning rate")
    warmup_steps: int | None = option(None, "linear warmup steps (default: 5% of --max-steps)")
    dropout: float = option(0.1, "dropout in the encoder and the decoder")
    max_texts: int | None = option(None, "use at most this many training sentences, the first ones read")
    seed: int = option(0, "seed of the initialisation, shuffling, masks and latent samples")
    save_every: int = option(500, "steps between checkpoints in OUTPUT/checkpoints/step-N (0: none)")
    eval_every: int = option(0, "steps between evaluations on --eval-files (0: at the end only)")

    def checked(self) -> "VAETrainConfig":
        """This config with derived defaults filled in; raises ``ValueError`` naming the flag to change."""
        from fnet.vae.model import VAEConfig

        require(self, "train_files", "tokenizer", "output")
        require_at_least(self, 1, "batch_size", "max_steps")
        self.check_run_options()
        VAEConfig(latent_dim=self.latent_dim, posterior=self.posterior, kappa=self.kappa,
                  max_length=self.max_length).validate()  # the model's own checks, in flag terms
        if self.kl_weight < 0:
            raise ValueError(f"--kl-weight must be >= 0, got {self.kl_weight}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.time_budget < 0 or self.eval_every < 0 or self.save_every < 0:
            raise ValueError("--time-budget, --eval-every and --save-every must be >= 0")
        if self.max_texts is not None and self.max_texts < 1:
            raise ValueError(f"--max-texts must be >= 1, got {self.max_texts}")
        warmup = self.max_steps // 20 if self.warmup_steps is None else self.warmup_steps
        if warmup > self.max_steps:
            raise ValueError(f"--warmup-steps {warmup} exceeds --max-steps {self.max_steps}")
        return dataclasses.replace(self, warmup_steps=warmup)


@dataclass
class _TrainedModel:
    """Options of every command that uses a trained VAE."""

    model: str | None = option(None, "the output folder of `fnet vae train` (required)")
    threads: int | None = option(None, "torch CPU threads")


@dataclass
class _Decoding(_TrainedModel):
    """Options every decoding command shares."""

    iterations: int = option(10, "mask-predict passes per sentence")

    def check_decoding(self) -> None:
        require(self, "model")
        require_at_least(self, 1, "iterations")


@dataclass
class VAEEncodeConfig(_TrainedModel):
    """Options of ``fnet vae encode``: one latent (the posterior's mean direction) per input line, blank
    lines included (as ``fnet embed``: row i is line i)."""

    input: str | None = option(None, "UTF-8 text file, one sentence per line (required)")
    output: str | None = option(None, "where to write the float32 (lines, latent_dim) array (required)",
                                metavar="FILE.npy")
    batch_size: int = option(64, "sentences per forward pass")


@dataclass
class VAESampleConfig(_Decoding):
    """Options of ``fnet vae sample``: sentences decoded from latents drawn from the prior."""

    num_samples: int = option(5, "sentences to write", metavar="N")
    seed: int = option(0, "seed of the latents")
    output: str | None = option(None, "write JSON lines here instead of stdout", metavar="FILE.jsonl")


@dataclass
class VAEInterpolateConfig(_Decoding):
    """Options of ``fnet vae interpolate``: sentences along the great circle between two sentences' latents."""

    start: str | None = option(None, "the first sentence (required)")
    end: str | None = option(None, "the last sentence (required)")
    points: int = option(7, "points from start to end, both included", metavar="N")
    output: str | None = option(None, "write JSON lines here instead of stdout", metavar="FILE.jsonl")


# ----------------------------------------------------------------------------- data


def read_sentences(name: str | Path, flag: str) -> list[str]:
    """The non-blank lines of a UTF-8 file, stripped (errors name ``flag``)."""
    from fnet.io import read_lines

    return [line.strip() for line in read_lines(name, flag) if line.strip()]


class Sentences:
    """Whole sentences as rows ``[CLS] x [SEP]``: an :class:`fnet.data.collate.EpochDataset`."""

    def __init__(self, texts: Sequence[str], tokenizer: Any, max_length: int, max_texts: int | None = None,
                 flag: str = "--train-files", chunk: int = 2048):
        self.pad_id = tokenizer.pad_token_id or 0
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.rows: list[np.ndarray] = []
        self.skipped = 0
        for start in range(0, len(texts), chunk):
            encoded = tokenizer(list(texts[start:start + chunk]), add_special_tokens=False, verbose=False)["input_ids"]
            for ids in encoded:
                if not 1 <= len(ids) <= max_length:
                    self.skipped += 1
                    continue
                self.rows.append(np.array([cls_id, *ids, sep_id], dtype=np.int64))
            if max_texts and len(self.rows) >= max_texts:
                self.rows = self.rows[:max_texts]
                break
        if not self.rows:
            raise ValueError(f"{flag}: no sentence of 1 to {max_length} pieces; raise --max-length or pass "
                             "one sentence per line")

    def num_examples(self, epoch: int) -> int:
        return len(self.rows)

    def collate(self, epoch: int, indices: Sequence[int]) -> dict[str, Any]:
        return collate_rows([self.rows[int(i)] for i in indices], self.pad_id)


def collate_rows(rows: Sequence[np.ndarray], pad_id: int) -> dict[str, Any]:
    """``input_ids`` and ``attention_mask`` (b, n) of rows padded to the longest."""
    import torch

    n = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), n), pad_id, dtype=torch.long)  # (b, n)
    mask = torch.zeros((len(rows), n), dtype=torch.long)  # (b, n)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.from_numpy(row)
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


# ----------------------------------------------------------------------------- training


def _vae_config(config: VAETrainConfig, tokenizer: Any):
    from fnet.config import FNetConfig
    from fnet.vae.model import VAEConfig

    net = FNetConfig.from_preset(config.preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                 hidden_dropout_prob=config.dropout,
                                 max_position_embeddings=max(config.max_length + 2, 64))
    missing = [name for name in ("cls_token_id", "sep_token_id", "mask_token_id", "pad_token_id")
               if getattr(tokenizer, name, None) is None]
    if missing:
        raise ValueError(f"--tokenizer {config.tokenizer} has no {', '.join(missing)}; use a tokenizer from "
                         "`fnet tokenizer train` or a BERT tokenizer")
    return VAEConfig(latent_dim=config.latent_dim, posterior=config.posterior, kappa=config.kappa,
                     max_length=config.max_length, cls_token_id=tokenizer.cls_token_id,
                     sep_token_id=tokenizer.sep_token_id, mask_token_id=tokenizer.mask_token_id,
                     pad_token_id=tokenizer.pad_token_id, fnet=net.to_dict())


@dataclass
class VAETrainResult:
    """What :func:`train` did; :meth:`summary` is ``OUTPUT/vae_summary.json``."""

    steps: int
    resumed_from: int | None
    kl_constant: float | None  # nats per sentence (vmf), None (gaussian)
    sentences: int
    skipped: int
    train: dict[str, float] = field(default_factory=dict)
    eval: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train(config: VAETrainConfig, callbacks: Sequence[Any] = ()) -> VAETrainResult:
    """Train a sentence VAE on ``config.train_files`` into ``config.output`` (one process)."""
    from fnet import harness, run_folder
    from fnet.run_folder import check_output_path
    from fnet.tokenization import AutoTokenizer

    config = config.checked()
    check_output_path(config.output)
    harness.check_device(config, training=True)  # before any work, as fnet pretrain
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer, flag="--tokenizer")
    with harness.start(config, command="vae", output=config.output, overwrite=config.overwrite,
                       resume=config.resume, keep=CHECKPOINTS_KEEP, training=True,
                       inputs={"--tokenizer": config.tokenizer, "--train-files": config.train_files,
                               "--eval-files": config.eval_files or []}) as run:
        if run.dist.world_size > 1:
            raise ValueError("fnet vae train runs in one process; start it without torchrun")
        if config.resume:
            run_folder.check_tokenizer(run.out.path, "--output", tokenizer, config.tokenizer)
        return _train(config, run, run.out, tokenizer, callbacks)


def _train(config: VAETrainConfig, run: Any, out: Any, tokenizer: Any, callbacks: Sequence[Any]) -> VAETrainResult:
    import torch

    ctx = run.dist

    from fnet.data.collate import StepBatches
    from fnet.io import atomic_write_text
    from fnet.training.loop import Trainer, TrainerConfig
    from fnet.vae.model import FNetVAE, vae_loss

    output = out.path
    texts = [t for name in config.train_files for t in read_sentences(name, "--train-files")]
    data_set = Sentences(texts, tokenizer, config.max_length, config.max_texts)
    held_out = None
    if config.eval_files:
        held = [t for name in config.eval_files for t in read_sentences(name, "--eval-files")]
        held_out = Sentences(held, tokenizer, config.max_length, flag="--eval-files")
    data = StepBatches(data_set, config.batch_size, seed=config.seed)

    torch.manual_seed(config.seed)
    model = FNetVAE(_vae_config(config, tokenizer))
    model.allowed_pieces.copy_(torch.tensor(tokenizer.text_piece_mask(), dtype=torch.bool))
    model = model.to(ctx.device).train()
    kl_constant = model.config.kl_constant()
    logger.info("%s sentences (%d longer than %d pieces skipped); %s posterior, latent %d%s; %s parameters",
                f"{len(data_set.rows):,}", data_set.skipped, config.max_length, config.posterior, config.latent_dim,
                f", kappa {config.kappa:g}: KL {kl_constant:.2f} nats per sentence" if kl_constant is not None else "",
                f"{sum(p.numel() for p in model.parameters()):,}")

    def loss_fn(module, batch):
        return vae_loss(module, batch, config.kl_weight)

    def evaluate(module) -> dict[str, float]:
        return evaluate_loss(module, held_out, config.batch_size, config.kl_weight, config.seed)

    optimizer, scheduler = config.optimizer_and_scheduler(model, config.lr, config.warmup_steps, config.max_steps)
    trainer_config = TrainerConfig(
        max_steps=config.max_steps, output_dir=str(output), clip_grad=config.clip_grad or None, seed=config.seed,
        log_every=config.log_every, save_every=config.save_every, keep_last=config.keep_last,
        progress=config.progress, max_time_s=60.0 * config.time_budget, eval_every=config.eval_every,
        eval_at_end=held_out is not None, bf16=run.precision == "bf16",
    )
    options = dataclasses.asdict(config)
    trainer = Trainer(model, optimizer, data, trainer_config, scheduler=scheduler, loss_fn=loss_fn,
                      evaluate=evaluate if held_out is not None else None, dist=ctx,
                      extra_state={"options": options}, callbacks=callbacks)
    trained = trainer.train(resume=config.resume)
    result = VAETrainResult(steps=trained.step, resumed_from=trained.resumed_from, kl_constant=kl_constant,
                            sentences=len(data_set.rows), skipped=data_set.skipped, train=trained.last_logs,
                            eval=trained.last_eval, elapsed_s=trainer.elapsed)
    model.eval().save(output)
    tokenizer.save_pretrained(str(output))
    out.record(tokenizer=tokenizer.fingerprint() if hasattr(tokenizer, "fingerprint") else None)
    atomic_write_text(output / "run_config.json", json.dumps(options, indent=2, default=str) + "\n")
    atomic_write_text(output / "vae_summary.json", json.dumps(result.summary(), indent=2) + "\n")
    return result


def evaluate_loss(model: Any, data_set: Sentences, batch_size: int, kl_weight: float, seed: int) -> dict[str, float]:
    """Held-out objective and its parts, with fixed masks and latent samples (``seed``): the same draws at
    every evaluation, so evaluations compare."""
    import torch

    from fnet.vae.model import vae_loss

    generator = torch.Generator().manual_seed(seed + 1)
    device = next(model.parameters()).device
    totals: dict[str, float] = {}
    rows = data_set.rows
    for start in range(0, len(rows), batch_size):
        batch = collate_rows(rows[start:start + batch_size], data_set.pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, stats = vae_loss(model, batch, kl_weight, generator)
        weight = len(batch["input_ids"]) / len(rows)
        for key, value in {"loss": float(loss), **stats}.items():
            totals[f"eval_{key}"] = totals.get(f"eval_{key}", 0.0) + weight * value
    return totals


# ----------------------------------------------------------------------------- using a trained VAE


def load(model_dir: str, flag: str = "--model"):
    """(the VAE in eval mode, its tokenizer) from the output folder of :func:`train`."""
    from fnet.tokenization import AutoTokenizer
    from fnet.vae.model import FNetVAE

    model = FNetVAE.load(model_dir, flag=flag)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, flag=flag)
    return model, tokenizer


def sentence_rows(texts: Sequence[str], tokenizer: Any, max_length: int) -> tuple[list[np.ndarray], int]:
    """``[CLS] x [SEP]`` rows of texts cut to ``max_length`` pieces, and how many were cut."""
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"] if texts else []
    cut = sum(len(ids) > max_length for ids in encoded)
    rows = [np.array([tokenizer.cls_token_id, *ids[:max_length], tokenizer.sep_token_id], dtype=np.int64)
            for ids in encoded]
    return rows, cut


def posterior_means(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 64,
                    with_pooled: bool = False):
    """(N, k) float32 posterior means (unit vectors for vmf) of ``texts`` (cut to the model's max length);
    with ``with_pooled`` also the (N, d) mean-pooled encoder states they are projected from."""
    import torch

    rows, _ = sentence_rows(texts, tokenizer, model.config.max_length)
    means, pooled = [], []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collate_rows(rows[start:start + batch_size], tokenizer.pad_token_id or 0)
            hidden = model.pooled(batch["input_ids"], batch["attention_mask"])  # (b, d)
            means.append(model.posterior_from_pooled(hidden).mean.float().numpy())
            pooled.append(hidden.float().numpy())
    k = model.config.latent_dim
    mean = np.concatenate(means) if means else np.zeros((0, k), np.float32)
    if with_pooled:
        return mean, (np.concatenate(pooled) if pooled else np.zeros((0, 0), np.float32))
    return mean


def encode(config: VAEEncodeConfig, overwrite: bool = False) -> dict[str, Any]:
    """Write ``config.output`` (.npy, one latent row per line of ``config.input``; an existing file only with
    ``overwrite``); returns a summary."""
    import torch

    from fnet import run_folder
    from fnet.io import read_lines

    require(config, "model", "input", "output")
    require_at_least(config, 1, "batch_size")
    if config.threads:
        torch.set_num_threads(config.threads)
    with run_folder.claim_file(config.output, overwrite=overwrite) as tmp:  # refused before any work
        model, tokenizer = load(config.model)
        texts = [line.strip() for line in read_lines(config.input, "--input")]  # every line, blank ones too
        means = posterior_means(model, tokenizer, texts, config.batch_size)
        with open(tmp, "wb") as handle:
            np.save(handle, means.astype(np.float32))
    return {"lines": len(texts), "blank": sum(not t for t in texts), "latent_dim": int(means.shape[1]),
            "output": config.output}


def reconstruct(model: Any, tokenizer: Any, texts: Sequence[str], iterations: int = 10, true_length: bool = False,
                latents: Any = None) -> list[list[int]]:
    """Piece ids decoded (mask-predict) from the posterior means of ``texts`` (or from ``latents``); with
    ``true_length`` each sentence's own length is used instead of the length head's."""
    import torch

    rows, _ = sentence_rows(texts, tokenizer, model.config.max_length)
    z = torch.as_tensor(posterior_means(model, tokenizer, texts) if latents is None else latents)
    lengths = torch.tensor([len(r) - 2 for r in rows]) if true_length else None
    return model.decode(z, lengths, iterations)


def _decoded(tokenizer: Any, pieces: list[list[int]]) -> list[str]:
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in pieces]


def sample(config: VAESampleConfig) -> list[dict[str, Any]]:
    """``config.num_samples`` sentences decoded from prior latents: ``[{"text", "pieces"}]``."""
    import torch

    config.check_decoding()
    require_at_least(config, 1, "num_samples")
    if config.threads:
        torch.set_num_threads(config.threads)
    model, tokenizer = load(config.model)
    z = model.prior_sample(config.num_samples, torch.Generator().manual_seed(config.seed))
    pieces = model.decode(z, iterations=config.iterations)
    return [{"text": text, "pieces": len(ids)} for text, ids in zip(_decoded(tokenizer, pieces), pieces)]


def interpolate(config: VAEInterpolateConfig) -> list[dict[str, Any]]:
    """Sentences decoded at ``config.points`` evenly spaced points between the latents of ``start`` and ``end``
    (along the great circle for vmf, a straight line for gaussian): ``[{"t", "text"}]``."""
    import torch

    from fnet.vae.model import slerp

    config.check_decoding()
    require(config, "start", "end")
    require_at_least(config, 2, "points")
    if config.threads:
        torch.set_num_threads(config.threads)
    model, tokenizer = load(config.model)
    a, b = torch.as_tensor(posterior_means(model, tokenizer, [config.start, config.end]))
    ts = [i / (config.points - 1) for i in range(config.points)]
    if model.config.posterior == "vmf":
        z = torch.stack([slerp(a, b, t) for t in ts])
    else:
        z = torch.stack([(1 - t) * a + t * b for t in ts])
    texts = _decoded(tokenizer, model.decode(z, iterations=config.iterations))
    return [{"t": round(t, 4), "text": text} for t, text in zip(ts, texts)]
