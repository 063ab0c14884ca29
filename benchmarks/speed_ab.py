"""Before/after speed of one code change: fnet-small at 512 tokens, one process per measurement.

    for i in 1 2 3; do for t in OLD NEW; do PYTHONPATH=$t/src python3 benchmarks/speed_ab.py $t; done; done

Prints inference tokens/s (FNetModel, batch 16, inference mode, after optimize_for_inference where
it exists) and training tokens/s (FNetForPreTraining fwd+bwd+AdamW, batch 8, MLM on every 7th token).
Run the two trees alternately in one sitting and compare medians.
"""
import json, sys, time, torch
import fnet
from fnet import FNetConfig, FNetModel, FNetForPreTraining
from fnet.runtime import configure_allocator
configure_allocator()
torch.set_num_threads(2); torch.manual_seed(0)
cfg = FNetConfig.from_preset("fnet-small", vocab_size=32000)
m = FNetModel(cfg).eval()
if hasattr(fnet, "optimize_for_inference"): fnet.optimize_for_inference(m)
x = torch.randint(7, 32000, (16, 512))
with torch.inference_mode():
    for _ in range(2): m(x)
    t = time.perf_counter(); n = 6
    for _ in range(n): m(x)
    inf = n * x.numel() / (time.perf_counter() - t)
p = FNetForPreTraining(cfg).train()
opt = torch.optim.AdamW(p.parameters(), lr=1e-4)
xb = torch.randint(7, 32000, (8, 512)); labels = torch.full_like(xb, -100); labels[:, ::7] = xb[:, ::7]
nsp = torch.zeros(8, dtype=torch.long)
def step():
    out = p(input_ids=xb, labels=labels, next_sentence_label=nsp); out.loss.backward(); opt.step(); opt.zero_grad()
for _ in range(2): step()
t = time.perf_counter(); n = 4
for _ in range(n): step()
tr = n * xb.numel() / (time.perf_counter() - t)
print(json.dumps({"tree": sys.argv[1], "inference_tok_s": round(inf), "train_tok_s": round(tr)}))
