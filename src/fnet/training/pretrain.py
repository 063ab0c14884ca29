"""MLM + NSP pretraining from raw text files, on one process or under torchrun: :func:`pretrain`.

:class:`PretrainConfig` is the one place the options, their defaults and their help live; ``fnet
pretrain`` builds its flags from it (:func:`fnet.options.add_arguments`). The data pipeline is
:mod:`fnet.data.pretraining`, the loss :mod:`fnet.training.objectives`, the loop
:class:`fnet.training.loop.Trainer`. The vocabulary size and pad id always come from the tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnet.options import check_keys, option, read_file, require, require_at_least
from fnet.training.run_options import RunOptions

if TYPE_CHECKING:
    from fnet.harness import Run
    from fnet.data.tokenizer import SavedTokenizer

logger = logging.getLogger(__name__)



@dataclass
class PretrainConfig(RunOptions):
    """Options of a pretraining run (``fnet pretrain --help`` shows each with its flag)."""

    train_files: list[str] | None = option(None, "text files: documents separated by blank lines, a sentence per "
                                                 "line or long lines (paragraphs) that are split into sentences")
    tokenizer: str | None = option(None, "tokenizer folder or Hub id (spiece.model from `fnet tokenizer train`, or "
                                         "a BERT tokenizer.json/vocab.txt); defines vocab size and pad id")
    output: str | None = option(None, "output directory: the final model (config.json, model.safetensors), tokenizer "
                                      "files, metrics.jsonl, checkpoints/")
    model_config: str | None = option(None, "a model config.json that replaces preset (on the command line: --config)",
                                      cli=False)
    preset: str = option("fnet-mini", "model size preset: fnet-base, fnet-large, fnet-small, fnet-mini, fnet-tiny")
    init_from: str | None = option(None, "a saved model directory (e.g. made by `fnet grow`) whose config and weights "
                                         "start the run instead of --preset; the optimizer starts fresh",
                                   metavar="DIR")
    dropout: float | None = option(None, "override hidden_dropout_prob of the model config")
    seq_len: int = option(128, "tokens per row: [CLS] A [SEP] B [SEP] plus padding")
    batch_size: int = option(32, "rows per forward pass per process; global batch = batch size x grad accum x "
                                 "processes")
    grad_accum: int = option(1, "micro-batches accumulated per optimizer step")
    max_steps: int = option(1000, "optimizer steps (the schedule decays to 0 at this step)")
    lr: float = option(5e-4, "peak learning rate")
    warmup_steps: int | None = option(None, "linear warmup steps (default: 10% of max steps, at most 10000)")
    seed: int = option(0, "seed of model init, pairs, masks, shuffling and dropout")
    eval_files: list[str] | None = option(None, "held-out text files for evaluation (MLM accuracy, NSP accuracy, "
                                                "loss)")
    eval_every: int = option(0, "steps between evaluations (0: only at the end)")
    eval_batches: int = option(20, "batches per evaluation (fixed pairs and masks)")
    save_every: int = option(500, "steps between checkpoints in OUTPUT/checkpoints/step-N (0: none)")
    time_budget: float = option(0.0, "stop after this many minutes of training (checkpoint, evaluation and final "
                                     "model as at max steps); the lr schedule follows whichever of steps and time is "
                                     "further along, so it warms up and decays to 0 within the budget; 0: no limit")
    bf16: bool = option(False, "bfloat16 autocast, CPU and GPU (the same as --precision bf16)")
    whole_word_mask: bool = option(False, "mask whole words (a word-start piece and the pieces that "
                                         "continue it) instead of single pieces")
    short_seq_prob: float = option(0.1, "probability of a shorter target length (BERT)")
    mlm_prob: float = option(0.15, "share of tokens predicted by MLM")
    num_workers: int = option(0, "threads that prepare the next step's batches during the current step")
    data_cache: str | None = option(None, "where tokenised shards are stored (default: OUTPUT/cache)")

    def checked(self) -> "PretrainConfig":
        """This config with derived defaults filled in; raises ``ValueError`` naming the flag to change."""
        require(self, "train_files", "tokenizer", "output", hint=" (on the command line or in the --config file)")
        require_at_least(self, 1, "seq_len", "batch_size", "grad_accum", "max_steps", "eval_batches")
        self.check_run_options()
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"--warmup-steps {self.warmup_steps} must be between 0 and --max-steps {self.max_steps} "
                             "(the learning rate would never reach its peak)")
        warmup = min(10000, self.max_steps // 10) if self.warmup_steps is None else self.warmup_steps
        return dataclasses.replace(self, warmup_steps=warmup)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The options of ``--config PATH``: a run config's keys, or ``{"model_config": PATH}`` when the file
    is a model config.json (it has FNetConfig fields)."""
    from fnet.config import FNetConfig

    data = read_file(path, "--config")
    model_fields = {f.name for f in dataclasses.fields(FNetConfig)}
    if "model_type" in data or "hidden_size" in data or (data and set(data) <= model_fields):
        return {"model_config": str(path)}
    return check_keys({k.replace("-", "_"): v for k, v in data.items()}, PretrainConfig, where=f"--config {path}",
                      exclude=("model_config",))


