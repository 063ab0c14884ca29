"""int8 against float32 inference on real text of mixed length, in PyTorch and in onnxruntime.

    python3 benchmarks/int8_speed.py [--model DIR] [--texts 256] [--rounds 5] [--threads 2]

DIR: a classification folder written by `fnet finetune` (default: a randomly initialised fnet-small
classifier with the 1k-piece English SentencePiece test tokenizer; speed does not depend on the
weights, label agreement does). Texts: documents of 1 to 4 consecutive AG News test articles (k
cycling 1, 2, 3, 4), so lengths are mixed, tokenized once and cut into length batches as
`fnet predict` does (`fnet.inference.length_batches`, 16,384 padded tokens, 32 rows at most).

Contenders, one process, the same batches, interleaved round by round (A, B, C, D, A, B, ...):

  torch-fp32  fnet.optimize_for_inference(model): fused oneDNN float32 kernels, unpadded backbone
  torch-int8  the same with quantize_weights="int8" (`--quantize int8` of predict/evaluate/embed)
  onnx-fp32   `fnet export` (DFT-matrix mixing) run in onnxruntime, padded batches with the mask
  onnx-int8   `fnet export --quantize int8`

Each round runs every batch once; the report gives the median round (wall seconds and process CPU
seconds: CPU time counts the work of every thread and is less disturbed when other jobs share the
cores), texts/s, and each contender's label agreement and largest logit difference against
torch-fp32 on the last round. Results: benchmarks/results/realtext/int8_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realtext import DATA, machine, write_report  # noqa: E402  (one CPU/load record and writer for both)

DEFAULT_TOKENIZER = DATA / "tokenizers" / "sentencepiece_test_en_1k.model"


def documents(count: int) -> list[str]:
    """``count`` documents of k = 1, 2, 3, 4, 1, ... consecutive AG News test articles."""
    rows = (DATA / "classification/agnews/test.tsv").read_text(encoding="utf-8").splitlines()
    articles = [" ".join(row.rsplit("\t", 1)[0].split()) for row in rows]
    docs, start = [], 0
    for i in range(count):
        k = 1 + i % 4
        docs.append(" ".join(articles[start:start + k]))
        start += k
    return docs


def model_folder(arg: str | None, tmp: Path) -> Path:
    """The --model folder, or a random fnet-small classifier saved with the default tokenizer."""
    if arg:
        return Path(arg)
    import torch

    from fnet import FNetConfig, FNetForSequenceClassification
    from fnet.tokenization import FNetTokenizer

    folder = tmp / "random-fnet-small"
    tokenizer = FNetTokenizer(str(DEFAULT_TOKENIZER))
    torch.manual_seed(0)
    config = FNetConfig.from_preset("fnet-small", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                    num_labels=4)
    FNetForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def batches(folder: Path, docs: list[str]) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Right-padded (ids, mask) int64 batches in `fnet predict`'s length order, and each text's tokens."""
    from fnet.inference import length_batches
    from fnet.tokenization import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(docs, truncation=True, max_length=512)["input_ids"]
    lengths = [len(row) for row in ids]
    out = []
    for batch in length_batches(lengths, max_tokens=16384, max_rows=32):
        n = max(lengths[i] for i in batch)
        input_ids = np.full((len(batch), n), tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(batch), n), dtype=np.int64)
        for row, i in enumerate(batch):
            input_ids[row, :lengths[i]] = ids[i]
            mask[row, :lengths[i]] = 1
        out.append((input_ids, mask))
    return out, lengths


