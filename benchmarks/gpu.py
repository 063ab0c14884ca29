"""FNet's speed on a GPU (issue 22): fnet vs transformers' FNet (fp32) vs BERT-sdpa (bf16), one run.

    python3 benchmarks/gpu.py                        # the full run on a CUDA GPU (< 10 minutes on an H200)
    python3 benchmarks/gpu.py --dry-run --out DIR    # CPU smoke run, tiny sizes (seconds; not a measurement)

Without CUDA the full run stops at once with an error; only --dry-run (= --device cpu with tiny
sizes) runs on a CPU. Sections, in this order (a --time-budget stops the run between cases and
records what it left out):

  ceiling    a large bf16 matmul: the TFLOP/s every MFU below is relative to
  numerics   the whole fnet model in bf16 (fourier_transform="auto") vs the same weights in float32
  fourier    the mixing sublayer alone, x + Re(F_n x F_d) in bf16: "fft" vs "matmul" against the
             length, both hidden sizes; the crossover is the longest length where matmul is faster;
             beside them a half-spectrum GEMM form (HalfSpectrum, not in the library): does symmetry pay?
  inference  base and small, 512 .. 131,072 tokens a sequence, ~64k tokens a batch, inference_mode:
             fnet bf16 weights ("auto"; "fft"; "auto" through CUDA graphs),
             transformers FNetModel float32, transformers BertModel bf16 with sdpa
  training   MLM steps (forward, backward, fused AdamW) at 512 .. 8,192, bf16 autocast (transformers'
             FNet: float32, the only precision its FFT runs)
  pretrain   `fnet pretrain --device cuda --bf16 --preset fnet-base --seq-len 512 --batch-size 64` on a
             synthetic corpus: its positions/s as a fraction of the bare FNetForPreTraining step of the
             same shape (forward, backward, clip, fused AdamW), and GPU utilisation from nvidia-smi
  compile    torch.compile(fullgraph=True) of the whole fnet model, base at 512: inference and training
             (last, as compiling takes minutes; rows join the inference and training tables)

Every number is a median of CUDA-event timings after warm-up. MFU = counted FLOPs x tokens/s / the
ceiling, with FLOPs 2*m*n*k per matmul: Linear layers (dense MFU), plus attention scores and
values for BERT and the DFT GEMMs of fnet's matmul form (MFU); training counts 3x the forward.
Results: OUT/results.json, results.md, results.png (default OUT: benchmarks/results/gpu).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

import fnet  # noqa: E402
from fnet import fourier  # noqa: E402
from fnet.cuda_graphs import CUDAGraphRunner  # noqa: E402

OUT_DIR = REPO / "benchmarks" / "results" / "gpu"
VOCAB = 32000
COMPILE_S = 150.0  # a compile case starts only with this much of the time budget left (inductor, base model)
PRETRAIN_S = 120.0  # likewise the pretrain section (tokenizer training, shards, 60 steps, the bare step)
GOALS = {  # issue 22, H200, base, bf16
    "inference_512_vs_bert": 1.8, "dense_mfu_512": 0.60, "training_512_vs_bert": 1.8,
    "pretrain_fraction": 0.85, "gpu_busy": 0.90, "inference_128k_vs_bert": 20.0, "numerics_rel_err": 0.01,
}


@dataclass
class Plan:
    """What one run measures; --dry-run shrinks every size."""

    device: str
    sizes: dict[str, dict[str, int]]
    lengths: list[int]
    train_lengths: list[int]
    tokens: int  # tokens per inference batch
    train_tokens: int  # tokens per training batch
    fourier_lengths: list[int]
    ceiling_n: int
    repeats: int
    warmup: int
    pretrain: dict[str, Any]
    compile_length: int  # the one length torch.compile is measured at (compiling per shape is slow)
    compile_backend: str = "inductor"
    vocab: int = VOCAB
    dry_run: bool = False


def full_plan() -> Plan:
    return Plan(
        device="cuda",
        sizes={"base": dict(hidden_size=768, num_hidden_layers=12, intermediate_size=3072, num_attention_heads=12),
               "small": dict(hidden_size=256, num_hidden_layers=4, intermediate_size=1024, num_attention_heads=4)},
        lengths=[512, 2048, 8192, 32768, 131072], train_lengths=[512, 2048, 8192], tokens=65536, train_tokens=16384,
        fourier_lengths=[128, 256, 512, 1024, 2048, 4096], ceiling_n=8192, repeats=10, warmup=3,
        pretrain=dict(preset="fnet-base", seq_len=512, batch_size=64, steps=60, log_every=10, vocab=32000,
                      docs=6000),
        compile_length=512,
    )


def dry_plan() -> Plan:
    return Plan(
        device="cpu",
        sizes={"tiny": dict(hidden_size=32, num_hidden_layers=2, intermediate_size=64, num_attention_heads=4)},
        lengths=[16, 64], train_lengths=[16], tokens=128, train_tokens=64, fourier_lengths=[8, 32],
        ceiling_n=128, repeats=2, warmup=1,
        pretrain=dict(preset="fnet-tiny", seq_len=32, batch_size=4, steps=4, log_every=2, vocab=200, docs=60),
        compile_length=16, compile_backend="aot_eager", vocab=100, dry_run=True,
    )


# ----------------------------------------------------------------------------- timing


class Timer:
    """Median seconds of ``fn`` over ``repeats`` calls after ``warmup``; CUDA events on a GPU."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def __call__(self, fn: Callable[[], Any], repeats: int, warmup: int) -> float:
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeats):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None


