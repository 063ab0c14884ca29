"""Task dispatch: ``load_task_examples(task, path, **options)`` and ``featurize(task, examples, ...)``.

Task names (aliases in brackets):

* ``classification`` [``sequence_classification``, ``text_classification``; ``regression`` and
  ``multi_label`` also set the problem type]
* ``token_classification`` [``ner``, ``tagging``]
* ``question_answering`` [``qa``, ``squad``]
* ``multiple_choice`` [``mc``, ``swag``, ``cosmosqa``]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fnet.data.features import (
    Features,
    featurize_classification,
    featurize_multiple_choice,
    featurize_token_classification,
    token_predictions_to_tags,
)
from fnet.data.qa import postprocess_qa_predictions, prepare_qa_features
from fnet.data.readers import (
    ClassificationExamples,
    MultipleChoiceExamples,
    QAExamples,
    TokenClassificationExamples,
    read_classification,
    read_conll,
    read_multiple_choice,
    read_squad,
)

__all__ = [
    "TASKS",
    "canonical_task",
    "load_task_examples",
    "featurize",
    "Features",
    "ClassificationExamples",
    "TokenClassificationExamples",
    "QAExamples",
    "MultipleChoiceExamples",
    "read_classification",
    "read_conll",
    "read_squad",
    "read_multiple_choice",
    "prepare_qa_features",
    "postprocess_qa_predictions",
    "token_predictions_to_tags",
]

TASKS = ("classification", "token_classification", "question_answering", "multiple_choice")
_ALIASES = {
    "classification": "classification",
    "sequence_classification": "classification",
    "text_classification": "classification",
    "regression": "classification",
    "multi_label": "classification",
    "multi_label_classification": "classification",
    "token_classification": "token_classification",
    "ner": "token_classification",
    "tagging": "token_classification",
    "question_answering": "question_answering",
    "qa": "question_answering",
    "squad": "question_answering",
    "multiple_choice": "multiple_choice",
    "mc": "multiple_choice",
    "swag": "multiple_choice",
    "cosmosqa": "multiple_choice",
}

# task aliases that also fix the classification problem type
_PROBLEM_ALIASES = {
    "regression": "regression",
    "multi_label": "multi_label_classification",
    "multi_label_classification": "multi_label_classification",
}


def canonical_task(task: str) -> str:
    """Map a task name or alias to one of :data:`TASKS`; unknown names raise ``ValueError``."""
    key = task.strip().lower().replace("-", "_")
    if key not in _ALIASES:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(_ALIASES)}")
    return _ALIASES[key]


def load_task_examples(task: str, path: str | Path, **options: Any) -> Any:
    """Read ``path`` with the reader for ``task``; ``options`` go to that reader.

    Returns :class:`ClassificationExamples`, :class:`TokenClassificationExamples`,
    :class:`QAExamples` or :class:`MultipleChoiceExamples`.
    """
    name = canonical_task(task)
    if name == "classification":
        problem = _PROBLEM_ALIASES.get(task.strip().lower().replace("-", "_"))
        if problem is not None:
            options.setdefault("problem_type", problem)
        return read_classification(path, **options)
    if name == "token_classification":
        return read_conll(path, **options)
    if name == "question_answering":
        return read_squad(path, **options)
    return read_multiple_choice(path, **options)


def featurize(task: str, examples: Any, tokenizer: Any, max_length: int = 128, **options: Any) -> Features:
    """Featurize ``examples`` for ``task``: a :class:`Features` dict of tensors for ``model(**f)``.

    ``options``: ``padding`` (all tasks but multiple choice), ``label_all_subtokens`` (token
    classification), ``stride`` (question answering: window overlap in tokens, default 128).
    """
    name = canonical_task(task)
    expected = {
        "classification": ClassificationExamples,
        "token_classification": TokenClassificationExamples,
        "question_answering": (QAExamples, list, tuple),
        "multiple_choice": MultipleChoiceExamples,
    }[name]
    if not isinstance(examples, expected):
        raise TypeError(f"task {name!r} needs examples from load_task_examples({name!r}, ...), "
                        f"got {type(examples).__name__}")
    if name == "classification":
        return featurize_classification(examples, tokenizer, max_length, **options)
    if name == "token_classification":
        return featurize_token_classification(examples, tokenizer, max_length, **options)
    if name == "question_answering":
        return prepare_qa_features(examples, tokenizer, max_length, **options)
    return featurize_multiple_choice(examples, tokenizer, max_length, **options)
