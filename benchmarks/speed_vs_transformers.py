"""fnet's FNet vs transformers' FNet and BERT (sdpa): same sizes, threads and inputs, interleaved.

    python3 benchmarks/speed_vs_transformers.py            # full run, ~15 min on 2 cores
    python3 benchmarks/speed_vs_transformers.py --quick    # tiny smoke run (seconds)

Sections, each measured round-robin (A, B, C, A, B, C, ...) with medians reported:
  inference  tokens/s for small/base at several lengths (torch.inference_mode, float32)
  training   fwd + bwd + AdamW steps at 512: bare encoders, and with the pretraining heads
             (MLM over the 32,000 vocabulary + NSP, 15% masked); fnet computes the MLM head on
             masked positions only (only_masked_logits), transformers on every position
  fourier    the mixing sublayer alone vs the memory floor (one read + write: x.clone())
  onnx       onnxruntime on fnet's ONNX export beside PyTorch (small, 128 and 512)
  ceiling    a large float32 matmul, measured inside each round, for MFU

MFU = (dense-layer matmul FLOPs per token x tokens/s) / the matmul ceiling; FLOPs are 2*m*n*k per
matmul (see flops_per_token). Wall-clock medians are the headline; process CPU seconds are
recorded too, as a check that does not depend on how busy the machine was.
Results: benchmarks/results/speed/speed_vs_transformers.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "benchmarks" / "results" / "speed"
VOCAB = 32000

SIZES = {  # hidden, layers, ffn, BERT heads
    "small": dict(hidden_size=256, num_hidden_layers=4, intermediate_size=1024, num_attention_heads=4),
    "base": dict(hidden_size=768, num_hidden_layers=12, intermediate_size=3072, num_attention_heads=12),
}
# (size, length, batch, rounds, warmup): batches sized so one forward takes ~0.5-2 s on this
# 2-core machine while it is shared; the base rows of 4,096+ tokens take tens of seconds per call
# for the baselines (BERT is quadratic), so they get fewer rounds to keep the run near 15 minutes
INFERENCE_ROWS = [
    ("small", 128, 16, 3, 1), ("small", 512, 4, 3, 1), ("small", 8192, 1, 3, 1),
    ("base", 512, 1, 3, 1), ("base", 4096, 1, 2, 0), ("base", 8192, 1, 1, 0),
]
TARGETS = {  # (kind, size, length, baseline) -> minimum ratio fnet / baseline (issue 7)
    ("inference", "small", 512, "transformers FNet"): 3.0,
    ("inference", "base", 512, "transformers FNet"): 1.5,
    ("inference", "small", 512, "transformers BERT"): 1.8,
    ("inference", "base", 512, "transformers BERT"): 1.3,
    ("inference", "base", 4096, "transformers BERT"): 2.5,
}
MFU_TARGET = 0.70


# ----------------------------------------------------------------------------- timing


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # process CPU seconds (all threads)


def timed(fn) -> Sample:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu)


def round_robin(fns: dict, rounds: int, warmup: int = 1) -> dict[str, list[Sample]]:
    """Call each fn ``warmup`` times, then ``rounds`` times interleaved A, B, C, A, B, C."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[Sample]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(timed(fn))
    return samples


def median(samples: list[Sample], field: str = "wall") -> float:
    return statistics.median(getattr(s, field) for s in samples)


def matmul_ceiling(size: int) -> callable:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return lambda: torch.mm(a, b)


# ----------------------------------------------------------------------------- models


def flops_per_token(kind: str, size: str, length: int) -> float:
    """Dense-layer matmul FLOPs per token of one forward pass (2*m*n*k per matmul, per token: 2*k*n).

    FNet: embedding projection 2d^2 + L * (2*d*f + 2*f*d) + pooler 2d^2/n.
    BERT: L * (4 * 2d^2 [q, k, v, out] + 4*d*f + 2 * 2*n*d [q k^T and attn v]) + pooler 2d^2/n.
    The FFT and the elementwise ops are not counted (they are not matmuls).
    """
    s = SIZES[size]
    d, f, L = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"]
    pooler = 2 * d * d / length
    if kind == "bert":
        return L * (8 * d * d + 4 * d * f + 4 * length * d) + pooler
    return 2 * d * d + L * 4 * d * f + pooler