# ----------------------------------------------------------------------------- models and FLOPs


def fnet_config(size: dict[str, int], max_len: int, transform: str, vocab: int) -> fnet.FNetConfig:
    dims = {k: v for k, v in size.items() if k != "num_attention_heads"}
    return fnet.FNetConfig(vocab_size=vocab, max_position_embeddings=max_len, hidden_dropout_prob=0.0,
                           fourier_transform=transform, **dims)


def hf_fnet_model(size: dict[str, int], max_len: int, mlm: bool, vocab: int):
    import transformers

    dims = {k: v for k, v in size.items() if k != "num_attention_heads"}
    config = transformers.FNetConfig(vocab_size=vocab, max_position_embeddings=max_len, hidden_dropout_prob=0.0,
                                     **dims)
    return (transformers.FNetForMaskedLM if mlm else transformers.FNetModel)(config)


def bert_model(size: dict[str, int], max_len: int, mlm: bool, vocab: int):
    import transformers

    config = transformers.BertConfig(vocab_size=vocab, max_position_embeddings=max_len, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0, **size)
    cls = transformers.BertForMaskedLM if mlm else transformers.BertModel
    try:
        model = cls._from_config(config, attn_implementation="sdpa")
    except (TypeError, ValueError):
        config._attn_implementation = "sdpa"
        model = cls(config)
    implementation = getattr(model.config, "_attn_implementation", None)
    if implementation != "sdpa":
        raise RuntimeError(f"transformers built BERT with attention {implementation!r}, not sdpa")
    return model


def dense_flops_per_token(model: torch.nn.Module) -> float:
    """2 x (weights of every Linear applied per token): the pooler and NSP head run once a sequence."""
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and "pooler" not in name and "seq_relationship" not in name:
            total += module.in_features * module.out_features
    return 2.0 * total


def mixing_flops_per_token(kind: str, size: dict[str, int], length: int, matmul_form: bool) -> float:
    """FLOPs a token of the mixing itself counted for MFU: attention scores + values (BERT), the DFT GEMMs
    of fnet's matmul form (4 d (n + d) a token a layer); the FFT is not counted."""
    d, layers = size["hidden_size"], size["num_hidden_layers"]
    if kind == "bert":
        return layers * 4.0 * length * d
    if kind == "fnet" and matmul_form:
        return layers * 4.0 * d * (length + d)
    return 0.0


def uses_matmul_form(transform: str, device: str, length: int, half: bool) -> bool:
    return transform == "matmul" or (transform == "auto" and fourier.auto_method(device, length, half) == "matmul")


# ----------------------------------------------------------------------------- sections


@dataclass
class Run:
    plan: Plan
    out: Path
    budget_s: float
    started: float = field(default_factory=time.monotonic)
    report: dict[str, Any] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    def time_left(self, case: str, need_s: float = 0.0) -> bool:
        """Whether ``case`` (expected to take ``need_s``) may start within the budget; records it if not."""
        if time.monotonic() - self.started + need_s < self.budget_s:
            return True
        self.left_out.append(case)
        return False


def measure_ceiling(run: Run, timer: Timer) -> float:
    n = run.plan.ceiling_n
    dtype = torch.bfloat16 if run.plan.device == "cuda" else torch.float32
    a = torch.randn(n, n, device=run.plan.device, dtype=dtype)
    b = torch.randn(n, n, device=run.plan.device, dtype=dtype)
    seconds = timer(lambda: torch.matmul(a, b), run.plan.repeats, run.plan.warmup)
    flops = 2.0 * n**3 / seconds
    run.report["ceiling"] = {"matmul": f"{n}x{n} @ {n}x{n} {str(dtype).replace('torch.', '')}", "tflops": flops / 1e12}
    print(f"ceiling: {flops / 1e12:.1f} TFLOP/s", flush=True)
    return flops


