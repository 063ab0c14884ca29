"""What a task family is: the contract every module in :mod:`fnet.tasks` fills in.

A family (classification, token classification, question answering, multiple choice) owns the
whole path from a data file to scored predictions::

    file --read--> examples --featurize--> Features --model--> outputs --score--> (metrics, records)

plus the model class it trains, the metric that picks the best checkpoint, the reader options
(a dataclass whose fields are also the reader's CLI flags), and the ONNX head it exports as.
The registry (:mod:`fnet.tasks`) is the one place that lists the families; everything else asks
it, never compares task names.

Legend: b batch (rows), n sequence length, k labels.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.data.features import Features
from fnet.options import option

if TYPE_CHECKING:
    from fnet.data.tokenizer import Tokenizer

__all__ = ["TaskFamily", "ReaderOptions", "ExportHead", "format_option", "eval_scores", "softmax", "sigmoid"]


@dataclasses.dataclass(frozen=True)
class ExportHead:
    """How ``fnet export`` names a family's head and which model outputs the graph returns."""

    name: str  # the --task value of `fnet export`, e.g. "sequence-classification"
    outputs: tuple[str, ...]  # output fields of the model, in graph order


@dataclasses.dataclass
class ReaderOptions:
    """Base of the reader options: a family's dataclass adds fields declared with
    :func:`fnet.options.option`; fields with ``cli=True`` are also `fnet finetune` / `evaluate` flags.

    What a run records in ``fnet_task.json`` (``"reader"``) is the dict of options that were given
    (:meth:`given`), with the reader's keyword names as keys.
    """

    @classmethod
    def given(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The options set on the command line (flags left out stay out, so the reader's defaults
        and its detection apply)."""
        values = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)}
        return cls.from_flags({k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_flags(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Flag strings -> reader values (a family extends this where a flag's text needs parsing)."""
        return {**values, "format": "jsonl"} if values.get("format") == "json" else values

    @classmethod
    def of(cls, options: dict[str, Any] | ReaderOptions | None, where: str = "reader options") -> ReaderOptions:
        """An instance from a dict (e.g. ``fnet_task.json``'s ``reader``); unknown keys fail with the list."""
        if isinstance(options, cls):
            return options
        options = dict(options or {})
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in options if k not in valid)
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {unknown}; valid options are {sorted(valid)}")
        return cls(**options)


def format_option() -> Any:
    """The ``--format`` option of the readers of delimited / JSON-lines files."""
    return option(None, "file format (default: from the extension)", choices=("csv", "tsv", "jsonl", "json"))


def eval_scores(scores: dict[str, Any]) -> dict[str, float]:
    """Metrics as a run reports them: ``eval_`` names, float values."""
    return {f"eval_{k}": float(v) for k, v in scores.items()}


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class TaskFamily:
    """One task family; subclasses set the class attributes and implement the methods.

    ``outputs`` (what :meth:`score` reads) maps model output names (``logits``, or ``start_logits``
    and ``end_logits``) to float arrays over the feature rows.
    """

    name: ClassVar[str]  # canonical name, as fnet_task.json records it ("token_classification")
    aliases: ClassVar[dict[str, dict[str, Any]]] = {}  # other accepted names -> reader options they imply
    model_class_name: ClassVar[str]  # the fnet.modeling class it trains
    options: ClassVar[type[ReaderOptions]]  # the reader options dataclass
    examples_type: ClassVar[type | tuple[type, ...]]  # what its reader returns (and featurize takes)
    export: ClassVar[ExportHead | None] = None  # its `fnet export` head (None: exported as the encoder)
    spread: ClassVar[bool] = True  # whether `predict --mc-samples` gives a spread for it
    text_input: ClassVar[bool] = False  # whether `predict` takes raw texts for it

    @property
    def cli_name(self) -> str:
        """The --task value: the name with dashes (``token-classification``)."""
        return self.name.replace("_", "-")

    def model_class(self) -> type:
        import fnet.modeling

        return getattr(fnet.modeling, self.model_class_name)

    # ---- data

    def read(self, path: Any, options: ReaderOptions) -> Any:
        """Examples from a file (the family's ``*Examples`` type)."""
        raise NotImplementedError

    def featurize(self, examples: Any, tokenizer: Tokenizer, max_length: int = 128, *, stride: int = 128,
                  **options: Any) -> Features:
        """A feature table for ``model(**features)``; ``stride`` matters only to windowed families."""
        raise NotImplementedError

    def examples_from_texts(self, texts: Sequence[str], label_names: list[str]) -> Any:
        """Examples from raw texts, for `fnet predict TEXT ...`."""
        raise ValueError(f"{self.cli_name} needs structured input: pass --input FILE in the task's file format")

    def label_info(self, examples: Any) -> tuple[dict[str, Any], list[str]]:
        """(model config overrides, label names) from the training examples."""
        del examples  # only families with labels read them
        return {}, []

    def inherited_options(self, label_names: list[str] | None, problem_type: str | None) -> dict[str, Any]:
        """Reader options a later split takes from the training split (or from a saved model), so
        that e.g. a dev set whose regression targets happen to be whole numbers is not read as classes."""
        del label_names, problem_type  # only families with labels inherit them
        return {}

    # ---- scoring

    def best_metric(self, problem_type: str | None) -> str:
        """The ``eval_*`` metric that selects the best checkpoint (higher is better)."""
        raise NotImplementedError

    def metrics(self, predictions: Any, references: Any, **options: Any) -> dict[str, Any]:
        """The family's metrics of predictions against references."""
        raise NotImplementedError

    def score(self, examples: Any, features: Features, outputs: dict[str, np.ndarray], label_names: list[str], *,
              problem_type: str | None = None, max_answer_length: int = 30) -> tuple[dict[str, float], list[dict]]:
        """Metrics (``eval_*``, empty when the data has no gold) and one prediction record per example."""
        raise NotImplementedError

    def probabilities(self, logits: np.ndarray, problem_type: str | None) -> np.ndarray:
        """Probabilities from logits (softmax over the last axis)."""
        del problem_type  # only classification has a multi-label form
        return softmax(logits)

    def add_spread(self, record: dict[str, Any], mean: np.ndarray, std: np.ndarray, label_names: list[str]) -> None:
        """Put the Monte-Carlo mean probabilities and their std into one prediction ``record``."""
        del record, mean, std, label_names  # families whose records carry no probabilities keep them as decoded
