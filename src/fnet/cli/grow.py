"""`fnet grow`: a bigger model that starts out computing what a saved one computes (docs/growth.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments
    from fnet.apps.grow import GrowConfig

    parser = subparsers.add_parser(
        "grow", help="grow a saved model (width, depth, hidden size, positions, vocabulary) preserving its function",
        description="Writes a bigger model to --output and prints each change, whether it is exact by construction, "
        "and the measured max |logit difference| from the original on seeded random inputs. Exact: feed-forward "
        "width, positions, vocabulary, depth of pre-norm models; measured: depth of post-norm models, hidden size.",
    )
    add_config_arguments(parser, GrowConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.cli import config_from
    from fnet.apps.grow import GrowConfig, grow_directory

    config = config_from(args, GrowConfig)
    report = grow_directory(config)
    for change in report.changes:
        print(change)
    verdict = "exact by construction" if report.exact else "not exact"
    print(f"max |logit difference| from {config.model}: {report.deviation:.3g} ({verdict})")
    print(f"grown model saved to {config.output}")
    return 0
