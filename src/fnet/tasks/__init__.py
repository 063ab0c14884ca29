"""Task families and their registry: the one place that names them.

Each family is one module (reader, reader options, featurization, decoding, metrics, model class,
prediction records; see :mod:`fnet.tasks.base` for the contract). The CLI's ``--task`` choices,
``fnet_task.json``, `fnet evaluate` / `predict` and `fnet export`'s heads all come from
:data:`FAMILIES`.

Names (aliases in brackets; dashes and underscores are the same):

* ``classification`` [``sequence_classification``, ``text_classification``; ``regression`` and
  ``multi_label`` also set the problem type]
* ``token_classification`` [``ner``, ``tagging``]
* ``question_answering`` [``qa``, ``squad``]
* ``multiple_choice`` [``mc``, ``swag``, ``cosmosqa``]

Adding a family: write ``fnet/tasks/<name>.py`` with a :class:`~fnet.tasks.base.TaskFamily`
subclass and add an instance to :data:`FAMILIES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnet.data.features import Features
from fnet.tasks.base import ExportHead, ReaderOptions, TaskFamily
from fnet.tasks.classification import Classification
from fnet.tasks.multiple_choice import MultipleChoice
from fnet.tasks.question_answering import QuestionAnswering
from fnet.tasks.token_classification import TokenClassification

if TYPE_CHECKING:
    from fnet.data.tokenizer import Tokenizer

__all__ = ["FAMILIES", "TaskFamily", "ReaderOptions", "ExportHead", "get_family", "canonical_task",
           "cli_choices", "load_task_examples", "featurize", "compute_metrics"]

# canonical name -> family, in the order `--help` lists them
FAMILIES: dict[str, TaskFamily] = {
    family.name: family
    for family in (Classification(), TokenClassification(), QuestionAnswering(), MultipleChoice())
}


def _key(task: str) -> str:
    return task.strip().lower().replace("-", "_")


def _aliases() -> dict[str, tuple[TaskFamily, dict[str, Any]]]:
    """Every accepted name -> (family, the reader options the name implies)."""
    out: dict[str, tuple[TaskFamily, dict[str, Any]]] = {}
    for family in FAMILIES.values():
        out[family.name] = (family, {})
        for alias, implied in family.aliases.items():
            out[alias] = (family, implied)
    return out


def _lookup(task: str) -> tuple[TaskFamily, dict[str, Any]]:
    names = _aliases()
    if _key(task) not in names:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(names)}")
    return names[_key(task)]


def get_family(task: str) -> TaskFamily:
    """The family of a task name or alias; an unknown name raises ``ValueError`` listing the valid ones."""
    return _lookup(task)[0]


def canonical_task(task: str) -> str:
    """A task name or alias -> the family's canonical name (``"ner"`` -> ``"token_classification"``)."""
    return get_family(task).name


def cli_choices() -> list[str]:
    """The values of ``--task``: the families' names with dashes."""
    return [family.cli_name for family in FAMILIES.values()]


def load_task_examples(task: str, path: str | Path, **options: Any) -> Any:
    """Read ``path`` with the family's reader; ``options`` are its reader options (keywords).

    Returns the family's examples: ``ClassificationExamples``, ``TokenClassificationExamples``,
    ``QAExamples`` or ``MultipleChoiceExamples``.
    """
    family, implied = _lookup(task)
    return family.read(path, family.options.of({**implied, **options}))


def featurize(task: str, examples: Any, tokenizer: Tokenizer, max_length: int = 128, **options: Any) -> Features:
    """Featurize ``examples`` for ``task``: a :class:`Features` dict of tensors for ``model(**f)``.

    ``options``: ``padding`` (all tasks but multiple choice), ``label_all_subtokens`` (token
    classification), ``stride`` (question answering: window overlap in tokens, default 128).
    """
    family = get_family(task)
    if not isinstance(examples, family.examples_type):
        raise TypeError(f"task {family.name!r} needs examples from load_task_examples({family.name!r}, ...), "
                        f"got {type(examples).__name__}")
    return family.featurize(examples, tokenizer, max_length, **options)


def compute_metrics(task: str, predictions: Any, references: Any, **options: Any) -> dict[str, Any]:
    """Metrics of ``predictions`` against ``references`` for a task (see each family's ``metrics``).

    * ``classification``: logits or class ids; ``problem_type`` (or the task ``"regression"`` /
      ``"multi_label"``) and ``num_labels`` options;
    * ``token_classification``: tag-string sequences; ``per_type=True`` adds per-type scores;
    * ``question_answering``: ``{id: text}`` predictions; ``exact_match``, ``f1`` (+ splits);
    * ``multiple_choice``: logits ``(b, choices)`` or ids; ``accuracy``.
    """
    family, implied = _lookup(task)
    return family.metrics(predictions, references, **{**options, **implied})
