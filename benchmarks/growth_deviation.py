"""How far each growth moves a pretrained model's outputs: max |logit difference| on real held-out text.

Loads a pretraining output (FNetForPreTraining), applies each growth of ``fnet.growth`` alone, and
measures the maximum absolute difference of the MLM and NSP logits between the original and the
grown model on ``--sentences`` held-out lines (and on seeded random ids, as ``fnet grow`` reports),
next to the size of the logits themselves (max |logit|). A pre-norm copy of the model (same weights,
``norm_position="pre"``: a different function, but a real weight distribution) shows pre-norm depth.

    python benchmarks/growth_deviation.py --model runs/mini --heldout runs/data/eval.txt
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "growth"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--heldout", type=Path, required=True)
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from fnet import FNetConfig, FNetForPreTraining
    from fnet.growth import grow, grow_depth_pre_norm
    from fnet.tokenization import FNetTokenizer

    torch.set_num_threads(1)
    model = FNetForPreTraining.from_pretrained(args.model).eval()
    tokenizer = FNetTokenizer.from_pretrained(args.model)
    lines = [line for line in args.heldout.read_text(encoding="utf-8").splitlines() if len(line.split()) > 5]
    batch = tokenizer(lines[: args.sentences], padding=True, truncation=True, max_length=64, return_tensors="pt")

    @torch.no_grad()
    def outputs(m):
        out = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                token_type_ids=batch.get("token_type_ids"))
        keep = batch["attention_mask"].bool()
        return out.prediction_logits[keep], out.seq_relationship_logits

    def deviation(old, new) -> dict:
        (a, b), (c, d) = outputs(old), outputs(new)
        return {"mlm_max_abs_diff": float((a - c).abs().max()), "nsp_max_abs_diff": float((b - d).abs().max()),
                "mlm_max_abs_logit": float(a.abs().max()),
                "top1_agreement": float((a.argmax(-1) == c.argmax(-1)).float().mean())}

    pre = FNetForPreTraining(FNetConfig.from_dict({**model.config.to_dict(), "norm_position": "pre"}))
    pre.load_state_dict(model.state_dict(), strict=False)  # + final_norm at its init
    pre.eval()
    cases = {
        "intermediate_size 512 -> 1024": (model, dict(intermediate_size=1024)),
        "max_position_embeddings 512 -> 1024": (model, dict(max_position_embeddings=1024)),
        "num_layers 4 -> 6, post-norm, copy": (model, dict(num_layers=6)),
        "num_layers 4 -> 6, post-norm, zero-ffn": (model, dict(num_layers=6, depth_init="zero-ffn")),
        "num_layers 4 -> 6, pre-norm (new sublayers closed)": (pre, dict(num_layers=6)),
        "hidden_size 256 -> 512": (model, dict(hidden_size=512)),
        "hidden_size 256 -> 384": (model, dict(hidden_size=384)),
    }
    results = {}
    for name, (base, kwargs) in cases.items():
        grown, report = grow(base, **kwargs)
        results[name] = {**deviation(base, grown.eval()), "random_ids_deviation": report.deviation,
                         "exact_by_construction": report.exact}
        print(name, json.dumps(results[name]), flush=True)
    open_gate = grow_depth_pre_norm(pre, 6, gate=False).eval()
    results["num_layers 4 -> 6, pre-norm, mixing sublayer NOT closed (gate=False)"] = deviation(pre, open_gate)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"command": "python benchmarks/growth_deviation.py " + shlex.join(sys.argv[1:]),
               "inputs": f"{batch['input_ids'].shape[0]} held-out lines, <= 64 tokens, padded; logits compared "
                         "at real tokens", "load_average_end": [round(x, 2) for x in os.getloadavg()],
               "results": results}
    (args.out / "deviation.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
