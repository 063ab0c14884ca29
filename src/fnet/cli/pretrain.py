"""``fnet pretrain``: MLM + NSP pretraining from raw text files, on one process or under torchrun.

Options come from three layers, later ones winning: the built-in defaults (``DEFAULTS``), a run
config file (``--config run.toml`` / ``run.json`` whose keys are the option names), and the command
line. ``--config`` may instead point to a model ``config.json`` (it has FNetConfig fields), which then
replaces ``--preset``. The vocabulary size and pad id always come from the tokenizer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# option name -> (default, help). None as a default means "derived" (explained in the help).
DEFAULTS: dict[str, tuple[Any, str]] = {
    "train_files": (None, "text files: documents separated by blank lines, a sentence per line or long lines "
                          "(paragraphs) that are split into sentences"),
    "tokenizer": (None, "directory of a trained FNetTokenizer (fnet tokenizer train); defines vocab size and pad id"),
    "output": (None, "output directory: the final model (config.json, model.safetensors), tokenizer files, "
                     "metrics.jsonl, checkpoints/"),
    "config": (None, "a model config.json (replaces --preset), or a run config (.json/.toml) whose keys are these options"),
    "preset": ("fnet-mini", "model size preset: fnet-base, fnet-large, fnet-small, fnet-mini, fnet-tiny"),
    "dropout": (None, "override hidden_dropout_prob of the model config"),
    "seq_len": (128, "tokens per row: [CLS] A [SEP] B [SEP] plus padding"),
    "batch_size": (32, "rows per forward pass per process; global batch = batch size x grad accum x processes"),
    "grad_accum": (1, "micro-batches accumulated per optimizer step"),
    "max_steps": (1000, "optimizer steps (the schedule decays to 0 at this step)"),
    "lr": (5e-4, "peak learning rate"),
    "warmup_steps": (None, "linear warmup steps (default: 10%% of max steps, at most 10000)"),
    "schedule": ("linear", "decay after warmup: linear, cosine or constant"),
    "weight_decay": (0.01, "AdamW weight decay (never on biases and LayerNorm weights)"),
    "clip_grad": (1.0, "max global gradient norm (0: no clipping)"),
    "seed": (0, "seed of model init, pairs, masks, shuffling and dropout"),
    "eval_files": (None, "held-out text files for evaluation (MLM accuracy, NSP accuracy, loss)"),
    "eval_every": (0, "steps between evaluations (0: only at the end)"),
    "eval_batches": (20, "batches per evaluation (fixed pairs and masks)"),
    "save_every": (500, "steps between checkpoints in OUTPUT/checkpoints/step-N (0: none)"),
    "keep_last": (2, "checkpoints kept"),
    "time_budget": (0.0, "stop after this many minutes of training (checkpoint, evaluation and final model "
                          "as at max steps; the schedule still assumes max steps); 0: no limit"),
    "resume": (False, "continue from the newest complete checkpoint in OUTPUT (a fresh start when there is none)"),
    "bf16": (False, "bfloat16 autocast (CPU and GPU)"),
    "whole_word_mask": (False, "mask whole words (all pieces after a '▁' piece) instead of single pieces"),
    "short_seq_prob": (0.1, "probability of a shorter target length (BERT)"),
    "mlm_prob": (0.15, "share of tokens predicted by MLM"),
    "num_workers": (0, "threads that prepare the next step's batches during the current step"),
    "threads": (None, "torch CPU threads per process (default: cores / processes on this machine)"),
    "log_every": (10, "steps per metrics.jsonl line and progress update"),
    "data_cache": (None, "where tokenised shards are stored (default: OUTPUT/cache)"),
    "device": ("auto", "auto (CUDA when available), cpu or cuda"),
    "progress": (True, "show a progress bar (--no-progress to hide)"),
}
_FLAGS = {"resume", "bf16", "whole_word_mask"}
_TYPES = {"seq_len": int, "batch_size": int, "grad_accum": int, "max_steps": int, "lr": float, "warmup_steps": int,
          "weight_decay": float, "clip_grad": float, "seed": int, "eval_every": int, "eval_batches": int,
          "save_every": int, "keep_last": int, "short_seq_prob": float, "mlm_prob": float, "num_workers": int,
          "threads": int, "log_every": int, "dropout": float,
          "time_budget": float}
_LISTS = {"train_files", "eval_files"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain an FNet encoder (MLM + NSP) on raw text; runs under torchrun too",
        description="Pretrain FNetForPreTraining with BERT's masked-LM and next-sentence objectives. "
                    "Run it under `torchrun --nproc_per_node=N` for data parallelism.",
    )
    for name, (default, text) in DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        shown = argparse.SUPPRESS if default is None else default
        if name in _FLAGS:
            parser.add_argument(flag, action="store_true", default=None, help=text)
        elif name == "progress":
            parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=text)
        elif name in _LISTS:
            parser.add_argument(flag, nargs="+", default=None, metavar="FILE", help=text)
        else:
            parser.add_argument(flag, type=_TYPES.get(name, str), default=None,
                                help=text + ("" if default is None else f" (default: {shown})"))
    parser.set_defaults(func=run)


# ----------------------------------------------------------------------------- options


def _read_run_config(path: Path) -> dict[str, Any] | None:
    """The options in a run config, or None when ``path`` is a model config.json."""
    from fnet.config import FNetConfig
    import dataclasses

    if not path.is_file():
        raise FileNotFoundError(f"--config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path} is not valid TOML ({err})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a table/object of options")
    model_fields = {f.name for f in dataclasses.fields(FNetConfig)}
    if "model_type" in data or "hidden_size" in data or (data and set(data) <= model_fields):
        return None
    options = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(k for k in options if k not in DEFAULTS or k == "config")
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {unknown}; valid options are {sorted(set(DEFAULTS) - {'config'})}")
    return options


def resolve_options(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults <- run config file <- command line; checks required options and values."""
    options = {name: default for name, (default, _) in DEFAULTS.items()}
    options["model_config"] = None
    given = {k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None}
    if given.get("config"):
        path = Path(given["config"])
        run_config = _read_run_config(path)
        if run_config is None:
            options["model_config"] = str(path)
        else:
            for key, value in run_config.items():
                if key in _LISTS and isinstance(value, str):
                    value = [value]
                if key in _TYPES and value is not None:
                    value = _TYPES[key](value)
                options[key] = value
    options.update({k: v for k, v in given.items() if k != "config"})
    for name in ("train_files", "tokenizer", "output"):
        if not options[name]:
            raise ValueError(f"--{name.replace('_', '-')} is required (on the command line or in the --config file)")
    for name in ("seq_len", "batch_size", "grad_accum", "max_steps", "eval_batches", "keep_last", "log_every"):
        if options[name] < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {options[name]}")
    if options["warmup_steps"] is None:
        options["warmup_steps"] = min(10000, options["max_steps"] // 10)
    if options["device"] not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {options['device']!r}")
    return options


# ----------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    options = resolve_options(args)
    return pretrain(options)


def pretrain(options: dict[str, Any]) -> int:
    import torch

    from fnet.config import FNetConfig
    from fnet.data.collate import StepBatches
    from fnet.data.pretraining import (MaskingConfig, PretrainingBatches, ShardedCorpus, build_shards,
                                       evaluate_pretraining, pretraining_loss)
    from fnet.modeling import FNetForPreTraining
    from fnet.tokenization import FNetTokenizer
    from fnet.training import checkpointing
    from fnet.training.distributed import cleanup, default_threads, init_distributed, wrap_model
    from fnet.training.loop import Trainer, TrainerConfig
    from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler

    device = None if options["device"] == "auto" else options["device"]
    ctx = init_distributed(device)
    try:
        torch.set_num_threads(options["threads"] or default_threads(ctx))
        output = Path(options["output"])
        if not options["resume"] and checkpointing.list_checkpoints(output):
            raise ValueError(f"{output} already holds checkpoints; pass --resume to continue, or choose another --output")
        for name in options["train_files"] + (options["eval_files"] or []):
            if not Path(name).is_file():
                raise FileNotFoundError(f"text file not found: {name}")
        tokenizer = FNetTokenizer.from_pretrained(options["tokenizer"])
        overrides: dict[str, Any] = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
        if options["dropout"] is not None:
            overrides["hidden_dropout_prob"] = options["dropout"]
        if options["model_config"]:
            config = FNetConfig.from_json_file(options["model_config"], **overrides)
        else:
            config = FNetConfig.from_preset(options["preset"], **overrides)
        if config.max_position_embeddings < options["seq_len"]:
            config = FNetConfig.from_dict({**config.to_dict(), "max_position_embeddings": options["seq_len"]})

        # tokenise on rank 0; the other ranks then find the finished cache
        cache = Path(options["data_cache"] or output / "cache")
        shard_dirs = {}
        for rank_turn in (True, False):
            if ctx.is_main == rank_turn:
                shard_dirs["train"] = build_shards(options["train_files"], tokenizer, cache, progress=ctx.is_main and options["progress"])
                if options["eval_files"]:
                    shard_dirs["eval"] = build_shards(options["eval_files"], tokenizer, cache)
            ctx.barrier()
        masking = MaskingConfig(mlm_prob=options["mlm_prob"], whole_word=options["whole_word_mask"])
        train_set = PretrainingBatches(ShardedCorpus(shard_dirs["train"]), tokenizer, options["seq_len"], options["seed"],
                                       options["short_seq_prob"], masking)
        data = StepBatches(train_set, options["batch_size"], options["grad_accum"], ctx.rank, ctx.world_size,
                           seed=options["seed"])

        evaluate = None
        if options["eval_files"]:
            eval_batches: list = []
            if ctx.is_main:  # evaluation runs on rank 0; the other ranks only need to know it exists
                eval_set = PretrainingBatches(ShardedCorpus(shard_dirs["eval"]), tokenizer, options["seq_len"],
                                              options["seed"] + 1, options["short_seq_prob"],
                                              MaskingConfig(**vars(masking)))
                order = torch.Generator().manual_seed(options["seed"])
                n_eval = eval_set.num_examples(0)
                chosen = torch.randperm(n_eval, generator=order)[: options["eval_batches"] * options["batch_size"]].tolist()
                eval_batches = [eval_set.collate(0, chosen[i:i + options["batch_size"]])
                                for i in range(0, len(chosen), options["batch_size"])]

            def evaluate(model):
                return evaluate_pretraining(model, eval_batches, ctx.device)

        torch.manual_seed(options["seed"])
        model = FNetForPreTraining(config).to(ctx.device)
        optim_config = OptimConfig(lr=options["lr"], weight_decay=options["weight_decay"],
                                   warmup_steps=options["warmup_steps"], schedule=options["schedule"])
        optimizer = build_optimizer(model, optim_config)
        scheduler = build_scheduler(optimizer, optim_config, options["max_steps"])
        trainer_config = TrainerConfig(
            max_steps=options["max_steps"], output_dir=str(output), clip_grad=options["clip_grad"] or None,
            bf16=options["bf16"], seed=options["seed"], log_every=options["log_every"], eval_every=options["eval_every"],
            save_every=options["save_every"], keep_last=options["keep_last"], progress=options["progress"],
            num_workers=options["num_workers"], max_time_s=60.0 * options["time_budget"],
        )
        if ctx.is_main:
            output.mkdir(parents=True, exist_ok=True)
            print(f"fnet pretrain: {model.num_parameters():,} parameters, {train_set.corpus.num_tokens:,} training tokens, "
                  f"{data.steps_per_epoch} steps per epoch of {data.global_batch} pairs, {ctx.world_size} process(es) "
                  f"on {ctx.device}, {torch.get_num_threads()} threads each", file=sys.stderr)
        trainer = Trainer(wrap_model(model, ctx), optimizer, data, trainer_config, scheduler=scheduler,
                          loss_fn=pretraining_loss, evaluate=evaluate, dist=ctx,
                          extra_state={"options": {k: v for k, v in options.items()}})
        result = trainer.train(resume=bool(options["resume"]))
        if ctx.is_main:
            model.save_pretrained(output)
            tokenizer.save_pretrained(output)
            from fnet.checkpoint import atomic_write_text

            summary = {"steps": result.step, "resumed_from": result.resumed_from, "train": result.last_logs,
                       "eval": result.last_eval, "elapsed_s": trainer.elapsed}
            atomic_write_text(output / "run_config.json", json.dumps(options, indent=2, default=str) + "\n")
            atomic_write_text(output / "train_summary.json", json.dumps(summary, indent=2) + "\n")
            print(json.dumps(summary))
        ctx.barrier()
        return 0
    finally:
        cleanup(ctx)
