"""Speed and peak memory of every token mixer against sequence length, side by side.

Legend: b batch, n sequence length.

Each (mixer, length) is measured in a fresh child process (``python -m fnet.benchmarking``), so
one measurement's allocations cannot leak into the next and a run that does not fit is killed
without taking the benchmark down. Per length, the mixers are measured one after another
(interleaved), so a slow drift of the machine affects them alike.

What is measured, on an ``FNetModel`` (embeddings + encoder + pooler, no task head):

* forward: ``model(ids)`` under ``torch.no_grad()`` in eval mode, after ``fnet.optimize_for_inference``
  (as ``fnet predict`` runs) -> tokens/s = b*n / median time;
* training step: forward, a stand-in loss (mean square of the last hidden state), backward and one
  AdamW step in train mode -> tokens/s = b*n / median time;
* peak memory: on CPU the child's peak resident set (``VmHWM`` in /proc/self/status) minus its
  resident set after ``import torch`` and before the model is built: weights, activations,
  gradients and optimizer state, as the OS sees them (``tracemalloc`` misses torch's allocator, and
  ``torch.cuda.max_memory_allocated`` exists on GPU only, where it is used instead).

A mixer stops at the first length that breaks ``max_memory_mib`` (the parent polls the child's
resident set and kills it above the budget; on GPU an out-of-memory error counts too) or
``time_limit_s`` (the child is killed); longer lengths are then skipped with the reason recorded.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fnet.harness import DeviceOptions
from fnet.options import option, require

DEFAULT_LENGTHS = tuple(128 * 2**i for i in range(8))  # 128 ... 16,384


def _positive_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise ValueError(f"{flag} expects positive integers, got {text!r}")
    return values


@dataclass
class BenchConfig(DeviceOptions):
    """`fnet bench`: every token mixer's speed and peak memory against sequence length."""

    preset: str = option("fnet-mini", "model size preset")
    mixers: str = option("all", "comma-separated token mixers, or 'all' (fourier, attention, linear-attention, "
                                "performer, linear, random, identity)")
    lengths: str = option(",".join(map(str, DEFAULT_LENGTHS)), "comma-separated sequence lengths")
    batch_size: int = option(1, "sequences per step")
    batch_tokens: int | None = option(None, "instead of --batch-size: max(1, N // length) sequences per step, so "
                                            "every length processes about N tokens")
    threads: int | None = option(None, "torch CPU threads (default: all cores; use 1 on a machine shared with other "
                                       "jobs, where spinning OpenMP threads slow each other down)")
    repeats: int = option(3, "timed steps after one warm-up (median reported)")
    max_memory: float = option(8192, "MiB a measurement may use (CPU: the child's resident set); a mixer stops at "
                                     "the first length that passes it")
    time_limit: float = option(60, "seconds one step (forward or training step) may take; a mixer stops at the "
                                   "first length whose warm-up step passes it")
    heads: int | None = option(None, "num_attention_heads (default: hidden_size / 64)")
    output: str | None = option(None, "directory for results.json, results.md, results.png (required)")

    def validate(self) -> tuple[list[str], list[int]]:
        """All checks; returns (mixers, lengths)."""
        from fnet.config import PRESETS, TOKEN_MIXERS

        require(self, "output")
        self.check_device_options()
        if self.preset not in PRESETS:
            raise ValueError(f"--preset: unknown preset {self.preset!r}; choose one of {list(PRESETS)}")
        mixers = list(TOKEN_MIXERS) if self.mixers == "all" else [m.strip() for m in self.mixers.split(",") if m.strip()]
        unknown = [m for m in mixers if m not in TOKEN_MIXERS]
        if unknown:
            raise ValueError(f"--mixers: unknown mixer(s) {unknown}; use any of {list(TOKEN_MIXERS)} or 'all'")
        for name in ("batch_size", "repeats"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        return mixers, _positive_ints(self.lengths, "--lengths")


@dataclass
class Measurement:
    """One (mixer, length) result. Times in seconds, memory in MiB, speeds in tokens/s."""

    mixer: str
    length: int
    batch_size: int
    status: str = "ok"  # ok | memory | time | error | skipped
    reason: str = ""  # why a measurement is not "ok"
    forward_tokens_per_s: float | None = None
    train_tokens_per_s: float | None = None
    forward_peak_mib: float | None = None
    train_peak_mib: float | None = None
    forward_s: list[float] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)


# ----------------------------------------------------------------------------- memory probes


