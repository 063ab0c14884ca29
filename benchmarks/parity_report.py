"""Max abs difference between fnet and transformers' FNet, per class and output.

    python benchmarks/parity_report.py

Uses the configurations of tests/model/test_modeling_parity.py (odd sizes with 1 layer, 3 layers, exact
GELU) on both Fourier paths (fft, dft): weights saved by transformers, loaded by fnet, same inputs.
fnet's models run after ``fnet.optimize_for_inference``, as ``fnet predict`` and ``fnet evaluate`` do.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
import transformers

import fnet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "model"))
from conftest import tiny_config_kwargs  # noqa: E402
from test_modeling_parity import CLASSES, CONFIGS, OUTPUT_FIELDS, _inputs  # noqa: E402


def main() -> int:
    worst: dict[tuple[str, str], float] = {}
    for name in CLASSES:
        for config in CONFIGS.values():
            for fourier in ("fft", "dft"):
                kwargs = tiny_config_kwargs(**config)
                torch.manual_seed(1)
                reference = getattr(transformers, name)(transformers.FNetConfig(**kwargs)).eval()
                with tempfile.TemporaryDirectory() as directory:
                    reference.save_pretrained(directory)
                    ours = getattr(fnet, name).from_pretrained(directory, fourier_transform=fourier)
                fnet.optimize_for_inference(ours)  # fnet's inference path, as the CLI runs it
                inputs = _inputs(name, 3, 13, kwargs["vocab_size"], torch.Generator().manual_seed(2))
                with torch.no_grad():
                    a, b = reference(**inputs), ours(**inputs)
                for field in OUTPUT_FIELDS:
                    x, y = getattr(a, field, None), getattr(b, field, None)
                    if x is not None:
                        diff = (x.double() - y.double()).abs().max().item()
                        worst[(name, field)] = max(worst.get((name, field), 0.0), diff)
    print("| class | output | max abs difference |\n|---|---|---|")
    for (name, field), value in worst.items():
        print(f"| {name} | {field} | {value:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
