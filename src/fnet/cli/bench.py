"""``fnet bench``: speed and peak memory of the token mixers against sequence length.

Example (the committed results in benchmarks/results/bench/):
    fnet bench --preset fnet-mini --batch-tokens 8192 --threads 2 --output benchmarks/results/bench
"""

from __future__ import annotations

import argparse
import shlex
import sys


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def register(subparsers) -> None:
    from fnet.benchmarking import DEFAULT_LENGTHS

    parser = subparsers.add_parser(
        "bench",
        help="compare token mixers: tokens/s and peak memory against sequence length",
        description="Measure forward and training-step tokens/s and peak memory of each token mixer at each "
                    "sequence length (each in its own process, mixers interleaved per length), and write "
                    "results.json, results.md and results.png to --output.",
    )
    parser.add_argument("--preset", default="fnet-mini", help="model size preset (default: fnet-mini)")
    parser.add_argument("--mixers", default="all",
                        help="comma-separated token mixers, or 'all' (fourier, attention, linear-attention, "
                             "performer, linear, random, identity)")
    parser.add_argument("--lengths", type=_int_list, default=list(DEFAULT_LENGTHS),
                        help="comma-separated sequence lengths (default: 128 ... 16384, doubling)")
    parser.add_argument("--batch-size", type=int, default=1, help="sequences per step (default 1)")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="instead of --batch-size: max(1, N // length) sequences per step, so every length "
                             "processes about N tokens")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: all cores; use 1 on a machine shared with other jobs, "
                             "where spinning OpenMP threads slow each other down)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps after one warm-up (median reported)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--max-memory", type=float, default=8192,
                        help="MiB a measurement may use (CPU: the child's resident set); a mixer stops at the "
                             "first length that passes it (default 8192)")
    parser.add_argument("--time-limit", type=float, default=60,
                        help="seconds one step (forward or training step) may take; a mixer stops at the first "
                             "length whose warm-up step passes it (default 60)")
    parser.add_argument("--heads", type=int, default=None, help="num_attention_heads (default: hidden_size / 64)")
    parser.add_argument("--output", required=True, help="directory for results.json, results.md, results.png")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from fnet.benchmarking import machine_description, run_benchmark, write_reports
    from fnet.config import PRESETS, TOKEN_MIXERS

    if args.preset not in PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; choose one of {list(PRESETS)}")
    mixers = list(TOKEN_MIXERS) if args.mixers == "all" else [m.strip() for m in args.mixers.split(",") if m.strip()]
    unknown = [m for m in mixers if m not in TOKEN_MIXERS]
    if unknown:
        raise ValueError(f"unknown mixer(s) {unknown}; use any of {list(TOKEN_MIXERS)} or 'all'")
    for name in ("batch_size", "repeats"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive")
    threads = args.threads or os.cpu_count() or 1
    hidden = PRESETS[args.preset]["hidden_size"]
    heads = args.heads or max(1, hidden // 64)
    device = args.device
    meta = dict(
        command="fnet " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"]
        else "fnet bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        preset=args.preset, config=PRESETS[args.preset], num_attention_heads=heads, device=device,
        batch=f"{args.batch_tokens} tokens per step" if args.batch_tokens else f"{args.batch_size} sequences",
        threads=threads, repeats=args.repeats, max_memory_mib=args.max_memory, time_limit_s=args.time_limit,
        memory_method="torch.cuda.max_memory_allocated" if device.startswith("cuda")
        else "peak resident set (VmHWM) of a fresh process minus its resident set before the model was built",
        machine=machine_description(),
    )
    results = run_benchmark(
        mixers, args.lengths, batch_size=args.batch_size, batch_tokens=args.batch_tokens, preset=args.preset,
        threads=threads, repeats=args.repeats, device=device, max_memory_mib=args.max_memory,
        time_limit_s=args.time_limit, config_overrides={"num_attention_heads": heads},
        progress=lambda line: print(line, flush=True),
    )
    paths = write_reports(results, meta, args.output)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
