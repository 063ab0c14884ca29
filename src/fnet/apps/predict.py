"""`fnet predict`: label raw texts or a file with a `fnet finetune` folder, on any device
(:mod:`fnet.harness`); one record per input, in input order. Under torchrun each rank runs a share
of the rows and every rank gets all records (the command prints them on rank 0)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnet.apps.task_model import InferenceOptions, LoadedTask, load_task, mark_records, run_task_model, token_counts
from fnet.options import option, require
from fnet.run_folder import check_claim_file
from fnet.tasks.base import TaskFamily
from fnet.tasks.folder import TaskInfo, read_split

if TYPE_CHECKING:
    from fnet.harness import Run

__all__ = ["PredictConfig", "predict", "EMPTY_TEXT"]


@dataclass
class PredictConfig(InferenceOptions):
    """`fnet predict`: label raw texts or a file with a fine-tuned directory."""

    model: str | None = option(None, "folder written by `fnet finetune`, or its Hub id (owner/name[@revision]) "
                                     "(required)")
    texts: list[str] = option(help="texts to classify or tag", cli=False, default_factory=list)
    input: str | None = option(None, "input file (.txt: one text per line, - for standard input; otherwise the "
                                     "task's file format, see --format)")
    output: str | None = option(None, "write JSON lines here instead of stdout")
    overwrite: bool = option(False, "replace an existing --output file")
    mc_samples: int = option(0, "N stochastic passes with dropout on: mean probability and its std per label",
                             metavar="N")
    seed: int = option(0, "seed of the dropout masks (with --mc-samples)")
    calibrated: bool = option(True, "use the temperature saved by `fnet calibrate` (temperature.json) when the "
                                    "model has one, on every pass under --mc-samples (--no-calibrated: plain softmax)")
    reader: dict[str, Any] = option(help="reader options, over those recorded in fnet_task.json", cli=False,
                                    default_factory=dict)

    def inputs(self) -> dict[str, Any]:
        """What the prediction reads (flag -> path): its output may not overlap any of them."""
        return {"--model": self.model, "--input": None if self.input == "-" else self.input}

    def validate(self) -> None:
        require(self, "model")
        if self.output:  # never an existing file unless told, never an input (checked again when written)
            check_claim_file(self.output, overwrite=self.overwrite, inputs=self.inputs())
        self.validate_inference()
        if self.mc_samples < 0:
            raise ValueError(f"--mc-samples must be >= 0, got {self.mc_samples}")
        if self.mc_samples == 1:
            raise ValueError("--mc-samples 1 gives no spread; use 0 (deterministic) or at least 2")


EMPTY_TEXT = "empty text: no prediction"  # the ``skipped`` reason of a blank input line or an empty text


def _inputs_for_prediction(family: TaskFamily, config: PredictConfig, info: TaskInfo
                           ) -> tuple[Any, list[int], list[str] | None]:
    """Examples to predict, the input positions they came from, and all input texts (None for a task file).

    Command-line texts, a plain .txt file (one text per line; every line counts, blank ones included),
    or a task file. Empty or blank texts are left out of the examples; their positions are missing
    from the list, and `predict` gives them a ``skipped`` record.
    """
    texts = config.texts
    if config.input == "-":  # standard input: one text per line, as a .txt file
        texts = sys.stdin.read().splitlines()
        if not texts:
            raise ValueError("--input -: standard input is empty")
    elif config.input and Path(config.input).suffix.lower() != ".txt":
        examples = read_split(family, config.input, {**info.reader, **config.reader}, None)
        return examples, list(range(len(examples))), None
    elif config.input:
        try:
            texts = Path(config.input).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(f"{config.input} is not valid UTF-8 ({err})") from err
    if not texts:
        raise ValueError(f"{config.input} is empty" if config.input else "give texts to predict, or --input FILE")
    kept = [i for i, text in enumerate(texts) if text.strip()]
    return family.examples_from_texts([texts[i] for i in kept], info.label_names), kept, list(texts)


def predict(config: PredictConfig) -> list[dict[str, Any]]:
    """Predictions for raw texts (families with text input) or an input file (any family).

    One record per input, in input order, each with its ``index`` (0-based; for a .txt file, the
    line number - 1). An empty or blank text gets ``{"index", "text", "prediction": None, "skipped":
    reason}`` instead of a label. Records of text inputs carry ``tokens`` (before truncation) and
    ``truncated`` (longer than the model's ``seq_len``, so only the first tokens were read).

    With ``mc_samples`` = N > 0, N stochastic passes with dropout on give, per label, the mean
    probability (``probabilities``) and its standard deviation (``std``).
    """
    from fnet import harness

    config.validate()
    with harness.start(config, command="predict") as run:
        return _predict(config, run)


def _predict(config: PredictConfig, run: "Run") -> list[dict[str, Any]]:
    task = load_task(config.model, config, run)
    family, model, info = task.family, task.model, task.info
    if config.mc_samples and model.config.hidden_dropout_prob == 0:
        raise ValueError("the model has hidden_dropout_prob=0, so Monte-Carlo dropout samples would all be equal")
    if config.mc_samples and not family.spread:
        from fnet.tasks import FAMILIES

        allowed = ", ".join(f.cli_name for f in FAMILIES.values() if f.spread)
        raise ValueError(f"--mc-samples is supported for {allowed}")
    examples, positions, texts = _inputs_for_prediction(family, config, info)
    records = _predict_records(task, examples, config, run) if positions else []
    return records if texts is None else _aligned(records, positions, texts)


def _predict_records(task: LoadedTask, examples: Any, config: PredictConfig, run: "Run") -> list[dict[str, Any]]:
    family, model, tokenizer, info, scaling = task.family, task.model, task.tokenizer, task.info, task.scaling
    problem_type = model.config.problem_type
    features = family.featurize(examples, tokenizer, info.seq_len, stride=info.stride)
    import numpy as np
    import torch

    torch.manual_seed(config.seed)
    outputs = run_task_model(model, features, config, run, mc_samples=config.mc_samples)
    if scaling is not None:  # per pass: softmax(logits_s / T), then the mean over passes
        outputs = {**outputs, "logits": outputs["logits"] / scaling.temperature}
    if not config.mc_samples:
        records = family.score(examples, features, outputs, info.label_names, problem_type=problem_type,
                               max_answer_length=info.max_answer_length)[1]
    else:
        probs = family.probabilities(outputs["logits"], problem_type)  # (s, b, [n,] k)
        mean_logits = np.log(np.clip(probs.mean(0), 1e-12, None))
        _, records = family.score(examples, features, {"logits": mean_logits}, info.label_names,
                                  problem_type=problem_type, max_answer_length=info.max_answer_length)
        mean, std = probs.mean(0), probs.std(0, ddof=1)
        for i, record in enumerate(records):
            family.add_spread(record, mean[i], std[i], info.label_names)
            record["mc_samples"] = config.mc_samples
    mark_records(records, token_counts(examples, features, tokenizer), info.seq_len)
    if scaling is not None:  # the probabilities are temperature-scaled: each record says so
        for record in records:
            record["temperature"] = scaling.temperature
    return records


def _aligned(records: list[dict[str, Any]], positions: list[int], texts: list[str]) -> list[dict[str, Any]]:
    """One record per input text: the predictions at their positions, ``skipped`` records for empty texts."""
    out: list[dict[str, Any]] = [{"index": i, "text": text, "prediction": None, "skipped": EMPTY_TEXT}
                                 for i, text in enumerate(texts)]
    for record, position in zip(records, positions):
        record["index"] = position
        out[position] = record
    return out