def _status_kib(field_name: str, pid: int | str = "self") -> int:
    """A ``/proc/<pid>/status`` field (VmRSS, VmHWM) in KiB; 0 where /proc is unavailable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# ----------------------------------------------------------------------------- the child


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the model, time forward and training steps, report peaks. Runs in its own process."""
    import torch

    from fnet.config import FNetConfig
    from fnet.modeling import FNetModel
    from fnet.optimize import optimize_for_inference

    from fnet.harness import autocast

    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    precision = spec.get("precision", "fp32")
    cuda = device.type == "cuda"
    baseline_kib = _status_kib("VmRSS")
    n, b = spec["length"], spec["batch_size"]
    config = FNetConfig.from_preset(
        spec["preset"], token_mixer=spec["mixer"], max_position_embeddings=max(n, 512),
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **spec.get("config", {}),
    )
    torch.manual_seed(0)
    model = optimize_for_inference(FNetModel(config).to(device))  # the training step runs the reference path
    ids = torch.randint(4, config.vocab_size, (b, n), device=device)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    class TooSlow(Exception):
        pass

    def timed(step, repeats: int) -> list[float]:
        start = time.perf_counter()
        step()  # warm-up (allocator, kernels, DFT caches)
        sync()
        warm = time.perf_counter() - start
        if warm > spec["time_limit_s"]:
            raise TooSlow(f"one step took {warm:.0f} s, more than --time-limit {spec['time_limit_s']:.0f} s")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - start)
        return times

    def peak_mib() -> float:
        if cuda:
            return torch.cuda.max_memory_allocated(device) / 2**20
        return (_status_kib("VmHWM") - baseline_kib) / 1024

    def forward() -> None:
        with torch.no_grad(), autocast(device, precision):
            model(ids)

    model.eval()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    try:
        forward_s = timed(forward, spec["repeats"])
    except TooSlow as err:
        return dict(status="time", reason=f"forward: {err}")
    forward_peak = peak_mib()

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = model(ids).last_hidden_state.float().pow(2).mean()
        loss.backward()
        optimizer.step()

    model.train()
    tokens = b * n
    try:
        train_s = timed(train_step, spec["repeats"])
    except TooSlow as err:
        return dict(status="time", reason=f"training step: {err}", forward_s=forward_s, forward_peak_mib=forward_peak,
                    forward_tokens_per_s=tokens / statistics.median(forward_s))
    return dict(
        forward_s=forward_s, train_s=train_s, forward_peak_mib=forward_peak, train_peak_mib=peak_mib(),
        forward_tokens_per_s=tokens / statistics.median(forward_s),
        train_tokens_per_s=tokens / statistics.median(train_s),
    )


# ----------------------------------------------------------------------------- the parent