@dataclass
class PretrainResult:
    """What :func:`pretrain` did; :meth:`summary` is ``OUTPUT/train_summary.json``."""

    steps: int  # optimizer steps done in total
    resumed_from: int | None  # the checkpoint step the run continued from
    train: dict[str, float] = field(default_factory=dict)  # the last metrics line
    eval: dict[str, float] = field(default_factory=dict)  # the last evaluation
    elapsed_s: float = 0.0  # training seconds, across resumes
    main_process: bool = True  # False on the ranks > 0 of a torchrun run (they write nothing)

    def summary(self) -> dict[str, Any]:
        return {"steps": self.steps, "resumed_from": self.resumed_from, "train": self.train, "eval": self.eval,
                "elapsed_s": self.elapsed_s}


def _model_config(config: PretrainConfig, tokenizer: SavedTokenizer):
    from fnet.config import FNetConfig

    overrides: dict[str, Any] = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if config.dropout is not None:
        overrides["hidden_dropout_prob"] = config.dropout
    if config.init_from:
        model_config = FNetConfig.from_pretrained(config.init_from)
        if model_config.vocab_size != overrides["vocab_size"]:
            raise ValueError(f"--init-from {config.init_from} has {model_config.vocab_size} ids but --tokenizer "
                             f"{overrides['vocab_size']}; pass the tokenizer saved with that model")
        model_config = FNetConfig.from_dict({**model_config.to_dict(), **overrides})
    elif config.model_config:
        model_config = FNetConfig.from_json_file(config.model_config, **overrides)
    else:
        model_config = FNetConfig.from_preset(config.preset, **overrides)
    if model_config.max_position_embeddings < config.seq_len:
        model_config = FNetConfig.from_dict({**model_config.to_dict(), "max_position_embeddings": config.seq_len})
    return model_config


def _model(config: PretrainConfig, model_config: Any, device: Any):
    """The model to train on ``device``: a seeded fresh init, or --init-from's weights; with the CPU
    kernels (oneDNN GEMMs in the training steps, the fused inference kernels in the evaluations)."""
    import torch

    from fnet.modeling import FNetForPreTraining
    from fnet.optimize import optimize_for_inference, optimize_for_training

    torch.manual_seed(config.seed)
    if config.init_from:  # the saved weights (all of FNetForPreTraining's) instead of a fresh init
        model = FNetForPreTraining.from_pretrained(config.init_from, config=model_config, strict=True)
    else:
        model = FNetForPreTraining(model_config)
    return optimize_for_training(optimize_for_inference(model.to(device)))


def _eval_batches(config: PretrainConfig, shards: Path, tokenizer: SavedTokenizer, masking: Any) -> list:
    """Fixed held-out batches: pairs and masks drawn once with ``seed + 1``, a seeded choice of rows."""
    import torch

    from fnet.data.pretraining import MaskingConfig, PretrainingBatches, ShardedCorpus

    eval_set = PretrainingBatches(ShardedCorpus(shards), tokenizer, config.seq_len, config.seed + 1,
                                  config.short_seq_prob, MaskingConfig(**vars(masking)))
    order = torch.Generator().manual_seed(config.seed)
    chosen = torch.randperm(eval_set.num_examples(0), generator=order)[: config.eval_batches * config.batch_size]
    chosen = chosen.tolist()
    return [eval_set.collate(0, chosen[i:i + config.batch_size]) for i in range(0, len(chosen), config.batch_size)]


def pretrain(config: PretrainConfig) -> PretrainResult:
    """Pretrain ``FNetForPreTraining`` as ``config`` says; writes ``config.output`` on rank 0.

    Raises ``ValueError`` / ``FileNotFoundError`` for bad options or files (messages name the flag).
    """
    from fnet import harness, run_folder
    from fnet.model_size import check_fits
    from fnet.run_folder import check_output_path
    from fnet.tokenization import AutoTokenizer
    from fnet.training.resume import CHECKPOINTS_DIR

    config = config.checked()
    # everything that can be checked before the expensive work, on every rank
    check_output_path(config.output)
    harness.check_device(config, training=True)
    for name in config.train_files + (config.eval_files or []):
        if not Path(name).is_file():
            raise FileNotFoundError(f"text file not found: {name}")
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer, flag="--tokenizer")
    check_fits(_model_config(config, tokenizer), f"--seq-len {config.seq_len} with the model's sizes")
    inputs = {"--tokenizer": config.tokenizer, "--train-files": config.train_files,
              "--eval-files": config.eval_files or [], "--init-from": config.init_from}
    run_folder.check_claim(config.output, "pretrain", overwrite=config.overwrite, resume=config.resume, inputs=inputs)
    with harness.start(config, command="pretrain", output=config.output, overwrite=config.overwrite,
                       resume=config.resume, keep=(CHECKPOINTS_DIR,), inputs=inputs, training=True) as run:
        return _pretrain(config, run, tokenizer)


