"""``fnet vae train|encode|sample|interpolate``: the sentence VAE with a vMF latent (see fnet.vae).

Every subcommand's flags are the fields of its config dataclass in :mod:`fnet.vae.run`; ``--config
run.toml`` / ``run.json`` supplies any of them (command-line flags win).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments
    from fnet.vae.run import VAEEncodeConfig, VAEInterpolateConfig, VAESampleConfig, VAETrainConfig

    parser = subparsers.add_parser(
        "vae", help="sentence VAE with a von Mises-Fisher latent (train, encode, sample, interpolate)",
        description="A sentence VAE on FNet: the encoder's mean direction mu on the unit sphere, z ~ vMF(mu, kappa) "
        "with kappa fixed (a constant KL to the uniform prior: no KL collapse), and an FNet MLM decoder "
        "conditioned on z that writes the sentence by iterative unmasking (mask-predict).")
    commands = parser.add_subparsers(dest="vae_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _usage(parser))
    specs = [
        ("train", VAETrainConfig, run_train, "train a sentence VAE on text files (one sentence per line)"),
        ("encode", VAEEncodeConfig, run_encode, "write the latent mean direction of every line of a file (.npy)"),
        ("sample", VAESampleConfig, run_sample, "decode sentences from latents drawn from the prior"),
        ("interpolate", VAEInterpolateConfig, run_interpolate,
         "decode sentences along the great circle between two sentences' latents"),
    ]
    for name, cls, func, text in specs:
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_config_arguments(sub, cls)
        if name != "train":  # train's --overwrite comes from its run options
            sub.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
        sub.set_defaults(func=func, config_class=cls)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _config(args: argparse.Namespace):
    from fnet.cli import config_from

    return config_from(args, args.config_class)


def run_train(args: argparse.Namespace) -> int:
    from fnet.cli import library_log
    from fnet.vae.run import train

    with library_log("fnet.vae.run", "fnet vae train"):
        result = train(_config(args))
    print(json.dumps(result.summary()))
    return 0


def run_encode(args: argparse.Namespace) -> int:
    from fnet.vae.run import encode

    print(json.dumps(encode(_config(args), overwrite=args.overwrite)))
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from fnet.vae.run import sample

    config = _config(args)
    return _write_lines(config.output, args.overwrite, lambda: sample(config))


def run_interpolate(args: argparse.Namespace) -> int:
    from fnet.vae.run import interpolate

    config = _config(args)
    return _write_lines(config.output, args.overwrite, lambda: interpolate(config))


def _write_lines(output: str | None, overwrite: bool, make) -> int:
    """JSON lines of ``make()`` to stdout, or to ``output`` claimed like every fnet output file."""
    from fnet import run_folder

    if not output:
        sys.stdout.write(_jsonl(make()))
        return 0
    with run_folder.claim_file(output, overwrite=overwrite) as tmp:
        records = make()
        tmp.write_text(_jsonl(records), encoding="utf-8")
    print(f"{len(records)} lines written to {output}", file=sys.stderr)
    return 0


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