def measure(
    mixer: str,
    length: int,
    *,
    preset: str = "fnet-mini",
    batch_size: int = 1,
    threads: int = 1,
    repeats: int = 3,
    device: str = "cpu",
    precision: str = "fp32",
    max_memory_mib: float = 8192,
    time_limit_s: float = 120,
    config_overrides: dict[str, Any] | None = None,
    startup_allowance_s: float = 120,
) -> Measurement:
    """Measure one mixer at one length in a child process, enforcing the memory and time budgets.

    ``time_limit_s`` bounds one step (forward, or training step): the child stops after a warm-up
    step that takes longer. The child is killed outright after ``startup_allowance_s`` (import and
    model build) plus the time all its steps may take.
    """
    result = Measurement(mixer, length, batch_size)
    spec = dict(mixer=mixer, length=length, preset=preset, batch_size=batch_size, threads=threads,
                repeats=repeats, device=device, precision=precision, time_limit_s=time_limit_s, config=config_overrides or {})
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    child = subprocess.Popen(
        [sys.executable, "-m", "fnet.benchmarking", json.dumps(spec)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    start, peak_kib = time.monotonic(), 0
    while child.poll() is None:
        peak_kib = max(peak_kib, _status_kib("VmRSS", child.pid))
        if peak_kib / 1024 > max_memory_mib:
            child.kill()
            child.wait()
            result.status, result.reason = "memory", f"resident set passed --max-memory {max_memory_mib:.0f} MiB"
            return result
        if time.monotonic() - start > startup_allowance_s + time_limit_s * 2 * (repeats + 1):
            child.kill()
            child.wait()
            result.status, result.reason = "time", f"killed: steps took longer than --time-limit {time_limit_s:.0f} s"
            return result
        time.sleep(0.02)
    stdout, stderr = child.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        oom = "out of memory" in stderr.lower() or "can't allocate memory" in stderr.lower()
        result.status = "memory" if oom else "error"
        result.reason = tail[:300]
        return result
    for key, value in json.loads(lines[-1]).items():
        setattr(result, key, value)
    return result


def run_benchmark(
    mixers: list[str],
    lengths: list[int],
    *,
    batch_size: int = 1,
    batch_tokens: int | None = None,
    progress=print,
    **kwargs: Any,
) -> list[Measurement]:
    """Every mixer at every length, interleaved per length; a mixer stops at its first failure.

    ``batch_tokens``: when set, the batch at length n is max(1, batch_tokens // n) sequences, so
    every length processes about the same number of tokens per step.
    """
    results: list[Measurement] = []
    stopped: dict[str, str] = {}
    for length in lengths:
        batch = max(1, batch_tokens // length) if batch_tokens else batch_size
        for mixer in mixers:
            if mixer in stopped:
                results.append(Measurement(mixer, length, batch, status="skipped", reason=stopped[mixer]))
                continue
            result = measure(mixer, length, batch_size=batch, **kwargs)
            results.append(result)
            if result.status != "ok":
                stopped[mixer] = f"stopped at length {length} ({result.status})"
            progress(_progress_line(result))
    return results


def _progress_line(m: Measurement) -> str:
    if m.status != "ok":
        return f"{m.mixer:>16} n={m.length:<6} {m.status}: {m.reason}"
    return (f"{m.mixer:>16} n={m.length:<6} b={m.batch_size:<3} forward {m.forward_tokens_per_s:>10,.0f} tok/s  "
            f"train {m.train_tokens_per_s:>9,.0f} tok/s  peak {m.train_peak_mib:>8,.0f} MiB")


# ----------------------------------------------------------------------------- reports


def machine_description() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return dict(cpu=cpu, cpu_count=os.cpu_count(), load_average=[round(x, 1) for x in os.getloadavg()], python=platform.python_version(), torch=torch.__version__,
                platform=platform.platform(), memory_gib=round(_meminfo_total_kib() / 2**20, 1))


def _meminfo_total_kib() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            return int(handle.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def write_reports(results: list[Measurement], meta: dict[str, Any], output: str | os.PathLike) -> dict[str, Path]:
    """results.json, results.md (a table per quantity) and results.png (three panels) in ``output``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "results.md", "plot": out / "results.png"}
    paths["json"].write_text(json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2) + "\n")
    paths["markdown"].write_text(markdown_table(results, meta))
    plot(results, paths["plot"], title=f"{meta.get('preset', '')}, {meta.get('device', '')}")
    return paths


def markdown_table(results: list[Measurement], meta: dict[str, Any]) -> str:
    mixers = list(dict.fromkeys(r.mixer for r in results))
    lengths = sorted({r.length for r in results})
    cell = {(r.mixer, r.length): r for r in results}
    lines = [f"# fnet bench: {meta.get('preset')} on {meta.get('machine', {}).get('cpu', meta.get('device'))}", ""]
    lines.append(f"Command: `{meta.get('command')}`  ")
    lines.append(f"Machine: {json.dumps(meta.get('machine'))}  ")
    lines.append(f"Batch: {meta.get('batch')}; threads {meta.get('threads')}; median of {meta.get('repeats')} "
                 f"timed steps after one warm-up; memory = {meta.get('memory_method')}.")
    for title, attr, fmt in (
        ("Forward tokens/s (higher is better)", "forward_tokens_per_s", "{:,.0f}"),
        ("Training-step tokens/s (forward + backward + AdamW)", "train_tokens_per_s", "{:,.0f}"),
        ("Peak memory of a forward pass (inference), MiB", "forward_peak_mib", "{:,.0f}"),
        ("Peak memory of a training step, MiB", "train_peak_mib", "{:,.0f}"),
    ):
        lines += ["", f"## {title}", "", "| mixer | " + " | ".join(f"{n:,}" for n in lengths) + " |",
                  "|---|" + "---:|" * len(lengths)]
        for mixer in mixers:
            row = []
            for n in lengths:
                r = cell.get((mixer, n))
                if r is None:
                    row.append("")
                elif getattr(r, attr) is not None:  # a forward that fit before the training step did not
                    row.append(fmt.format(getattr(r, attr)))
                else:
                    row.append("-" if r.status == "skipped" else f"{r.status}")
            lines.append(f"| {mixer} | " + " | ".join(row) + " |")
    failures = [r for r in results if r.status not in ("ok", "skipped")]
    if failures:
        lines += ["", "Stops: " + "; ".join(f"{r.mixer} at {r.length:,}: {r.reason}" for r in failures) + "."]
    return "\n".join(lines) + "\n"


def plot(results: list[Measurement], path: str | os.PathLike, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (("forward tokens/s", "forward_tokens_per_s"), ("training-step tokens/s", "train_tokens_per_s"),
              ("training-step peak memory (MiB)", "train_peak_mib"))
    for ax, (label, attr) in zip(axes, panels):
        for mixer in dict.fromkeys(r.mixer for r in results):
            points = [(r.length, getattr(r, attr)) for r in results if r.mixer == mixer and getattr(r, attr) is not None]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o", label=mixer, linestyle="--" if mixer != "fourier" else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


if __name__ == "__main__":  # the child process of `measure`
    print(json.dumps(_child(json.loads(sys.argv[1]))), flush=True)
