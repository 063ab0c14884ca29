#!/usr/bin/env bash
# The run harness on a lent GPU machine, in one short sitting (about 5 minutes on one GPU):
#   1. the CUDA tests (tests/training/test_cuda.py: finetune / evaluate / predict / embed on CUDA equal
#      the CPU within fp32 / bf16 tolerance; DDP under torchrun when two GPUs are visible);
#   2. `fnet finetune` and `fnet predict` times on CUDA (bf16, the default there) vs the CPU, fnet-small
#      from scratch on SST-2 (../shared/data/classification/sst2 when present, else generated sentences).
# Usage: bash benchmarks/gpu_harness_check.sh [OUT_DIR]   (writes OUT_DIR/gpu_check.md and the logs)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"

timeout 300 python3 -m pytest -q -m cuda tests/training/test_cuda.py 2>&1 | tee "$OUT/pytest_cuda.log" | tail -3

# data: SST-2 train/dev (tsv with sentence,label) or a generated stand-in of the same shape
DATA="$OUT/data"; mkdir -p "$DATA"
SST=../shared/data/classification/sst2
if [ -f "$SST/train.tsv" ] && [ -f "$SST/glue_dev.tsv" ]; then
  head -n 8001 "$SST/train.tsv" > "$DATA/train.tsv"; cp "$SST/glue_dev.tsv" "$DATA/dev.tsv"; SOURCE="SST-2 (8,000 train rows, GLUE dev)"
else
  python3 - "$DATA" <<'PY'
import random, sys
words = "apple river stone cloud paper music window garden silver yellow quick slow table chair light".split()
for name, n, seed in (("train", 8000, 1), ("dev", 872, 2)):
    rng = random.Random(seed)
    with open(f"{sys.argv[1]}/{name}.tsv", "w") as f:
        f.write("sentence\tlabel\n")
        for _ in range(n):
            y = rng.randrange(2); w = [rng.choice(words) for _ in range(rng.randint(8, 30))]
            w.insert(rng.randrange(len(w) + 1), "good" if y else "bad"); f.write(" ".join(w) + f"\t{y}\n")
PY
  SOURCE="generated sentences (no ../shared/data)"
fi
python3 - "$DATA" <<'PY'
import sys
from fnet.tokenization import FNetTokenizer
rows = [l.split("\t")[0] for l in open(f"{sys.argv[1]}/train.tsv").read().splitlines()[1:]]
open(f"{sys.argv[1]}/corpus.txt", "w").write("\n".join(rows) + "\n")
FNetTokenizer.train([f"{sys.argv[1]}/corpus.txt"], vocab_size=4000, output_dir=f"{sys.argv[1]}/tok")
PY

run() {  # name, then the command; prints "name seconds"
  local name=$1; shift
  local t0=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1
  echo "$name $(python3 -c "print(round($(date +%s.%N) - $t0, 1))")"
}
{
  echo "| step | device | seconds |"; echo "|---|---|---|"
  for dev in cuda cpu; do
    r=$(run "finetune-$dev" python3 -m fnet finetune --task classification --model fnet-small --tokenizer "$DATA/tok" \
        --train "$DATA/train.tsv" --validation "$DATA/dev.tsv" --output "$OUT/ft-$dev" --epochs 1 --batch-size 32 \
        --seq-len 128 --device "$dev" --no-progress --overwrite)
    echo "| fnet finetune fnet-small, 1 epoch | $dev | ${r#* } |"
    r=$(run "predict-$dev" python3 -m fnet predict --model "$OUT/ft-cuda" --input "$DATA/dev.tsv" \
        --output "$OUT/pred-$dev.jsonl" --device "$dev" --no-progress)
    echo "| fnet predict, dev set | $dev | ${r#* } |"
  done
} | tee "$OUT/gpu_check.md"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for dev in ("cuda", "cpu"):
    m = json.load(open(f"{out}/ft-{dev}/metrics.json"))
    print(f"finetune on {dev}: eval_accuracy {m.get('eval_accuracy')}, {m.get('steps')} steps, train_seconds {m.get('train_seconds')}")
a = [json.loads(l)["label"] for l in open(f"{out}/pred-cuda.jsonl")]
b = [json.loads(l)["label"] for l in open(f"{out}/pred-cpu.jsonl")]
print(f"predict: {sum(x != y for x, y in zip(a, b))} of {len(a)} labels differ between CUDA (bf16) and CPU (fp32)")
PY
echo "data: $SOURCE" | tee -a "$OUT/gpu_check.md"
