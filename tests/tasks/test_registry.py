"""The task registry: every family fills the whole contract, and everything that lists tasks
(the CLI's --task, fnet_task.json, export's heads) derives from it."""

from __future__ import annotations

import dataclasses

import pytest

from fnet.tasks import FAMILIES, TaskFamily, canonical_task, cli_choices, get_family
from fnet.tasks.base import ReaderOptions

CONTRACT = ("read", "featurize", "score", "metrics", "best_metric")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_fills_the_contract(name):
    family = FAMILIES[name]
    assert family.name == name and family.cli_name == name.replace("_", "-")
    for method in CONTRACT:
        assert getattr(type(family), method) is not getattr(TaskFamily, method), f"{name} lacks {method}"
    assert issubclass(family.options, ReaderOptions) and dataclasses.is_dataclass(family.options)
    for field in dataclasses.fields(family.options):
        assert field.metadata.get("help"), f"{name}: reader option {field.name} has no help text"
    import fnet.modeling

    assert family.model_class() is getattr(fnet.modeling, family.model_class_name)
    assert family.best_metric(None).startswith("eval_")


def test_cli_choices_are_the_registry():
    from fnet.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["finetune"]
    task = next(a for a in sub._actions if a.dest == "task")
    assert list(task.choices) == cli_choices() == ["classification", "token-classification",
                                                     "question-answering", "multiple-choice"]


@pytest.mark.parametrize("alias, family", [
    ("sequence_classification", "classification"), ("text-classification", "classification"),
    ("regression", "classification"), ("multi_label", "classification"), ("NER", "token_classification"),
    ("tagging", "token_classification"), ("qa", "question_answering"), ("squad", "question_answering"),
    ("mc", "multiple_choice"), ("swag", "multiple_choice"), ("cosmosqa", "multiple_choice"),
    ("multiple-choice", "multiple_choice"),
])
def test_aliases(alias, family):
    assert canonical_task(alias) == family


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown task 'translation'; expected one of .*'classification'"):
        get_family("translation")


def test_export_heads_come_from_the_registry():
    from fnet.export import TASKS

    for family in FAMILIES.values():
        if family.export is not None:
            assert TASKS[family.export.name][:2] == (family.model_class_name, family.export.outputs)
    assert list(TASKS) == ["feature-extraction", "sequence-classification", "token-classification",
                           "question-answering", "masked-lm"]


def test_reader_flags_cover_every_cli_reader_option():
    import argparse

    from fnet.cli.finetune import add_reader_arguments

    parser = argparse.ArgumentParser()
    add_reader_arguments(parser)
    dests = {a.dest for a in parser._actions}
    for family in FAMILIES.values():
        for field in dataclasses.fields(family.options):
            assert (field.name in dests) == field.metadata.get("cli", True), (family.name, field.name)
    args = parser.parse_args(["--text-column", "0", "--format", "json", "--answer-mismatch", "fix"])
    assert FAMILIES["classification"].options.given(args) == {"text_column": 0, "format": "jsonl"}
    assert FAMILIES["question_answering"].options.given(args) == {"on_mismatch": "fix"}
    assert FAMILIES["token_classification"].options.given(args) == {}


def test_reader_options_reject_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\]; valid options are"):
        FAMILIES["classification"].options.of({"colour": "red"})
