"""``fnet bench``: speed and peak memory of the token mixers against sequence length.

The flags are the fields of :class:`fnet.benchmarking.BenchConfig`. Example (the committed results
in benchmarks/results/bench/):
    fnet bench --preset fnet-mini --batch-tokens 8192 --threads 2 --output benchmarks/results/bench
    fnet bench --device cuda --precision bf16 --output runs/bench-gpu
"""

from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers) -> None:
    from fnet.benchmarking import BenchConfig
    from fnet.cli import add_config_arguments

    parser = subparsers.add_parser(
        "bench",
        help="compare token mixers: tokens/s and peak memory against sequence length",
        description="Measure forward and training-step tokens/s and peak memory of each token mixer at each "
                    "sequence length (each in its own process, mixers interleaved per length), and write "
                    "results.json, results.md and results.png to --output.",
    )
    add_config_arguments(parser, BenchConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from fnet.benchmarking import BenchConfig, machine_description, run_benchmark, write_reports
    from fnet.cli import config_from
    from fnet.config import PRESETS
    from fnet.harness import resolve_device, resolve_precision

    config = config_from(args, BenchConfig)
    mixers, lengths = config.validate()
    device = resolve_device(config.device)
    precision = resolve_precision(config.wanted_precision(), device)
    threads = config.threads or os.cpu_count() or 1
    hidden = PRESETS[config.preset]["hidden_size"]
    heads = config.heads or max(1, hidden // 64)
    meta = dict(
        command="fnet " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"]
        else "fnet bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        preset=config.preset, config=PRESETS[config.preset], num_attention_heads=heads, device=str(device),
        precision=precision,
        batch=f"{config.batch_tokens} tokens per step" if config.batch_tokens else f"{config.batch_size} sequences",
        threads=threads, repeats=config.repeats, max_memory_mib=config.max_memory, time_limit_s=config.time_limit,
        memory_method="torch.cuda.max_memory_allocated" if device.type == "cuda"
        else "peak resident set (VmHWM) of a fresh process minus its resident set before the model was built",
        machine=machine_description(),
    )
    results = run_benchmark(
        mixers, lengths, batch_size=config.batch_size, batch_tokens=config.batch_tokens, preset=config.preset,
        threads=threads, repeats=config.repeats, device=str(device), precision=precision,
        max_memory_mib=config.max_memory, time_limit_s=config.time_limit, config_overrides={"num_attention_heads": heads},
        progress=lambda line: print(line, flush=True),
    )
    paths = write_reports(results, meta, config.output)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
