"""Distil a pretrained BERT-family encoder into a fast FNet student: :func:`distill`.

The student is the teacher with its attention replaced by the parameter-free Fourier mixing. It
starts from the teacher wherever shapes allow (:func:`student_from_teacher`): word, position and
type embeddings and their LayerNorm, every feed-forward and output LayerNorm, the pooler; BERT's
attention output LayerNorm (``attention.output.LayerNorm``) becomes the Fourier sublayer's norm
(``fourier.output.LayerNorm``), since both normalise ``x + mix(x)``. Queries, keys, values and the
attention output projection have no counterpart and are dropped. A student with fewer layers takes
evenly spaced teacher layers (the last student layer always maps to the last teacher layer).

The un-scaled transform ``Re(F_n x F_d)`` is about ``sqrt(n d / 2)`` times larger than its input, so a
student that adds it to the residual stream where BERT added a small attention output starts far from
its teacher (all-MiniLM-L6-v2: embedding cosine 0.10). The student therefore gets LayerScale
(``FNetConfig.mixing_layer_scale``, Touvron et al. 2021): a learned per-channel gain on each Fourier
output, starting at ``--layer-scale`` (1e-3: cosine 0.50 at the start, about what a student with no
mixing at all gets, and 0.80 instead of 0.60 on training batches after 150 steps;
benchmarks/results/distill/). ``--layer-scale 0`` keeps the reference block that transformers' FNet runs.

The student then learns to reproduce the teacher on unlabelled text (``--targets``):

* ``hidden``: every student layer's hidden states match its teacher layer's (MSE over real tokens);
* ``pooled``: the sentence embedding (the teacher's pooling over the last layer) matches, by cosine
  distance (``--pooled-loss cosine``) or MSE;
* ``both``: the sum (the default; benchmarks/results/distill/ has the measurements that chose it).

Training runs on the one :class:`fnet.training.loop.Trainer` (checkpoints, exact resume, torchrun);
the teacher is frozen and only evaluated. The output folder is an ordinary fnet model folder plus the
teacher's tokenizer and sentence-embedding recipe, so ``FNetModel.from_pretrained``, ``fnet embed``
and ``fnet finetune`` take it as is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence, TYPE_CHECKING

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.harness import CPU_BF16_HELP, PRECISIONS
from fnet.options import option, require, require_at_least
from fnet.training.run_options import RunOptions

if TYPE_CHECKING:
    from fnet.harness import Run
    from fnet.data.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

__all__ = ["DistillConfig", "DistillResult", "distill", "student_from_teacher", "teacher_layer_map",
           "DistillTexts", "distillation_loss"]

TARGETS = ("hidden", "pooled", "both")
POOLED_LOSSES = ("cosine", "mse")


@dataclass
class DistillConfig(RunOptions):
    """Options of a distillation run (``fnet distill --help`` shows each with its flag)."""

    cpu_bf16: ClassVar[bool] = True  # bf16 by default on a CPU with hardware bfloat16 (see fnet.harness)
    precision: str | None = option(None, CPU_BF16_HELP, choices=PRECISIONS)

    teacher: str | None = option(None, "the BERT-family teacher: a model folder or Hugging Face Hub id (e.g. "
                                       "sentence-transformers/all-MiniLM-L6-v2)")
    train_files: list[str] | None = option(None, "UTF-8 text files; every non-blank line is a training text, lines "
                                                 "longer than --seq-len tokens are cut into consecutive windows")
    output: str | None = option(None, "output folder: the student model, the teacher's tokenizer and pooling "
                                      "recipe, metrics.jsonl, checkpoints/")
    layers: int | None = option(None, "student layers (default: the teacher's); fewer take evenly spaced teacher "
                                      "layers")
    seq_len: int = option(128, "longest training text in tokens, [CLS] and [SEP] included")
    batch_size: int = option(32, "texts per optimizer step per process")
    max_steps: int = option(3000, "optimizer steps (the schedule decays to 0 at this step)")
    time_budget: float = option(0.0, "stop after this many minutes of training (checkpoint and final model as at "
                                     "--max-steps); the lr schedule follows whichever of steps and time is further "
                                     "along, so it warms up and decays to 0 within the budget; 0: no limit")
    lr: float = option(5e-4, "peak learning rate")
    warmup_steps: int | None = option(None, "linear warmup steps (default: 5% of --max-steps)")
    targets: str = option("both", "what the student matches: hidden (every layer's hidden states), pooled (the "
                                  "sentence embedding) or both", choices=TARGETS)
    pooled_loss: str = option("cosine", "loss on the sentence embedding: cosine (1 - cosine) or mse",
                              choices=POOLED_LOSSES)
    pooling: str | None = option(None, "sentence pooling of the pooled target: mean or cls (default: the teacher "
                                       "folder's sentence-transformers recipe, else mean)")
    attention_layers: int = option(0, "keep the teacher's attention in this many top layers (an FNet hybrid, as the "
                                      "FNet paper's: slower, closer to the teacher); 0: every layer mixes by Fourier")
    layer_scale: float = option(1e-3, "the student's Fourier sublayers start with this learned per-channel gain "
                                      "on their output (LayerScale), so the residual stream starts as the teacher's; "
                                      "0: none (the reference FNet block, as transformers' FNet runs it)")
    dropout: float = option(0.0, "dropout while distilling (the saved student keeps the teacher's rate for "
                                 "fine-tuning)")
    max_texts: int | None = option(None, "use at most this many training texts (windows), the first ones read")
    seed: int = option(0, "seed of the shuffling and dropout")
    group_by_length: bool = option(True, "batches of texts of about one length (sorted in pools of 50 batches, the "
                                         "batches shuffled): less padding, faster on varied lengths "
                                         "(--no-group-by-length: random batches)")
    save_every: int = option(200, "steps between checkpoints in OUTPUT/checkpoints/step-N (0: none)")

    def checked(self) -> "DistillConfig":
        """This config with derived defaults filled in; raises ``ValueError`` naming the flag to change."""
        require(self, "teacher", "train_files", "output")
        require_at_least(self, 1, "seq_len", "batch_size", "max_steps")
        self.check_run_options()
        if self.seq_len < 3:
            raise ValueError(f"--seq-len must be >= 3 ([CLS], a token, [SEP]), got {self.seq_len}")
        if self.layers is not None and self.layers < 1:
            raise ValueError(f"--layers must be >= 1, got {self.layers}")
        if self.targets not in TARGETS:
            raise ValueError(f"--targets must be one of {', '.join(TARGETS)}, got {self.targets!r}")
        if self.pooled_loss not in POOLED_LOSSES:
            raise ValueError(f"--pooled-loss must be one of {', '.join(POOLED_LOSSES)}, got {self.pooled_loss!r}")
        if self.pooling not in (None, "mean", "cls"):
            raise ValueError(f"--pooling must be mean or cls, got {self.pooling!r}")
        if self.attention_layers < 0:  # above the student's layers: student_from_teacher says so
            raise ValueError(f"--attention-layers must be >= 0, got {self.attention_layers}")
        if self.layer_scale < 0:
            raise ValueError(f"--layer-scale must be >= 0 (0: no LayerScale), got {self.layer_scale}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.max_texts is not None and self.max_texts < 1:
            raise ValueError(f"--max-texts must be >= 1, got {self.max_texts}")
        if self.warmup_steps is not None and self.warmup_steps > self.max_steps:
            raise ValueError(f"--warmup-steps {self.warmup_steps} must be at most --max-steps {self.max_steps} (the "
                             "learning rate would never reach its peak)")
        warmup = self.max_steps // 20 if self.warmup_steps is None else self.warmup_steps
        return dataclasses.replace(self, warmup_steps=warmup)


# ----------------------------------------------------------------------------- the student


def teacher_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer (0-based) each student layer starts from and is matched to: evenly spaced, last to last."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"--layers must be between 1 and the teacher's {teacher_layers} layers, got {student_layers}")
    return [round((i + 1) * teacher_layers / student_layers) - 1 for i in range(student_layers)]


def _check_teacher(config: Any, where: str) -> None:
    if config.token_mixer != "attention" or config.hybrid_layout or config.attention_layers:
        raise ValueError(f"--teacher {where} is not a BERT-family checkpoint (its layers mix with "
                         f"{config.token_mixer!r}); pass a BERT/MiniLM/sentence-transformers folder or Hub id")


def student_from_teacher(teacher: Any, layers: int | None = None, dropout: float | None = None,
                         layer_scale: float | None = None, attention_layers: int = 0):
    """An :class:`fnet.modeling.FNetModel` with Fourier mixing, initialised from ``teacher`` (an fnet
    model with the ``attention`` mixer, e.g. ``FNetModel.from_pretrained(bert_dir)``).

    Returns ``(student, report)``: ``report`` lists the copied, freshly initialised and dropped keys.
    """
    from fnet.config import FNetConfig
    from fnet.modeling import FNetModel

    teacher = teacher.base_model
    _check_teacher(teacher.config, getattr(teacher, "name_or_path", None) or "model")
    layers = layers or teacher.config.num_hidden_layers
    mapping = teacher_layer_map(teacher.config.num_hidden_layers, layers)
    changes: dict[str, Any] = {"token_mixer": "fourier", "num_hidden_layers": layers}
    if dropout is not None:
        changes["hidden_dropout_prob"] = dropout
    if layer_scale:
        changes["mixing_layer_scale"] = layer_scale
    if attention_layers:
        if attention_layers > layers:
            raise ValueError(f"--attention-layers {attention_layers} exceeds the student's {layers} layers")
        changes.update(hybrid_layout="top", hybrid_attention_layers=attention_layers)
    student = FNetModel(FNetConfig.from_dict({**teacher.config.to_dict(), **changes}),
                        add_pooling_layer=teacher.pooler is not None)
    source = teacher.state_dict()
    state = student.state_dict()
    report: dict[str, list[str]] = {"copied": [], "initialised": [], "dropped": []}
    used = set()
    for key in state:
        origin = key
        if key.startswith("encoder.layer."):
            _, _, index, rest = key.split(".", 3)
            rest = rest.replace("fourier.output.LayerNorm.", "attention.output.LayerNorm.")
            origin = f"encoder.layer.{mapping[int(index)]}.{rest}"
        if origin in source and source[origin].shape == state[key].shape:
            state[key] = source[origin].clone()
            report["copied"].append(key)
            used.add(origin)
        else:
            report["initialised"].append(key)
    for index in student.config.attention_layer_ids():  # a kept attention layer starts as the teacher's
        key = f"encoder.layer.{index}.attention.layer_scale"
        if key in state:
            state[key].fill_(1.0)
    report["dropped"] = sorted(k for k in source if k not in used)
    student.load_state_dict(state)
    report["layer_map"] = mapping  # type: ignore[assignment]
    return student, report


# ----------------------------------------------------------------------------- the data


class DistillTexts:
    """Token windows of unlabelled text: an :class:`fnet.data.collate.EpochDataset` (the same texts every epoch).

    Every non-blank line is a text; a line longer than ``seq_len - 2`` tokens is cut into consecutive
    windows. Each example is ``[CLS] window [SEP]``; a batch is padded to its longest example.
    """

    def __init__(self, files: Sequence[str], tokenizer: Tokenizer, seq_len: int, max_texts: int | None = None,
                 chunk: int = 2048):
        self.seq_len, self.pad_id = seq_len, tokenizer.pad_token_id or 0
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        if cls_id is None or sep_id is None:
            raise ValueError("the teacher's tokenizer has no [CLS]/[SEP] tokens; --teacher must be a BERT-family model")
        body = seq_len - 2
        self.examples: list[np.ndarray] = []
        for name in files:
            lines = _read_lines(name)
            for start in range(0, len(lines), chunk):
                encoded = tokenizer(lines[start:start + chunk], add_special_tokens=False,
                                    verbose=False)["input_ids"]  # long lines are cut into windows below
                for ids in encoded:
                    for cut in range(0, len(ids), body):
                        self.examples.append(np.array([cls_id, *ids[cut:cut + body], sep_id], dtype=np.int64))
                if max_texts and len(self.examples) >= max_texts:
                    break
            if max_texts and len(self.examples) >= max_texts:
                self.examples = self.examples[:max_texts]
                break
        if not self.examples:
            raise ValueError(f"--train-files {' '.join(files)} hold no text")
        self.num_tokens = int(sum(len(e) for e in self.examples))

    def num_examples(self, epoch: int) -> int:
        return len(self.examples)

    def collate(self, epoch: int, indices: Sequence[int]) -> dict[str, Any]:
        import torch

        rows = [self.examples[int(i)] for i in indices]
        n = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), n), self.pad_id, dtype=torch.long)  # (b, n)
        mask = torch.zeros((len(rows), n), dtype=torch.long)  # (b, n)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.from_numpy(row)
            mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(input_ids)}


def _read_lines(name: str) -> list[str]:
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"--train-files {name}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"--train-files {name} is not UTF-8 text (byte {err.start}); convert it to UTF-8") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- the objective


def distillation_loss(student_out: Any, teacher_out: Any, attention_mask: Any, layer_map: Sequence[int],
                      targets: str = "both", pooled_loss: str = "cosine", pooling: str = "mean"):
    """(loss, stats) of a student against its teacher on one batch (both run with hidden states).

    ``hidden``: mean over student layers ``i`` of the MSE between student hidden state ``i + 1`` and
    teacher hidden state ``layer_map[i] + 1`` over real tokens (index 0 is the embeddings' output);
    ``pooled``: ``1 - cos`` (or MSE) of the pooled last hidden states. ``stats`` always reports both
    the hidden MSE and the embedding cosine, whatever is optimised.
    """
    import torch

    from fnet.embeddings import pool

    mask = attention_mask.to(student_out.last_hidden_state.dtype).unsqueeze(-1)  # (b, n, 1)
    count = mask.sum() * student_out.last_hidden_state.shape[-1]
    hidden = sum(
        (((student_out.hidden_states[i + 1] - teacher_out.hidden_states[t + 1]) ** 2) * mask).sum() / count
        for i, t in enumerate(layer_map)
    ) / len(layer_map)
    s_vec = pool(student_out.last_hidden_state, attention_mask, pooling)  # (b, d)
    t_vec = pool(teacher_out.last_hidden_state, attention_mask, pooling)  # (b, d)
    cosine = torch.nn.functional.cosine_similarity(s_vec, t_vec, dim=-1).mean()
    pooled = (1.0 - cosine) if pooled_loss == "cosine" else ((s_vec - t_vec) ** 2).mean()
    loss = {"hidden": hidden, "pooled": pooled, "both": hidden + pooled}[targets]
    return loss, {"hidden_mse": float(hidden.detach()), "cosine": float(cosine.detach())}


# ----------------------------------------------------------------------------- the run


@dataclass
class DistillResult:
    """What :func:`distill` did; :meth:`summary` is ``OUTPUT/distill_summary.json``."""

    steps: int
    resumed_from: int | None
    train: dict[str, float] = field(default_factory=dict)  # the last metrics line
    elapsed_s: float = 0.0  # training seconds, across resumes
    init: dict[str, int] = field(default_factory=dict)  # how many student tensors came from the teacher
    main_process: bool = True

    def summary(self) -> dict[str, Any]:
        return {"steps": self.steps, "resumed_from": self.resumed_from, "train": self.train,
                "elapsed_s": self.elapsed_s, "init": self.init}


def load_teacher(name: str):
    """The teacher (an attention-mixer ``FNetModel``) and its local folder; errors name ``--teacher``."""
    from fnet.hub import resolve
    from fnet.modeling import FNetModel

    folder = resolve(name, what="teacher model", flag="--teacher")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"--teacher {name}: no config.json in {folder}")
    model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    if model_type not in ("bert", "fnet"):
        raise ValueError(f"--teacher {name} is a {model_type!r} checkpoint, not a BERT-family one; pass a BERT, "
                         "MiniLM or sentence-transformers (BERT) folder or Hub id")
    teacher = FNetModel.from_pretrained(folder, strict=True)
    _check_teacher(teacher.config, name)
    teacher.name_or_path = str(folder)
    return teacher, folder


def distill(config: DistillConfig, tokenizer: Tokenizer | None = None, callbacks: Sequence[Any] = ()) -> DistillResult:
    """Distil ``config.teacher`` into an FNet student written to ``config.output`` (rank 0).

    ``tokenizer``: the teacher's tokenizer (default: ``fnet.AutoTokenizer`` on the teacher's folder);
    ``callbacks``: :class:`fnet.training.loop.Callback` objects for the trainer.
    Raises ``ValueError`` / ``FileNotFoundError`` for bad options or files (messages name the flag).
    """
    from fnet import harness
    from fnet.run_folder import check_output_path
    from fnet.training.resume import CHECKPOINTS_DIR

    config = config.checked()
    check_output_path(config.output)
    with harness.start(config, command="distill", output=config.output, overwrite=config.overwrite,
                       resume=config.resume, keep=(CHECKPOINTS_DIR,), inputs={"--teacher": config.teacher, "--train-files": config.train_files},
                       training=True) as run:
        return _distill(config, run, tokenizer, callbacks)


def _distill(config: DistillConfig, run: Run, tokenizer: Tokenizer, callbacks: Sequence[Any]) -> DistillResult:
    """The run itself, writing under the claimed folder ``run.out.path``."""
    import torch

    from fnet.data.collate import StepBatches
    from fnet.embeddings import RECIPE_FILES, embedding_defaults, load_tokenizer
    from fnet.io import atomic_write_text
    from fnet.optimize import optimize_for_training
    from fnet.run_folder import check_tokenizer
    from fnet.training.distributed import wrap_model
    from fnet.training.loop import Trainer, TrainerConfig

    ctx, out = run.dist, run.out
    output = out.path
    teacher, folder = load_teacher(config.teacher)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(folder, flag="--teacher")
    if hasattr(tokenizer, "fingerprint"):  # a resumed student reads ids of the tokenizer it was started with
        if config.resume:
            check_tokenizer(output, "--output", tokenizer, config.teacher, tokenizer_flag="--teacher")
        if ctx.is_main:
            out.record(tokenizer=tokenizer.fingerprint())
    pooling = config.pooling or embedding_defaults(folder).pooling
    data_set = DistillTexts(config.train_files, tokenizer, config.seq_len, config.max_texts)
    if config.seq_len > teacher.config.max_position_embeddings:
        raise ValueError(f"--seq-len {config.seq_len} exceeds the teacher's {teacher.config.max_position_embeddings} "
                         "positions; lower --seq-len")
    lengths = np.array([len(e) for e in data_set.examples]) if config.group_by_length else None
    data = StepBatches(data_set, config.batch_size, 1, ctx.rank, ctx.world_size, seed=config.seed, lengths=lengths)

    torch.manual_seed(config.seed)
    student, report = student_from_teacher(teacher, config.layers, config.dropout, config.layer_scale,
                                           config.attention_layers)
    teacher_dropout = teacher.config.hidden_dropout_prob
    teacher = teacher.to(ctx.device).eval().requires_grad_(False)
    student = optimize_for_training(student.to(ctx.device)).train()  # oneDNN GEMMs on the CPU
    layer_map = report["layer_map"]

    def loss_fn(model, batch):
        with torch.no_grad():
            target = teacher(**batch, output_hidden_states=True)
        predicted = model(**batch, output_hidden_states=True)
        return distillation_loss(predicted, target, batch["attention_mask"], layer_map, config.targets,
                                 config.pooled_loss, pooling)

    optimizer, scheduler = config.optimizer_and_scheduler(student, config.lr, config.warmup_steps, config.max_steps)
    trainer_config = TrainerConfig(
        max_steps=config.max_steps, output_dir=str(output), clip_grad=config.clip_grad or None, seed=config.seed,
        bf16=run.precision == "bf16", log_every=config.log_every, save_every=config.save_every, keep_last=config.keep_last,
        progress=config.progress, max_time_s=60.0 * config.time_budget, eval_at_end=False,
    )
    options = dataclasses.asdict(config)
    if ctx.is_main:
        output.mkdir(parents=True, exist_ok=True)
        logger.info("student: %d layers from teacher layers %s, %d tensors from the teacher, %d new; %s texts, "
                    "%s tokens; %d process(es) on %s (%s), %d threads each", len(layer_map), layer_map,
                    len(report["copied"]), len(report["initialised"]), f"{len(data_set.examples):,}",
                    f"{data_set.num_tokens:,}", ctx.world_size, ctx.device, run.precision, torch.get_num_threads())
    trainer = Trainer(wrap_model(student, ctx), optimizer, data, trainer_config, scheduler=scheduler,
                      loss_fn=loss_fn, dist=ctx, extra_state={"options": options}, callbacks=callbacks)
    trained = trainer.train(resume=config.resume)
    result = DistillResult(steps=trained.step, resumed_from=trained.resumed_from, train=trained.last_logs,
                           elapsed_s=trainer.elapsed, main_process=ctx.is_main,
                           init={"copied": len(report["copied"]), "initialised": len(report["initialised"]),
                                 "dropped": len(report["dropped"])})
    if ctx.is_main:
        student.config.hidden_dropout_prob = teacher_dropout  # fine-tuning gets the teacher's regularisation
        student.save_pretrained(output)
        tokenizer.save_pretrained(str(output))
        out.record(tokenizer=tokenizer.fingerprint() if hasattr(tokenizer, "fingerprint") else None)
        for name in RECIPE_FILES:  # the sentence-embedding recipe: encode() and fnet embed read it
            if (folder / name).is_file():
                (output / name).parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(output / name, (folder / name).read_text(encoding="utf-8"))
        atomic_write_text(output / "run_config.json", json.dumps(options, indent=2, default=str) + "\n")
        atomic_write_text(output / "distill_summary.json", json.dumps(
            {**result.summary(), "layer_map": layer_map, "teacher": config.teacher, "precision": run.precision,
             "threads": torch.get_num_threads()}, indent=2) + "\n")
    ctx.barrier()
    return result