def _pretrain(config: PretrainConfig, run: Run, tokenizer: SavedTokenizer) -> PretrainResult:
    """The run itself, writing under the claimed folder ``run.out.path``."""
    import torch

    from fnet.data.collate import StepBatches
    from fnet.data.pretraining import MaskingConfig, PretrainingBatches, ShardedCorpus, build_shards
    from fnet.io import atomic_write_text
    from fnet.run_folder import check_tokenizer
    from fnet.training.distributed import wrap_model
    from fnet.training.loop import Trainer, TrainerConfig
    from fnet.training.objectives import evaluate_pretraining, pretraining_loss

    ctx, out = run.dist, run.out
    output = out.path
    if config.resume:  # the run in OUTPUT was made with one tokenizer: refuse another
        check_tokenizer(output, "--output", tokenizer, config.tokenizer)
    if ctx.is_main:
        out.record(tokenizer=tokenizer.fingerprint())
    model_config = _model_config(config, tokenizer)

    # tokenise on rank 0; the other ranks then find the finished cache
    cache = Path(config.data_cache or output / "cache")
    shard_dirs = {}
    for rank_turn in (True, False):
        if ctx.is_main == rank_turn:
            shard_dirs["train"] = build_shards(config.train_files, tokenizer, cache,
                                               progress=ctx.is_main and config.progress)
            if config.eval_files:
                shard_dirs["eval"] = build_shards(config.eval_files, tokenizer, cache)
        ctx.barrier()
    masking = MaskingConfig(mlm_prob=config.mlm_prob, whole_word=config.whole_word_mask)
    train_set = PretrainingBatches(ShardedCorpus(shard_dirs["train"]), tokenizer, config.seq_len, config.seed,
                                   config.short_seq_prob, masking)
    data = StepBatches(train_set, config.batch_size, config.grad_accum, ctx.rank, ctx.world_size, seed=config.seed)

    evaluate = None
    if config.eval_files:
        # evaluation runs on rank 0; the other ranks only need to know it exists
        eval_batches = _eval_batches(config, shard_dirs["eval"], tokenizer, masking) if ctx.is_main else []

        def evaluate(model):
            return evaluate_pretraining(model, eval_batches, ctx.device)

    model = _model(config, model_config, ctx.device)
    optimizer, scheduler = config.optimizer_and_scheduler(model, config.lr, config.warmup_steps, config.max_steps)
    trainer_config = TrainerConfig(
        max_steps=config.max_steps, output_dir=str(output), clip_grad=config.clip_grad or None, bf16=run.precision == "bf16",
        seed=config.seed, log_every=config.log_every, eval_every=config.eval_every, save_every=config.save_every,
        keep_last=config.keep_last, progress=config.progress, num_workers=config.num_workers,
        max_time_s=60.0 * config.time_budget,
    )
    options = dataclasses.asdict(config)
    if ctx.is_main:
        logger.info("%s parameters, %s training tokens, %d steps per epoch of %d pairs, %d process(es) on %s, "
                    "%d threads each", f"{model.num_parameters():,}", f"{train_set.corpus.num_tokens:,}",
                    data.steps_per_epoch, data.global_batch, ctx.world_size, ctx.device, torch.get_num_threads())
    trainer = Trainer(wrap_model(model, ctx), optimizer, data, trainer_config, scheduler=scheduler,
                      loss_fn=pretraining_loss, evaluate=evaluate, dist=ctx, extra_state={"options": options})
    trained = trainer.train(resume=config.resume)
    result = PretrainResult(steps=trained.step, resumed_from=trained.resumed_from, train=trained.last_logs,
                            eval=trained.last_eval, elapsed_s=trainer.elapsed, main_process=ctx.is_main)
    if ctx.is_main:
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
        atomic_write_text(output / "run_config.json", json.dumps(options, indent=2, default=str) + "\n")
        atomic_write_text(output / "train_summary.json", json.dumps(result.summary(), indent=2) + "\n")
    ctx.barrier()
    return result