def contenders(folder: Path, tmp: Path, threads: int) -> dict[str, object]:
    """name -> a function from one (ids, mask) batch to its logits (numpy)."""
    import onnxruntime as ort
    import torch

    import fnet
    from fnet.export import export_onnx, load_for_export

    def torch_runner(model):
        def run(ids, mask):
            with torch.inference_mode():
                return model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
        return run

    def onnx_runner(path):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(ids, mask):
            return session.run(["logits"], {"input_ids": ids, "token_type_ids": np.zeros_like(ids),
                                            "attention_mask": mask})[0]
        return run

    load = fnet.FNetForSequenceClassification.from_pretrained
    runners = {"torch-fp32": torch_runner(fnet.optimize_for_inference(load(folder).eval())),
               "torch-int8": torch_runner(fnet.optimize_for_inference(load(folder).eval(), quantize_weights="int8"))}
    exported, task = load_for_export(folder)
    for name, kind in (("onnx-fp32", None), ("onnx-int8", "int8")):
        path = tmp / f"{name}.onnx"
        export_onnx(exported, path, task, quantize=kind)
        runners[name] = onnx_runner(path)
    return runners


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="classification folder (default: random fnet-small)")
    parser.add_argument("--texts", type=int, default=256, help="documents (default 256)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="int8_speed", help="results file stem under benchmarks/results/realtext/")
    args = parser.parse_args(argv)
    import torch

    import fnet

    fnet.configure_allocator()  # as the `fnet` command does (without its re-exec)
    torch.set_num_threads(args.threads)
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        folder = model_folder(args.model, Path(tmp))
        docs = documents(args.texts)
        work, lengths = batches(folder, docs)
        runners = contenders(folder, Path(tmp), args.threads)
        for run in runners.values():  # warm-up: one-time packing, plan caches, allocator growth
            for ids, mask in work[:2]:
                run(ids, mask)
        wall: dict[str, list[float]] = {name: [] for name in runners}
        cpu: dict[str, list[float]] = {name: [] for name in runners}
        logits: dict[str, list[np.ndarray]] = {}
        for r in range(args.rounds):
            for name, run in runners.items():
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                outs = [run(ids, mask) for ids, mask in work]
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)
                logits[name] = outs
            print(f"round {r}: " + ", ".join(f"{n} {wall[n][-1]:.2f} s" for n in runners), file=sys.stderr, flush=True)
    reference = np.concatenate(logits["torch-fp32"])
    report = {
        "command": "python3 benchmarks/int8_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {**info, "load_average_end": os.getloadavg(), "threads": args.threads,
                    "torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__,
                    "note": "the machine's cores were shared with other jobs: compare ratios within this run; "
                            "CPU seconds are less disturbed by the sharing than wall seconds"},
        "model": str(args.model or "random fnet-small (1k-piece SentencePiece test tokenizer)"),
        "documents": {"count": len(docs), "tokens": sum(lengths), "median_tokens": statistics.median(lengths),
                      "min_tokens": min(lengths), "max_tokens": max(lengths), "batches": len(work)},
        "rounds": args.rounds,
        "contenders": {},
    }
    base_wall, base_cpu = statistics.median(wall["torch-fp32"]), statistics.median(cpu["torch-fp32"])
    for name in runners:
        got = np.concatenate(logits[name])
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        report["contenders"][name] = {
            "median_wall_s": round(w, 3), "median_cpu_s": round(c, 3), "texts_per_s": round(len(docs) / w, 1),
            "speedup_wall_vs_torch_fp32": round(base_wall / w, 2), "speedup_cpu_vs_torch_fp32": round(base_cpu / c, 2),
            "all_wall_s": [round(x, 3) for x in wall[name]], "all_cpu_s": [round(x, 3) for x in cpu[name]],
            "label_agreement_with_torch_fp32": round(float((got.argmax(-1) == reference.argmax(-1)).mean()), 4),
            "max_abs_logit_diff_vs_torch_fp32": float(np.abs(got - reference).max()),
        }
    write_report(args.name, report, markdown(report))
    return 0


def markdown(r: dict) -> str:
    m, d = r["machine"], r["documents"]
    lines = ["# int8 vs float32 inference on real text, PyTorch and onnxruntime", "",
             f"Command: `{r['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['flags'])}), {m['threads']} threads per "
             f"contender, torch {m['torch']}, onnxruntime {m['onnxruntime']}. Load average at start "
             f"{tuple(round(x, 1) for x in m['load_average_start'])}, at end "
             f"{tuple(round(x, 1) for x in m['load_average_end'])}: {m['note']}.", "",
             f"Model: {r['model']}. Documents: {d['count']} (1-4 consecutive AG News test articles), "
             f"{d['tokens']:,} tokens, median {d['median_tokens']}, {d['min_tokens']}-{d['max_tokens']}, "
             f"{d['batches']} length batches. Median of {r['rounds']} interleaved rounds.", "",
             "| contender | wall s | CPU s | texts/s | speed-up (wall) | speed-up (CPU) | label agreement | max logit diff |",
             "|---|---|---|---|---|---|---|---|"]
    for name, c in r["contenders"].items():
        lines.append(f"| {name} | {c['median_wall_s']} | {c['median_cpu_s']} | {c['texts_per_s']} | "
                     f"{c['speedup_wall_vs_torch_fp32']} | {c['speedup_cpu_vs_torch_fp32']} | "
                     f"{c['label_agreement_with_torch_fp32']:.4f} | {c['max_abs_logit_diff_vs_torch_fp32']:.2e} |")
    lines += ["", "Speed-ups and agreement are against torch-fp32 (`fnet predict` without --quantize)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