def build(kind: str, size: str, max_len: int, task: str = "base"):
    """kind: fnet | fnet-attention | hf-fnet | hf-bert; task: base | pretraining."""
    import transformers

    import fnet

    s = dict(SIZES[size])
    heads = s.pop("num_attention_heads")
    common = dict(vocab_size=VOCAB, max_position_embeddings=max(512, max_len), hidden_dropout_prob=0.0, **s)
    if kind in ("fnet", "fnet-attention"):
        extra = dict(token_mixer="attention", num_attention_heads=heads, attention_probs_dropout_prob=0.0) \
            if kind == "fnet-attention" else {}
        config = fnet.FNetConfig(**common, **extra)
        model = fnet.FNetForPreTraining(config) if task == "pretraining" else fnet.FNetModel(config)
        fnet.optimize_for_inference(model)  # fused CPU kernels for eval + no-grad calls; training is unchanged
    elif kind == "hf-fnet":
        config = transformers.FNetConfig(**common)
        model = transformers.FNetForPreTraining(config) if task == "pretraining" else transformers.FNetModel(config)
    elif kind == "hf-bert":
        config = transformers.BertConfig(**common, num_attention_heads=heads, attention_probs_dropout_prob=0.0,
                                         attn_implementation="sdpa")
        model = transformers.BertForPreTraining(config) if task == "pretraining" else transformers.BertModel(config)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return model


LABELS = {"fnet": "fnet FNet", "hf-fnet": "transformers FNet", "hf-bert": "transformers BERT",
          "fnet-attention": "fnet attention-mixer"}


