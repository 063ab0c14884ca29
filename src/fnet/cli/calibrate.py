"""`fnet calibrate`: fit temperature scaling on held-out data and save it with the model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.apps.calibrate import CalibrateConfig
    from fnet.cli import add_config_arguments
    from fnet.cli.finetune import add_reader_arguments

    parser = subparsers.add_parser(
        "calibrate", help="fit temperature scaling on held-out data (temperature.json beside the model)",
        description="Runs the fine-tuned model on a held-out labelled file, fits the temperature T that minimises "
        "the negative log-likelihood of softmax(logits / T), saves it as temperature.json in the model directory "
        "(fnet predict and fnet evaluate then use it), and prints NLL, ECE and Brier before and after.",
    )
    add_config_arguments(parser, CalibrateConfig)
    add_reader_arguments(parser)
    parser.set_defaults(func=run)


def _line(name: str, report: dict) -> str:
    ci = report.get("intervals") or {}

    def value(key: str) -> str:
        low_high = ci.get(key)
        return f"{report[key]:.4f}" + (f" [{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else "")

    return f"{name:<7} NLL {value('nll')}  ECE {value('ece')}  Brier {value('brier')}  accuracy {value('accuracy')}"


def run(args: argparse.Namespace) -> int:
    from fnet import harness
    from fnet.apps.calibrate import CalibrateConfig, calibrate
    from fnet.cli import config_from
    from fnet.cli.finetune import with_reader_flags
    from fnet.tasks.folder import task_info

    config = config_from(args, CalibrateConfig)
    config.validate()
    config = with_reader_flags(config, args, task_info(config.model).family())
    result = calibrate(config)
    if not harness.is_main_process():  # under torchrun rank 0 reports
        return 0
    bins = len(result["before"]["bins"])
    print(f"temperature {result['temperature']:.4f} fitted on {result['predictions']} predictions of {config.data}; "
          f"saved {result['file']}")
    ci = " (95% bootstrap intervals)" if result["before"].get("intervals") else ""
    print(f"held-out measures, ECE over {bins} bins{ci}:")
    print(_line("before", result["before"]))
    print(_line("after", result["after"]))
    if config.plot:
        print(f"reliability diagram: {config.plot}")
    return 0
