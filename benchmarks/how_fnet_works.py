"""The measurements behind docs/how-fnet-works.md, taken by fnet itself.

    python benchmarks/how_fnet_works.py --output docs/figures

writes ``docs/figures/how_fnet_works.json`` and ``.md`` (the tables) and ``fft_vs_dft.png``:

1. parameters of each token mixer at FNet-Base size (hidden 768, 12 layers, 512 positions);
2. the three exact forms of FNet's mixing (complex 2-D FFT, real-input FFT, DFT matrices) agree, and
   the imaginary part that is dropped;
3. FFT against DFT-matrix time over sequence length (when the matrix form wins);
4. what pads do to an example's outputs without and with ``attention_mask``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import fnet
from fnet import FNetConfig, FNetModel
from fnet.config import TOKEN_MIXERS
from fnet.fourier import dft_fourier_transform, fft_fourier_transform, reference_fourier_transform


def parameter_counts() -> list[dict]:
    rows = []
    for mixer in TOKEN_MIXERS:
        config = FNetConfig(token_mixer=mixer)  # fnet-base: hidden 768, 12 layers, 12 heads, 512 positions
        model = FNetModel(config)
        total = model.num_parameters()
        layer = model.encoder.layer[0]
        sublayer = layer.mixing_sublayer
        mixing = sum(p.numel() for p in sublayer.self.parameters())
        projection = sum(p.numel() for n, p in sublayer.output.named_parameters() if n.startswith("dense"))
        buffers = sum(b.numel() for b in sublayer.self.buffers())
        rows.append(dict(mixer=mixer, mixing_params_per_layer=mixing + projection, fixed_buffers_per_layer=buffers,
                         encoder_params=total))
        del model
    return rows


def forms_agree() -> dict:
    torch.manual_seed(0)
    x = torch.randn(2, 100, 96, dtype=torch.float64)
    reference = reference_fourier_transform(x)
    full = torch.fft.fftn(x, dim=(-2, -1))
    return dict(
        max_err_rfft_vs_fftn=(fft_fourier_transform(x) - reference).abs().max().item(),
        max_err_dft_vs_fftn=(dft_fourier_transform(x) - reference).abs().max().item(),
        # the dropped imaginary part is as large as the kept real part: it is a choice, not a rounding
        real_part_norm=full.real.norm().item(),
        imag_part_norm=full.imag.norm().item(),
    )


def fft_vs_dft(lengths: list[int], hidden: int, batch: int, repeats: int) -> list[dict]:
    rows = []
    for n in lengths:
        x = torch.randn(batch, n, hidden)
        timings = {}
        for name, fn in (("fft", fft_fourier_transform), ("dft", lambda t: dft_fourier_transform(t, None, 8192))):
            fn(x)  # warm-up (and the DFT matrices' cache)
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                fn(x)
                best = min(best, time.perf_counter() - start)
            timings[name] = best * 1e3
        rows.append(dict(length=n, fft_ms=timings["fft"], dft_ms=timings["dft"],
                         dft_matrix_mib=2 * n * n * 4 / 2**20))
    return rows


def pads_effect() -> list[dict]:
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, intermediate_size=128,
                        max_position_embeddings=512, pad_token_id=3)
    model = fnet.optimize_for_inference(FNetModel(config).eval())  # as `fnet predict` runs it
    ids = torch.randint(4, 1000, (1, 20))
    with torch.no_grad():
        alone = model(ids).last_hidden_state[0]
        rows = []
        for total in (20, 32, 64, 128, 512):
            padded = torch.cat([ids, torch.full((1, total - 20), 3)], dim=1)
            mask = (padded != 3).long()
            unmasked = model(padded).last_hidden_state[0, :20]
            masked = model(padded, attention_mask=mask).last_hidden_state[0, :20]
            rows.append(dict(padded_to=total, max_change_without_mask=(unmasked - alone).abs().max().item(),
                             max_change_with_attention_mask=(masked - alone).abs().max().item()))
    return rows


def write(out: Path, data: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "how_fnet_works.json").write_text(json.dumps(data, indent=2) + "\n")
    md = [f"Measured by `{data['command']}` on {data['machine']}.", "", "### Parameters per token mixer (FNet-Base size)",
          "", "| mixer | mixing parameters per layer | fixed buffers per layer | encoder parameters |",
          "|---|---:|---:|---:|"]
    md += [f"| {r['mixer']} | {r['mixing_params_per_layer']:,} | {r['fixed_buffers_per_layer']:,} | "
           f"{r['encoder_params']:,} |" for r in data["parameters"]]
    f = data["forms"]
    md += ["", "### Three exact forms of Re(F_n x F_d) (float64, x of shape (2, 100, 96))", "",
           f"max |rfft form - fftn| = {f['max_err_rfft_vs_fftn']:.1e}; max |DFT-matrix form - fftn| = "
           f"{f['max_err_dft_vs_fftn']:.1e}; norm of the kept real part {f['real_part_norm']:.1f}, of the dropped "
           f"imaginary part {f['imag_part_norm']:.1f}.",
           "", f"### FFT against DFT matrices, forward, batch {data['fft_vs_dft_batch']}, hidden {data['hidden']}, "
           "best of repeats", "", "| length | FFT (ms) | DFT matrices (ms) | faster | DFT matrices C, S (MiB) |",
           "|---:|---:|---:|---|---:|"]
    md += [f"| {r['length']:,} | {r['fft_ms']:.2f} | {r['dft_ms']:.2f} | {'DFT' if r['dft_ms'] < r['fft_ms'] else 'FFT'} "
           f"| {r['dft_matrix_mib']:.1f} |" for r in data["fft_vs_dft"]]
    md += ["", "### What pads do (20 real tokens, right-padded, tiny random FNet)", "",
           "| padded to | max change without mask | max change with attention_mask |", "|---:|---:|---:|"]
    md += [f"| {r['padded_to']} | {r['max_change_without_mask']:.3f} | {r['max_change_with_attention_mask']:.1e} |"
           for r in data["pads"]]
    (out / "how_fnet_works.md").write_text("\n".join(md) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["fft_vs_dft"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["length"] for r in rows], [r["fft_ms"] for r in rows], marker="o", label="FFT (rfft2)")
    ax.plot([r["length"] for r in rows], [r["dft_ms"] for r in rows], marker="s", label="DFT matrices (matmul)")
    ax.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="ms per forward mixing",
           title=f"FNet mixing on CPU, batch {data['fft_vs_dft_batch']}, hidden {data['hidden']}")
    ax.set_xscale("log", base=2)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fft_vs_dft.png", dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="docs/figures")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
    data = dict(
        command=f"python benchmarks/how_fnet_works.py --output {args.output} --threads {args.threads}",
        machine=f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} torch thread(s), torch {torch.__version__}"
                f", load average {tuple(round(x, 1) for x in os.getloadavg())}",
        parameters=parameter_counts(), forms=forms_agree(), hidden=256, fft_vs_dft_batch=4,
        fft_vs_dft=fft_vs_dft(lengths, hidden=256, batch=4, repeats=5), pads=pads_effect(),
    )
    write(Path(args.output), data)
    print((Path(args.output) / "how_fnet_works.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