def inputs(batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(7, VOCAB, (batch, length), generator=gen)
    types = torch.zeros_like(ids)
    types[:, length // 2 :] = 1
    return {"input_ids": ids, "token_type_ids": types}


# ----------------------------------------------------------------------------- sections


def bench_inference(rows, ceiling_fn) -> list[dict]:
    results = []
    for size, length, batch, n_rounds, warmup in rows:
        models = {kind: build(kind, size, length).eval() for kind in ("fnet", "hf-fnet", "hf-bert")}
        feed = inputs(batch, length)

        def forward(model):
            def run():
                with torch.inference_mode():
                    model(**feed)
            return run

        fns = {kind: forward(m) for kind, m in models.items()}
        fns["ceiling"] = ceiling_fn
        samples = round_robin(fns, n_rounds, warmup)
        ceiling = ceiling_fn.flops / median(samples.pop("ceiling"))
        row = {"size": size, "length": length, "batch": batch, "rounds": n_rounds, "ceiling_flops": ceiling, "models": {}}
        for kind, s in samples.items():
            tok = batch * length / median(s)
            flops = flops_per_token("bert" if kind == "hf-bert" else "fnet", size, length)
            row["models"][LABELS[kind]] = {
                "tokens_per_s": tok, "tokens_per_cpu_s": batch * length / median(s, "cpu"),
                "mfu": tok * flops / ceiling, "wall_s": [x.wall for x in s], "cpu_s": [x.cpu for x in s],
            }
        results.append(row)
        print(_inference_line(row), flush=True)
        del models
    return results


def _inference_line(row: dict) -> str:
    m = row["models"]
    ours = m["fnet FNet"]["tokens_per_s"]
    parts = [f"{row['size']}/{row['length']} (batch {row['batch']}):"]
    for name, r in m.items():
        parts.append(f"{name} {r['tokens_per_s']:,.0f} tok/s (MFU {r['mfu']:.0%})")
    parts.append(f"ratios: {ours / m['transformers FNet']['tokens_per_s']:.2f}x FNet, "
                 f"{ours / m['transformers BERT']['tokens_per_s']:.2f}x BERT")
    return "  ".join(parts)


def bench_training(size: str, length: int, batch: int, steps: int) -> list[dict]:
    results = []
    mask_gen = torch.Generator().manual_seed(1)
    feed = inputs(batch, length, seed=2)
    labels = torch.full((batch, length), -100, dtype=torch.long)
    masked = torch.rand(batch, length, generator=mask_gen) < 0.15
    labels[masked] = feed["input_ids"][masked]
    nsp = torch.randint(0, 2, (batch,), generator=mask_gen)
    for task in ("base", "pretraining"):
        kinds = ["fnet", "hf-fnet", "hf-bert", "fnet-attention"]
        fns = {}
        for kind in kinds:
            model = build(kind, size, length, task).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # the same kernel for every model

            def step(model=model, opt=opt, kind=kind):
                opt.zero_grad(set_to_none=True)
                if task == "base":
                    out = model(**feed)
                    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
                    loss = hidden.float().square().mean()
                else:
                    extra = {"only_masked_logits": True} if kind.startswith("fnet") else {}
                    label_key = "next_sentence_label"
                    loss = model(**feed, labels=labels, **{label_key: nsp}, **extra).loss
                loss.backward()
                opt.step()

            fns[LABELS[kind]] = step
        samples = round_robin(fns, steps)
        row = {"task": task, "size": size, "length": length, "batch": batch, "steps": steps, "models": {}}
        for name, s in samples.items():
            row["models"][name] = {"steps_per_s": 1 / median(s), "tokens_per_s": batch * length / median(s),
                                   "tokens_per_cpu_s": batch * length / median(s, "cpu"),
                                   "wall_s": [x.wall for x in s], "cpu_s": [x.cpu for x in s]}
        results.append(row)
        m = row["models"]
        ours = m["fnet FNet"]["steps_per_s"]
        print(f"training {task} {size}/{length} (batch {batch}): "
              + "  ".join(f"{k} {v['steps_per_s']:.3f} steps/s ({ours / v['steps_per_s']:.2f}x)" for k, v in m.items()),
              flush=True)
        del fns
    return results


def bench_fourier(shapes, rounds: int) -> list[dict]:
    from fnet.fourier import fourier_residual

    results = []
    for shape in shapes:
        x = torch.randn(*shape)
        ln = torch.nn.LayerNorm(shape[-1])
        fns = {
            "memory floor (x.clone())": lambda: x.clone(),
            "fnet x + Re(F x)": lambda: fourier_residual(x),
            "reference x + fftn(x).real": lambda: x + torch.fft.fftn(x, dim=(1, 2)).real,
            "rfft2 alone": lambda: torch.fft.rfft2(x, dim=(1, 2)),
            "fnet sublayer LN(x + Re(F x))": lambda: ln(fourier_residual(x)),
            "reference sublayer LN(x + fftn(x).real)": lambda: ln(x + torch.fft.fftn(x, dim=(1, 2)).real),
        }
        with torch.inference_mode():
            samples = round_robin(fns, rounds)
        floor = median(samples["memory floor (x.clone())"])
        row = {"shape": list(shape), "ms": {k: median(v) * 1e3 for k, v in samples.items()},
               "x_memory_floor": {k: median(v) / floor for k, v in samples.items()}}
        results.append(row)
        print(f"fourier {tuple(shape)}: " + "  ".join(f"{k} {v:.2f} ms" for k, v in row["ms"].items()), flush=True)
    return results


def bench_onnx(lengths_batches, rounds: int) -> list[dict]:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnx: onnxruntime is not installed, skipped")
        return []
    import fnet
    from fnet.export import export_onnx, load_for_export

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build("fnet", "small", 512).eval()
        model.save_pretrained(tmp)
        dft_model, task = load_for_export(tmp)
        path = Path(tmp) / "model.onnx"
        start = time.perf_counter()
        export_onnx(dft_model, path, task)
        export_s = time.perf_counter() - start
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        fnet.optimize_for_inference(dft_model)  # after the export, like `fnet predict` on the same weights
        eager = fnet.optimize_for_inference(fnet.FNetModel.from_pretrained(tmp).eval())
        for length, batch in lengths_batches:
            feed = inputs(batch, length)
            feed["attention_mask"] = torch.ones_like(feed["input_ids"])
            np_feed = {k: v.numpy() for k, v in feed.items()}

            def torch_fft(model=eager):
                with torch.inference_mode():
                    model(**feed)

            def torch_dft(model=dft_model):
                with torch.inference_mode():
                    model(**feed)

            fns = {"PyTorch fnet (FFT)": torch_fft, "PyTorch fnet (DFT matrices)": torch_dft,
                   "onnxruntime (DFT matrices)": lambda: session.run(None, np_feed)}
            samples = round_robin(fns, rounds)
            with torch.inference_mode():
                ref = eager(**feed).last_hidden_state.numpy()
            diff = float(abs(session.run(["last_hidden_state"], np_feed)[0] - ref).max())
            row = {"size": "small", "length": length, "batch": batch, "max_abs_diff_vs_torch": diff,
                   "tokens_per_s": {k: batch * length / median(v) for k, v in samples.items()}}
            results.append(row)
            print(f"onnx small/{length}: " + "  ".join(f"{k} {v:,.0f} tok/s" for k, v in row["tokens_per_s"].items())
                  + f"  max |onnx - torch| {diff:.1e}", flush=True)
        results.append({"export_seconds": export_s, "onnxruntime": ort.__version__})
    return results


ALLOCATOR_MODES = {  # name -> (environment, apply fnet.runtime.configure_allocator in the child)
    "glibc default": ({"FNET_ALLOCATOR": "default"}, False),
    "fnet configure_allocator (mallopt)": ({}, True),
    "mallopt + GLIBC_TUNABLES hugetlb=1": ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}, True),
    "GLIBC_TUNABLES hugetlb=1 alone": ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1", "FNET_ALLOCATOR": "default"}, False),
}