def measure_numerics(run: Run) -> None:
    plan = run.plan
    size = next(iter(plan.sizes.values()))
    length = plan.lengths[0]
    torch.manual_seed(0)
    reference = fnet.FNetModel(fnet_config(size, length, "fft", plan.vocab)).to(plan.device).eval()
    fast = fnet.FNetModel(fnet_config(size, length, "auto", plan.vocab)).to(plan.device).eval()
    fast.load_state_dict(reference.state_dict())
    fast.to(torch.bfloat16)
    ids = torch.randint(5, plan.vocab, (4, length), device=plan.device)
    mask = torch.ones_like(ids)
    mask[1, length // 3:] = 0
    rows = {}
    with torch.inference_mode():
        for name, m in (("no mask", None), ("padded", mask)):
            want = reference(ids, attention_mask=m).last_hidden_state.double()
            got = fast(ids, attention_mask=m).last_hidden_state.double()
            keep = torch.ones_like(ids, dtype=torch.bool) if m is None else m.bool()
            rows[name] = float((got[keep] - want[keep]).norm() / want[keep].norm())
    form = "matmul" if uses_matmul_form("auto", plan.device, length, True) else "fft"
    run.report["numerics"] = {"size": size, "length": length, "form": form, "relative_error": rows}
    print(f"numerics: bf16 {form} vs float32 fft, relative error {rows}", flush=True)


class HalfSpectrum:
    """x + Re(F_n x F_d) by GEMMs over the half spectrum, measured here to decide whether the
    symmetry of a real input pays on the GPU (not in the library: it needs a mirrored write).

    Only columns 0..h-1 (h = d//2 + 1) of x C_d and x S_d are formed (saving 2 b n d^2 of the form's
    4 b n d (n + d) flops); one GEMM with [[C_n, -S_n], [C_n, S_n]] (interleaved) gives P = C A - S B,
    the output's columns 0..h-1, and Q = C A + S B, whose columns 1..m are output columns d-1..h.
    """

    def __init__(self, n: int, d: int, device: str, dtype: torch.dtype):
        k_n, k_d = torch.arange(n, device=device), torch.arange(d, device=device)
        angle_n = (torch.outer(k_n, k_n) % n).double() * (2 * math.pi / n)  # (n, n)
        angle_d = (torch.outer(k_d, k_d[: d // 2 + 1]) % d).double() * (2 * math.pi / d)  # (d, h)
        self.hidden = torch.cat([angle_d.cos(), angle_d.sin()], dim=1).to(dtype)  # (d, 2h)
        c, s = angle_n.cos(), angle_n.sin()
        minus = torch.stack([c, -s], dim=-1).flatten(-2)  # (n, 2n)
        plus = torch.stack([c, s], dim=-1).flatten(-2)
        self.seq = torch.cat([minus, plus], dim=0).to(dtype)  # (2n, 2n)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = d // 2 + 1
        m = d - h
        z = torch.matmul(x, self.hidden).view(b, 2 * n, h)  # rows 2t, 2t+1: (x C_d)[t, :h], (x S_d)[t, :h]
        pq = torch.bmm(self.seq.expand(b, 2 * n, 2 * n), z)  # (b, 2n, h): P rows 0..n-1, Q rows n..2n-1
        out = torch.empty_like(x)
        torch.add(x[..., :h], pq[:, :n], out=out[..., :h])
        torch.add(x[..., h:], pq[:, n:, 1 : 1 + m].flip(-1), out=out[..., h:])
        return out


def measure_fourier(run: Run, timer: Timer) -> None:
    plan = run.plan
    dtype = torch.bfloat16
    rows = []
    for size_name, size in plan.sizes.items():
        d = size["hidden_size"]
        for n in plan.fourier_lengths:
            if not run.time_left(f"fourier {size_name} {n}"):
                continue
            b = max(1, plan.tokens // n)
            x = torch.randn(b, n, d, device=plan.device, dtype=dtype)
            row = {"size": size_name, "hidden": d, "length": n, "batch": b}
            half = HalfSpectrum(n, d, plan.device, dtype)
            forms = {"fft": lambda: fourier.fourier_residual(x, None, "fft"),
                     "matmul": lambda: fourier.fourier_residual(x, None, "matmul"), "matmul_half": lambda: half(x)}
            want = forms["fft"]().double()
            row["matmul_half_rel_err"] = float((forms["matmul_half"]().double() - want).norm() / want.norm())
            for method, fn in forms.items():
                seconds = timer(fn, plan.repeats, plan.warmup)
                row[f"{method}_us"] = seconds * 1e6
                row[f"{method}_tok_s"] = b * n / seconds
            rows.append(row)
            print(f"fourier {size_name} n={n}: fft {row['fft_us']:.0f} us, matmul {row['matmul_us']:.0f} us, "
                  f"half spectrum {row['matmul_half_us']:.0f} us", flush=True)
            del x
    crossover = {}
    for size_name in plan.sizes:
        faster = [r["length"] for r in rows if r["size"] == size_name and r["matmul_us"] < r["fft_us"]]
        crossover[size_name] = max(faster) if faster else 0
    run.report["fourier"] = {"rows": rows, "crossover": crossover,
                             "shipped_matmul_max_length": fourier.AUTO.matmul_max_length}


def _inference_cases(plan: Plan, size: dict[str, int], length: int, compiled_only: bool):
    """(name, kind, build, transform, graphs, compiled): the models of the inference table."""
    def fnet_build(transform):
        return lambda: fnet.FNetModel(fnet_config(size, length, transform, plan.vocab)).to(plan.device, torch.bfloat16)

    if compiled_only:
        return [("fnet + torch.compile", "fnet", fnet_build("auto"), "auto", False, True)]
    cases = [("fnet", "fnet", fnet_build("auto"), "auto", False, False),
             ("fnet fft", "fnet", fnet_build("fft"), "fft", False, False)]
    if plan.device == "cuda":
        cases.append(("fnet + CUDA graphs", "fnet", fnet_build("auto"), "auto", True, False))
    cases.append(("transformers FNet fp32", "hf-fnet",
                  lambda: hf_fnet_model(size, length, False, plan.vocab).to(plan.device), None, False, False))
    cases.append(("BERT sdpa bf16", "bert",
                  lambda: bert_model(size, length, False, plan.vocab).to(plan.device, torch.bfloat16), None, False, False))
    return cases


def _each_case(run: Run, section: str, lengths: list[int], tokens: int, cases_of, compiled_only: bool):
    """(size name, size, length, batch, case) for each case of a table that the time budget lets start
    (the others are recorded as left out). ``compiled_only``: the torch.compile row alone, first size at
    ``compile_length``."""
    plan = run.plan
    for size_name, size in plan.sizes.items():
        for length in lengths:
            if compiled_only and (size_name != next(iter(plan.sizes)) or length != plan.compile_length):
                continue
            batch = max(1, tokens // length)
            for case in cases_of(size, length, compiled_only):
                if run.time_left(f"{section} {size_name} {length} {case[0]}", COMPILE_S if case[-1] else 0.0):
                    yield size_name, size, length, batch, case


def _record(run: Run, timer: Timer, section: str, row: dict[str, Any], measure: Callable[[], dict]) -> None:
    """Append ``row`` updated with ``measure()``; an OOM or a refusal is a result too, kept as ``error``."""
    try:
        timer.reset_peak()
        row.update(measure())
    except Exception as error:
        row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        if timer.cuda:
            torch.cuda.empty_cache()
    run.report.setdefault(section, []).append(row)
    print(f"{section} {row['size']} n={row['length']} b={row['batch']} {row['model']}: "
          f"{row.get('tok_s', float('nan')):,.0f} tok/s {row.get('error', '')}", flush=True)


def measure_inference(run: Run, timer: Timer, ceiling: float, compiled_only: bool = False) -> None:
    """The inference table; ``compiled_only``: the torch.compile row (first size, compile_length)."""
    plan = run.plan

    def measure(size, length, batch, case) -> dict:
        name, kind, build, transform, graphs, compiled = case
        with torch.device(plan.device):  # weights initialised where they run: fast
            model = build().eval()
        ids = torch.randint(5, plan.vocab, (batch, length), device=plan.device)
        with torch.inference_mode() if not graphs else torch.no_grad():
            if graphs:
                runner = CUDAGraphRunner(model, clone_outputs=False)
                step = lambda: runner(input_ids=ids)  # noqa: E731
            elif compiled:
                forward = torch.compile(model, fullgraph=True, backend=plan.compile_backend)
                step = lambda: forward(ids)  # noqa: E731
            else:
                step = lambda: model(ids)  # noqa: E731
            seconds = timer(step, plan.repeats if length < 32768 else 3, plan.warmup)
        tok_s = batch * length / seconds
        matmul_form = kind == "fnet" and uses_matmul_form(transform, plan.device, length, True)
        dense = dense_flops_per_token(model)
        mixing = mixing_flops_per_token(kind, size, length, matmul_form)
        return dict(tok_s=tok_s, ms=seconds * 1e3, peak_mib=timer.peak_mib(),
                    fourier_form=("matmul" if matmul_form else "fft") if kind == "fnet" else None,
                    dense_mfu=dense * tok_s / ceiling, mfu=(dense + mixing) * tok_s / ceiling)

    run.report.setdefault("inference", [])
    cases_of = lambda size, length, only: _inference_cases(plan, size, length, only)  # noqa: E731
    for size_name, size, length, batch, case in _each_case(run, "inference", plan.lengths, plan.tokens, cases_of,
                                                           compiled_only):
        _record(run, timer, "inference", {"size": size_name, "length": length, "batch": batch, "model": case[0]},
                lambda: measure(size, length, batch, case))


def _mlm_batch(batch: int, length: int, device: str, vocab: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, vocab, (batch, length), device=device)
    labels = torch.where(torch.rand(batch, length, device=device) < 0.15, ids, torch.full_like(ids, -100))
    return {"input_ids": ids, "labels": labels}


def _train_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], device: str, autocast: bool,
                clip: float | None = None) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch).loss
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _training_cases(plan: Plan, size: dict[str, int], length: int, compiled_only: bool):
    """(name, kind, build, autocast, transform, compiled): the models of the training table."""
    def fnet_mlm(transform):
        return lambda: fnet.FNetForMaskedLM(fnet_config(size, length, transform, plan.vocab))

    if compiled_only:
        return [("fnet + torch.compile", "fnet", fnet_mlm("auto"), True, "auto", True)]
    return [("fnet", "fnet", fnet_mlm("auto"), True, "auto", False),
            ("fnet fft", "fnet", fnet_mlm("fft"), True, "fft", False),
            ("transformers FNet fp32", "hf-fnet", lambda: hf_fnet_model(size, length, True, plan.vocab), False, None,
             False),
            ("BERT sdpa bf16 autocast", "bert", lambda: bert_model(size, length, True, plan.vocab), True, None, False)]


def measure_training(run: Run, timer: Timer, ceiling: float, compiled_only: bool = False) -> None:
    """The training table; ``compiled_only``: the torch.compile row (first size, compile_length)."""
    plan = run.plan

    def measure(size, length, batch, case) -> dict:
        name, kind, build, autocast, transform, compiled = case
        with torch.device(plan.device):
            model = build().train()
        module = torch.compile(model, fullgraph=True, backend=plan.compile_backend) if compiled else model
        step = _train_step(module, _mlm_batch(batch, length, plan.device, plan.vocab), plan.device, autocast)
        seconds = timer(step, plan.repeats, plan.warmup)
        tok_s = batch * length / seconds
        matmul_form = kind == "fnet" and uses_matmul_form(transform, plan.device, length, autocast)
        dense = 3 * dense_flops_per_token(model)
        mixing = 3 * mixing_flops_per_token(kind, size, length, matmul_form)
        return dict(tok_s=tok_s, ms=seconds * 1e3, peak_mib=timer.peak_mib(),
                    dense_mfu=dense * tok_s / ceiling, mfu=(dense + mixing) * tok_s / ceiling)

    run.report.setdefault("training", [])
    cases_of = lambda size, length, only: _training_cases(plan, size, length, only)  # noqa: E731
    for size_name, size, length, batch, case in _each_case(run, "training", plan.train_lengths, plan.train_tokens,
                                                           cases_of, compiled_only):
        _record(run, timer, "training", {"size": size_name, "length": length, "batch": batch, "model": case[0]},
                lambda: measure(size, length, batch, case))


def _synthetic_corpus(path: Path, docs: int, seed: int = 0) -> Path:
    """Documents of pseudo-words (Zipf-like frequencies), a sentence a line, blank lines between."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "zu", "ga", "bri", "den", "for", "ul", "an"]
    words = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(20000)})
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    with path.open("w", encoding="utf-8") as f:
        for _ in range(docs):
            for _ in range(rng.randint(8, 30)):
                f.write(" ".join(rng.choices(words, weights, k=rng.randint(6, 24))).capitalize() + ".\n")
            f.write("\n")
    return path


class _GpuBusy:
    """nvidia-smi utilisation sampled every 0.5 s in a thread (None where nvidia-smi is absent)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.available = shutil.which("nvidia-smi") is not None

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                      "-i", str(torch.cuda.current_device())], capture_output=True, text=True,
                                     timeout=5).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                pass

    def __enter__(self) -> "_GpuBusy":
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()


def measure_pretrain(run: Run, timer: Timer) -> None:
    plan, p = run.plan, run.plan.pretrain
    if not run.time_left("pretrain", PRETRAIN_S):
        return
    work = Path(tempfile.mkdtemp(prefix="fnet-gpu-pretrain-"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    fnet_cmd = [sys.executable, "-m", "fnet"]
    try:
        corpus = _synthetic_corpus(work / "corpus.txt", p["docs"])
        subprocess.run(fnet_cmd + ["tokenizer", "train", "--input", str(corpus), "--vocab-size", str(p["vocab"]),
                                   "--output", str(work / "tok")], check=True, env=env, capture_output=True)
        args = ["pretrain", "--train-files", str(corpus), "--tokenizer", str(work / "tok"), "--output",
                str(work / "run"), "--preset", p["preset"], "--seq-len", str(p["seq_len"]), "--batch-size",
                str(p["batch_size"]), "--max-steps", str(p["steps"]), "--log-every", str(p["log_every"]),
                "--save-every", "0", "--eval-batches", "1", "--device", plan.device, "--no-progress"]
        if plan.dry_run:
            args += ["--threads", "1"]
        args.append("--bf16")  # also in the CPU dry run, so the smoke test checks the very flags of the GPU run
        t0 = time.monotonic()
        with _GpuBusy() as busy:
            done = subprocess.run(fnet_cmd + args, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"fnet pretrain failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        lines = [json.loads(x) for x in (work / "run" / "metrics.jsonl").read_text().splitlines() if x.strip()]
        lines = [x for x in lines if "elapsed_s" in x]
        if len(lines) < 2:
            raise RuntimeError("fnet pretrain logged fewer than two lines; raise the step count")
        first, last = lines[0], lines[-1]  # the first window holds start-up and compilation of kernels
        steps, seconds = last["step"] - first["step"], last["elapsed_s"] - first["elapsed_s"]
        positions_s = steps * p["batch_size"] * p["seq_len"] / seconds
        real_tok_s = statistics.median(x["tokens_per_s"] for x in lines[1:])
        # the bare step of the same model and shape: FNetForPreTraining, bf16 autocast, clip 1.0, fused AdamW
        config = fnet.FNetConfig.from_pretrained(str(work / "run"))
        model = fnet.FNetForPreTraining(config).to(plan.device).train()
        ids = torch.randint(7, config.vocab_size, (p["batch_size"], p["seq_len"]), device=plan.device)
        labels = torch.where(torch.rand(ids.shape, device=plan.device) < 0.15, ids, torch.full_like(ids, -100))
        batch = {"input_ids": ids, "labels": labels, "token_type_ids": torch.zeros_like(ids),
                 "attention_mask": torch.ones_like(ids),
                 "next_sentence_label": torch.zeros(p["batch_size"], dtype=torch.long, device=plan.device)}
        step = _train_step(model, batch, plan.device, True, clip=1.0)
        bare_s = timer(step, plan.repeats, plan.warmup)
        bare = p["batch_size"] * p["seq_len"] / bare_s
        run.report["pretrain"] = {
            "command": "fnet " + " ".join(a if not a.startswith(str(work)) else "<tmp>" + a[len(str(work)):] for a in args),
            "positions_per_s": positions_s, "real_tokens_per_s": real_tok_s, "bare_step_positions_per_s": bare,
            "fraction_of_bare_step": positions_s / bare, "wall_s": time.monotonic() - t0,
            "gpu_busy_mean": statistics.mean(busy.samples) / 100 if busy.samples else None,
            "gpu_busy_samples": len(busy.samples)}
        print(f"pretrain: {positions_s:,.0f} positions/s = {positions_s / bare:.0%} of the bare step ({bare:,.0f})",
              flush=True)
    except Exception as error:
        run.report["pretrain"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        print(f"pretrain: {run.report['pretrain']['error']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- report


def machine(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        info["transformers"] = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
        if shutil.which("nvidia-smi"):
            info["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm",
                                                 "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    else:
        info["cpu"] = platform.processor() or platform.machine()
        info["load_average"] = os.getloadavg()
    return info


def _ratio(rows: list[dict], size: str, length: int, model: str, baseline: str) -> float | None:
    def tok(name):
        hits = [r.get("tok_s") for r in rows if r["size"] == size and r["length"] == length and r["model"] == name]
        return hits[0] if hits and hits[0] else None
    a, b = tok(model), tok(baseline)
    return a / b if a and b else None


def goals(report: dict[str, Any], plan: Plan) -> list[dict[str, Any]]:
    size = next(iter(plan.sizes))
    first, last = plan.lengths[0], plan.lengths[-1]
    inf, tr = report.get("inference", []), report.get("training", [])
    best_512 = max((r for r in inf if r["size"] == size and r["length"] == first and r["model"].startswith("fnet")
                    and r.get("tok_s")), key=lambda r: r["tok_s"], default=None)
    best_train = max((r for r in tr if r["size"] == size and r["length"] == plan.train_lengths[0]
                      and r["model"].startswith("fnet") and r.get("tok_s")), key=lambda r: r["tok_s"], default=None)
    pre = report.get("pretrain", {})
    num = report.get("numerics", {}).get("relative_error", {})
    rows = [
        ("inference at %d, best fnet / BERT-sdpa" % first, GOALS["inference_512_vs_bert"],
         best_512 and _ratio(inf, size, first, best_512["model"], "BERT sdpa bf16"), best_512 and best_512["model"]),
        ("dense-layer MFU of that fnet row", GOALS["dense_mfu_512"], best_512 and best_512.get("dense_mfu"), None),
        ("training step at %d, best fnet / BERT-sdpa" % plan.train_lengths[0], GOALS["training_512_vs_bert"],
         best_train and _ratio(tr, size, plan.train_lengths[0], best_train["model"], "BERT sdpa bf16 autocast"),
         best_train and best_train["model"]),
        ("fnet pretrain / bare step", GOALS["pretrain_fraction"], pre.get("fraction_of_bare_step"), None),
        ("GPU busy during fnet pretrain", GOALS["gpu_busy"], pre.get("gpu_busy_mean"), None),
        ("inference at %d, fnet / BERT-sdpa" % last, GOALS["inference_128k_vs_bert"],
         _ratio(inf, size, last, "fnet", "BERT sdpa bf16"), None),
        ("bf16 whole model vs float32, relative error (at most)", GOALS["numerics_rel_err"],
         max(num.values()) if num else None, None),
    ]
    out = []
    for name, target, value, which in rows:
        at_most = "error" in name
        met = None if value is None or plan.dry_run else (value <= target if at_most else value >= target)
        out.append({"goal": name, "target": target, "value": value, "met": met, "row": which})
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    title = "DRY RUN on the CPU (a smoke test of the script, not a measurement)" if report["dry_run"] else \
        f"fnet on {m.get('gpu', 'a GPU')}"
    lines = [f"# {title}", "", f"Command: `{report['command']}`  ", f"Date (UTC): {report['date']}  ",
             f"Machine: {json.dumps(m)}  ",
             f"Ceiling: {report.get('ceiling', {}).get('matmul')} = {_fmt(report.get('ceiling', {}).get('tflops'))} TFLOP/s",
             ""]
    if report.get("left_out"):
        lines += [f"Left out by the time budget: {', '.join(report['left_out'])}", ""]
    lines += ["## Goals (issue 22)", "", "| goal | target | measured | met |", "|---|---|---|---|"]
    for g in report["goals"]:
        value = _fmt(g["value"], 3) + (f" ({g['row']})" if g["row"] else "")
        lines.append(f"| {g['goal']} | {g['target']} | {value} | {'-' if g['met'] is None else 'yes' if g['met'] else 'no'} |")
    if "numerics" in report:
        n = report["numerics"]
        lines += ["", f"Numerics: bf16 `{n['form']}` form vs float32, length {n['length']}: "
                  + ", ".join(f"{k} {v:.2e}" for k, v in n["relative_error"].items())]
    for section, baseline in (("inference", "BERT sdpa bf16"), ("training", "BERT sdpa bf16 autocast")):
        rows = report.get(section, [])
        if not rows:
            continue
        lines += ["", f"## {section.capitalize()}", "",
                  "| size | tokens/seq | batch | model | tok/s | vs BERT | peak MiB | MFU | dense MFU |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            ratio = _ratio(rows, r["size"], r["length"], r["model"], baseline)
            lines.append(f"| {r['size']} | {r['length']:,} | {r['batch']} | {r['model']} | "
                         f"{_fmt(r.get('tok_s')) if 'error' not in r else r['error']} | {_fmt(ratio)} | "
                         f"{_fmt(r.get('peak_mib'))} | {_fmt(r.get('mfu'), 3)} | {_fmt(r.get('dense_mfu'), 3)} |")
    if "fourier" in report:
        f = report["fourier"]
        lines += ["", "## The mixing sublayer alone (bf16, x + Re(F_n x F_d))", "",
                  f"Crossover (longest length where matmul beats fft): {f['crossover']}; shipped "
                  f"`fourier.AUTO.matmul_max_length` = {f['shipped_matmul_max_length']}", "",
                  "| size | length | batch | fft us | matmul us | half-spectrum matmul us (not shipped) |",
                  "|---|---|---|---|---|---|"]
        for r in f["rows"]:
            lines.append(f"| {r['size']} | {r['length']} | {r['batch']} | {r['fft_us']:.0f} | {r['matmul_us']:.0f} | "
                         f"{r['matmul_half_us']:.0f} (rel. err {r['matmul_half_rel_err']:.1e}) |")
    if "pretrain" in report:
        p = report["pretrain"]
        lines += ["", "## fnet pretrain vs the bare training step", ""]
        if "error" in p:
            lines.append(f"Error: {p['error']}")
        else:
            busy = "-" if p["gpu_busy_mean"] is None else f"{p['gpu_busy_mean']:.0%}"
            lines += [f"`{p['command']}`: {_fmt(p['positions_per_s'])} positions/s ({_fmt(p['real_tokens_per_s'])} "
                      f"real tokens/s) vs the bare step's {_fmt(p['bare_step_positions_per_s'])}: "
                      f"**{p['fraction_of_bare_step']:.0%}**; GPU busy (nvidia-smi mean): {busy}"]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.get("inference", []) if r.get("tok_s")]
    sizes = sorted({r["size"] for r in rows})
    fig, axes = plt.subplots(1, max(1, len(sizes)), figsize=(6 * max(1, len(sizes)), 4.5), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for model in dict.fromkeys(r["model"] for r in rows if r["size"] == size):
            pts = sorted((r["length"], r["tok_s"]) for r in rows if r["size"] == size and r["model"] == model)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=model)
        ax.set(xscale="log", yscale="log", xlabel="tokens per sequence", ylabel="tokens/s (inference)", title=size)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(("DRY RUN (CPU smoke) - " if report["dry_run"] else "") + report["machine"].get("gpu", "CPU"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help=f"results folder (default {OUT_DIR.relative_to(REPO)})")
    parser.add_argument("--dry-run", action="store_true", help="CPU smoke run with tiny sizes (not a measurement)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu implies --dry-run: the full sizes are for a GPU")
    parser.add_argument("--time-budget", type=float, default=480.0, metavar="S",
                        help="stop starting new cases after S seconds (recorded in the results)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["numerics", "fourier", "inference", "training", "pretrain", "compile"],
                        help="sections to leave out")
    args = parser.parse_args(argv)
    dry = args.dry_run or args.device == "cpu"
    if not dry and not torch.cuda.is_available():
        parser.error("no CUDA device: this benchmark measures a GPU. Run it where `torch.cuda.is_available()` "
                     "is true, or use --dry-run for the CPU smoke run")
    if dry and args.out is None:
        parser.error("--dry-run writes its (unmeasured) results only to an explicit --out folder")
    plan = dry_plan() if dry else full_plan()
    if plan.dry_run:
        torch.set_num_threads(1)  # tiny sizes: more threads only contend on a shared CPU
    out = args.out or OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    if plan.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # transformers' FNet really in float32 (the default)
    timer = Timer(plan.device)
    run = Run(plan, out, args.time_budget)
    run.report.update(command="python3 benchmarks/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                      date=time.strftime("%Y-%m-%d %H:%M", time.gmtime()), machine=machine(plan.device),
                      dry_run=plan.dry_run)
    ceiling = measure_ceiling(run, timer)
    sections = [("numerics", lambda: measure_numerics(run)), ("fourier", lambda: measure_fourier(run, timer)),
                ("inference", lambda: measure_inference(run, timer, ceiling)),
                ("training", lambda: measure_training(run, timer, ceiling)),
                ("pretrain", lambda: measure_pretrain(run, timer)),
                ("compile", lambda: (measure_inference(run, timer, ceiling, compiled_only=True),
                                     measure_training(run, timer, ceiling, compiled_only=True)))]
    run.report["section_s"] = {}
    for name, section in sections:
        if name not in args.skip:
            t0 = time.monotonic()
            section()
            run.report["section_s"][name] = round(time.monotonic() - t0, 1)
    run.report["left_out"] = run.left_out
    run.report["goals"] = goals(run.report, plan)
    run.report["wall_s"] = time.monotonic() - run.started
    _atomic_write(out / "results.json", json.dumps(run.report, indent=1, default=str) + "\n")
    _atomic_write(out / "results.md", markdown(run.report))
    plot(run.report, out / "results.png")
    print(f"wrote {out / 'results.md'} ({run.report['wall_s']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