def allocator_child(apply: bool, size: str, length: int, batch: int, calls: int) -> dict:
    """In a fresh process: fnet forward passes; wall, CPU and system seconds and page faults per call."""
    import resource

    if apply:
        from fnet.runtime import configure_allocator

        configure_allocator()
    model = build("fnet", size, length).eval()
    feed = inputs(batch, length)
    with torch.inference_mode():
        model(**feed)
        before, walls = resource.getrusage(resource.RUSAGE_SELF), []
        for _ in range(calls):
            walls.append(timed(lambda: model(**feed)).wall)
        after = resource.getrusage(resource.RUSAGE_SELF)
    return {"tokens_per_s": batch * length / statistics.median(walls),
            "cpu_s_per_call": (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / calls,
            "sys_s_per_call": (after.ru_stime - before.ru_stime) / calls,
            "page_faults_per_call": (after.ru_minflt - before.ru_minflt) / calls}


def bench_allocator(rounds: int, threads: int) -> list[dict]:
    """Each allocator setting in its own process (glibc tunables are read at start), interleaved."""
    size, length, batch, calls = "small", 512, 16, 3
    samples: dict[str, list[dict]] = {name: [] for name in ALLOCATOR_MODES}
    for _ in range(rounds):
        for name, (env, apply) in ALLOCATOR_MODES.items():
            code = (f"import json, sys, torch; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"torch.set_num_threads({threads}); from speed_vs_transformers import allocator_child; "
                    f"print(json.dumps(allocator_child({apply}, {size!r}, {length}, {batch}, {calls})))")
            done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                                  text=True, check=True)
            samples[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    results = []
    for name, runs in samples.items():
        row = {"setting": name, "size": size, "length": length, "batch": batch, "rounds": rounds}
        for key in runs[0]:
            row[key] = statistics.median(r[key] for r in runs)
        results.append(row)
        print(f"allocator {name}: {row['tokens_per_s']:,.0f} tok/s, CPU {row['cpu_s_per_call']:.2f} s/call, "
              f"system {row['sys_s_per_call']:.2f} s/call, {row['page_faults_per_call']:,.0f} page faults/call", flush=True)
    return results


# ----------------------------------------------------------------------------- report


def machine() -> dict:
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    import transformers

    model_name = next((line.split(":", 1)[1].strip() for line in sh("lscpu").splitlines()
                       if line.startswith("Model name")), platform.processor())
    return {"cpu": model_name, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "lscpu": sh("lscpu"), "memory": sh("free -g | sed -n 2p")}


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def targets(inference: list[dict], training: list[dict]) -> list[dict]:
    checks = []
    for row in inference:
        m = row["models"]
        for base in ("transformers FNet", "transformers BERT"):
            key = ("inference", row["size"], row["length"], base)
            if key in TARGETS:
                ratio = m["fnet FNet"]["tokens_per_s"] / m[base]["tokens_per_s"]
                cpu_ratio = m["fnet FNet"]["tokens_per_cpu_s"] / m[base]["tokens_per_cpu_s"]
                checks.append({"what": f"inference {row['size']}/{row['length']} vs {base}", "target": TARGETS[key],
                               "measured": ratio, "measured_cpu_time": cpu_ratio, "met": ratio >= TARGETS[key]})
        if row["length"] == 512:
            mfu = m["fnet FNet"]["mfu"]
            checks.append({"what": f"fnet FNet MFU {row['size']}/512", "target": MFU_TARGET, "measured": mfu,
                           "met": mfu >= MFU_TARGET})
    for row in training:
        if row["task"] != "pretraining":
            continue
        m = row["models"]
        for base, target in (("transformers FNet", 3.0), ("fnet attention-mixer", 1.8)):
            ratio = m["fnet FNet"]["steps_per_s"] / m[base]["steps_per_s"]
            cpu_ratio = m["fnet FNet"]["tokens_per_cpu_s"] / m[base]["tokens_per_cpu_s"]
            checks.append({"what": f"pretraining step {row['size']}/{row['length']} vs {base}", "target": target,
                           "measured": ratio, "measured_cpu_time": cpu_ratio, "met": ratio >= target})
    return checks


def markdown(report: dict) -> str:
    lines = [f"# Speed: fnet vs transformers (FNet, BERT sdpa)", "",
             f"Command: `{report['command']}`  ", f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
             f"{report['machine']['threads']} torch threads; torch {report['machine']['torch']}, transformers "
             f"{report['machine']['transformers']}  ",
             f"Load average (1, 5, 15 min) at start: {report['load_start']}, at end: {report['load_end']}; "
             f"wall time {report['seconds']:.0f} s; allocator: {report['allocator']}", ""]
    lines += ["## Inference (tokens/s, median; MFU against the matmul ceiling measured in the same rounds)", "",
              "| size/length | batch (rounds) | fnet FNet | transformers FNet | transformers BERT | fnet/FNet | fnet/BERT | fnet MFU | FNet MFU | BERT MFU | ceiling GFLOP/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["inference"]:
        m = row["models"]
        a, b, c = (m[k] for k in ("fnet FNet", "transformers FNet", "transformers BERT"))
        lines.append(f"| {row['size']}/{row['length']} | {row['batch']} ({row['rounds']}) | {a['tokens_per_s']:,.0f} | {b['tokens_per_s']:,.0f} | "
                     f"{c['tokens_per_s']:,.0f} | {a['tokens_per_s'] / b['tokens_per_s']:.2f}x | "
                     f"{a['tokens_per_s'] / c['tokens_per_s']:.2f}x | {a['mfu']:.0%} | {b['mfu']:.0%} | {c['mfu']:.0%} | "
                     f"{row['ceiling_flops'] / 1e9:.0f} |")
    if report["training"]:
        lines += ["", "## Training steps (fwd + bwd + AdamW), steps/s, median", "",
                  "| task | size/length | batch | " + " | ".join(report["training"][0]["models"]) + " |",
                  "|---|---|---|" + "---|" * len(report["training"][0]["models"])]
        for row in report["training"]:
            ours = row["models"]["fnet FNet"]["steps_per_s"]
            cells = [f"{v['steps_per_s']:.3f} ({ours / v['steps_per_s']:.2f}x)" for v in row["models"].values()]
            lines.append(f"| {row['task']} | {row['size']}/{row['length']} | {row['batch']} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("(x) = fnet FNet's speed over that column. `base` = encoder only with a mean-square loss on the "
                     "last hidden state; `pretraining` = MLM (32,000 vocab, 15% masked) + NSP heads; fnet models use "
                     "`only_masked_logits=True`, transformers' compute the MLM logits at every position.")
    if report["fourier"]:
        names = list(report["fourier"][0]["ms"])
        lines += ["", "## The Fourier sublayer alone (ms, median; x memory floor = one read + write of the tensor)", "",
                  "| shape | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for row in report["fourier"]:
            lines.append(f"| {tuple(row['shape'])} | " + " | ".join(
                f"{row['ms'][k]:.2f} ({row['x_memory_floor'][k]:.1f}x)" for k in names) + " |")
    if report.get("allocator_settings"):
        lines += ["", "## Allocator settings (fnet small/512, batch 16; one process per setting, interleaved)", "",
                  "| setting | tokens/s | CPU s/call | system s/call | page faults/call |", "|---|---|---|---|---|"]
        for row in report["allocator_settings"]:
            lines.append(f"| {row['setting']} | {row['tokens_per_s']:,.0f} | {row['cpu_s_per_call']:.2f} | "
                         f"{row['sys_s_per_call']:.2f} | {row['page_faults_per_call']:,.0f} |")
    onnx_rows = [r for r in report.get("onnx", []) if "length" in r]
    if onnx_rows:
        names = list(onnx_rows[0]["tokens_per_s"])
        lines += ["", "## ONNX (fnet small, onnxruntime CPU, same threads), tokens/s, median", "",
                  "| length | batch | " + " | ".join(names) + " | max abs diff onnx vs torch |",
                  "|---|---|" + "---|" * len(names) + "---|"]
        for row in onnx_rows:
            lines.append(f"| {row['length']} | {row['batch']} | " + " | ".join(
                f"{row['tokens_per_s'][k]:,.0f}" for k in names) + f" | {row['max_abs_diff_vs_torch']:.1e} |")
    if not report.get("targets"):
        return "\n".join(lines) + "\n"
    lines += ["", "## Targets (issue 7)", "", "| check | target | measured (wall) | measured (CPU time) | met |", "|---|---|---|---|---|"]
    for c in report["targets"]:
        fmt = (lambda v: f"{v:.0%}") if "MFU" in c["what"] else (lambda v: f"{v:.2f}x")
        cpu = fmt(c["measured_cpu_time"]) if "measured_cpu_time" in c else ""
        lines.append(f"| {c['what']} | {fmt(c['target'])} | {fmt(c['measured'])} | {cpu} | {'yes' if c['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds for training/fourier/onnx")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per model")
    parser.add_argument("--sections", default="inference,training,fourier,onnx",
                        help="comma-separated; 'allocator' (not in the default) compares allocator settings "
                             "in separate processes and writes speed_allocator.{json,md}")
    parser.add_argument("--quick", action="store_true", help="tiny rows, for a smoke test of the script")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--name", default=None, help="file stem of the results (default: from the sections)")
    args = parser.parse_args(argv)

    from fnet.runtime import configure_allocator

    allocator = configure_allocator()  # applies to every model in this process, transformers' too
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sections = set(args.sections.split(","))
    start, load_start = time.perf_counter(), load()
    ceiling_size = 1024 if args.quick else 2048
    ceiling_fn = matmul_ceiling(ceiling_size)
    ceiling_fn.flops = 2 * ceiling_size**3
    rows = [("small", 64, 2, 2, 1), ("small", 128, 1, 1, 0)] if args.quick else INFERENCE_ROWS
    report = {"command": "python3 benchmarks/speed_vs_transformers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "allocator": allocator, "load_start": load_start,
              "inference": [], "training": [], "fourier": [], "onnx": []}
    print(f"load {load_start}; threads {args.threads}; allocator {allocator}", flush=True)
    if "inference" in sections:
        report["inference"] = bench_inference(rows, ceiling_fn)
    if "training" in sections:
        size, length, batch = ("small", 64, 2) if args.quick else ("small", 512, 4)
        report["training"] = bench_training(size, length, batch, args.train_steps)
    if "fourier" in sections:
        shapes = [(2, 64, 32)] if args.quick else [(16, 512, 256), (8, 512, 768), (1, 8192, 768)]
        report["fourier"] = bench_fourier(shapes, max(args.rounds, 5))
    if "onnx" in sections:
        report["onnx"] = bench_onnx([(64, 2)] if args.quick else [(128, 16), (512, 4)], args.rounds)
    if "allocator" in sections:
        report["allocator_settings"] = bench_allocator(args.rounds, args.threads)
    report["targets"] = targets(report["inference"], report["training"])
    report["load_end"], report["seconds"] = load(), time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "speed_allocator" if sections == {"allocator"} else "speed_vs_transformers"
    stem += "_quick" if args.quick else ""
    stem = args.name or stem
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
