"""fnet.vae's model and `fnet vae`: the Gaussian VAE's KL collapses where the vMF VAE keeps its constant KL
and uses its latent; mask-predict decoding; masking; files; the command line end to end on tiny data."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fnet.config import FNetConfig
from fnet.vae.model import FNetVAE, VAEConfig, mask_for_training, slerp, vae_loss
from fnet.vae.vmf import kl_to_uniform

VOCAB, FIRST_WORD, PIECES = 16, 7, 2  # ids 0-6 are the special tokens of fnet's tokenizers


def tiny_vae(posterior: str, seed: int = 0, latent_dim: int = 16, kappa: float = 100.0, max_length: int = PIECES):
    torch.manual_seed(seed)
    net = FNetConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                     max_position_embeddings=16, hidden_dropout_prob=0.0, pad_token_id=3)
    return FNetVAE(VAEConfig(latent_dim=latent_dim, posterior=posterior, kappa=kappa, max_length=max_length,
                             fnet=net.to_dict()))


def random_sentences(generator: torch.Generator, batch: int = 64) -> dict[str, torch.Tensor]:
    """Rows [CLS] a b [SEP] with a, b independent and uniform over the 9 word ids."""
    words = torch.randint(FIRST_WORD, VOCAB, (batch, PIECES), generator=generator)
    ids = torch.cat([torch.full((batch, 1), 4), words, torch.full((batch, 1), 5)], dim=1)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def fully_masked_nll(model: FNetVAE, z: torch.Tensor, ids: torch.Tensor) -> float:
    """Nats per piece of the true pieces when every piece is masked: only z can tell them."""
    masked = ids.clone()
    masked[:, 1:1 + PIECES] = model.config.mask_token_id
    logits = model.token_logits(z, masked, torch.ones_like(ids))[:, 1:1 + PIECES]
    return float(F.cross_entropy(logits.flatten(0, 1), ids[:, 1:1 + PIECES].flatten()))


def test_the_gaussian_vae_collapses_where_the_vmf_vae_keeps_its_constant_kl_and_uses_z():
    """Independent uniform pieces, each masked with probability ~1/2: telling a piece through z saves at most
    ~log 9 / 2 nats and costs at least log 9 nats of KL, so the ELBO's optimum ignores z. The Gaussian VAE
    finds it (KL -> 0, z unused); the vMF VAE pays its KL whatever it does, so its encoder learns to carry
    the sentence (the fully masked pieces are predicted far better with the right z than with another's)."""
    torch.set_num_threads(1)
    chance = math.log(VOCAB - FIRST_WORD)
    outcome = {}
    for posterior in ("gaussian", "vmf"):
        model = tiny_vae(posterior)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(1)
        kls = []
        for _ in range(300):
            loss, stats = vae_loss(model, random_sentences(generator), generator=generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            kls.append(stats["kl"])
        model.eval()
        with torch.no_grad():
            batch = random_sentences(torch.Generator().manual_seed(9), 512)
            z = model.posterior(batch["input_ids"], batch["attention_mask"]).mean
            own = fully_masked_nll(model, z, batch["input_ids"])
            other = fully_masked_nll(model, z[torch.randperm(512, generator=torch.Generator().manual_seed(2))],
                                     batch["input_ids"])
        outcome[posterior] = (kls, own, other)
    kls, own, other = outcome["gaussian"]
    assert kls[0] > 0.2 and max(kls[-20:]) < 0.01, f"Gaussian KL {kls[0]:.3f} -> {kls[-20:]}"
    assert abs(own - other) < 0.01, f"collapsed z should not matter: {own:.4f} vs shuffled {other:.4f}"
    kls, own, other = outcome["vmf"]
    assert kls == pytest.approx([kl_to_uniform(16, 100.0)] * len(kls), rel=1e-6)
    assert own < chance - 0.3 and own < other - 0.5, (own, other, chance)


def test_mask_for_training_masks_at_least_one_content_piece_and_never_a_special_one():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 9, (2000,), generator=generator)
    ids = torch.full((2000, 10), 3)
    mask = torch.zeros_like(ids)
    for i, m in enumerate(lengths.tolist()):
        ids[i, 0], ids[i, 1:1 + m], ids[i, 1 + m] = 4, torch.arange(10, 10 + m), 5
        mask[i, :m + 2] = 1
    masked, labels = mask_for_training(ids, mask, 6, generator)
    chosen = labels != -100
    assert bool((chosen.sum(1) >= 1).all())
    assert bool((ids[chosen] >= 10).all()), "only content pieces are masked"
    assert torch.equal(masked[chosen], torch.full_like(masked[chosen], 6))
    assert torch.equal(masked[~chosen], ids[~chosen]) and torch.equal(labels[chosen], ids[chosen])
    share = (chosen.sum(1).float() / lengths).mean().item()
    assert 0.5 < share < 0.7, share  # rate ~ U(0, 1), plus the one forced piece


def test_decode_respects_lengths_and_the_allowed_pieces_and_save_load_round_trips(tmp_path):
    model = tiny_vae("vmf", max_length=6).eval()
    model.allowed_pieces[:] = False
    model.allowed_pieces[[8, 9, 12]] = True
    z = model.prior_sample(4, torch.Generator().manual_seed(0))
    assert torch.allclose(z.norm(dim=1), torch.ones(4))
    out = model.decode(z, torch.tensor([1, 3, 6, 2]), iterations=3)
    assert [len(s) for s in out] == [1, 3, 6, 2]
    assert all(piece in (8, 9, 12) for s in out for piece in s)
    free = model.decode(z, iterations=2)
    assert all(1 <= len(s) <= 6 for s in free)
    model.save(tmp_path / "vae")
    again = FNetVAE.load(tmp_path / "vae")
    assert again.decode(z, torch.tensor([1, 3, 6, 2]), iterations=3) == out
    assert torch.equal(again.allowed_pieces, model.allowed_pieces)
    with pytest.raises(FileNotFoundError, match="--model"):
        FNetVAE.load(tmp_path)


def test_slerp_stays_on_the_sphere_between_its_ends():
    a = torch.nn.functional.normalize(torch.randn(8), dim=0)
    b = torch.nn.functional.normalize(torch.randn(8), dim=0)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    middle = slerp(a, b, 0.5)
    assert middle.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert float(middle @ a) == pytest.approx(float(middle @ b), abs=1e-6)


def test_vae_config_errors_name_the_flag():
    with pytest.raises(ValueError, match="--posterior"):
        VAEConfig(posterior="normal").validate()
    with pytest.raises(ValueError, match="--kappa"):
        VAEConfig(kappa=0.0).validate()


# ----------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def text_and_tokenizer(tmp_path_factory):
    from fnet.tokenization import FNetTokenizer

    folder = tmp_path_factory.mktemp("vae_cli")
    words = "apple river stone cloud paper music window garden silver yellow table chair light dark".split()
    rng = random.Random(0)
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 7))) for _ in range(200)]
    (folder / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "held.txt").write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    FNetTokenizer.train([str(folder / "train.txt")], vocab_size=40, output_dir=str(folder / "tok"))
    return folder


def test_fnet_vae_train_encode_sample_interpolate_end_to_end(text_and_tokenizer, tmp_path, capsys):
    from fnet.cli.main import main as fnet_main

    folder = text_and_tokenizer
    out = tmp_path / "vae"
    train = ["vae", "train", "--train-files", str(folder / "train.txt"), "--eval-files", str(folder / "held.txt"),
             "--tokenizer", str(folder / "tok"), "--output", str(out), "--max-steps", "6", "--batch-size", "8",
             "--latent-dim", "8", "--kappa", "20", "--max-length", "12", "--threads", "1", "--no-progress",
             "--save-every", "3"]
    assert fnet_main(train) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 6 and summary["kl_constant"] == pytest.approx(kl_to_uniform(8, 20.0))
    assert summary["eval"]["eval_kl"] == pytest.approx(kl_to_uniform(8, 20.0), rel=1e-5)
    marker = json.loads((out / "fnet_folder.json").read_text())
    assert marker["kind"] == "vae" and marker["state"] == "complete"
    assert (out / "vae_config.json").is_file() and (out / "spiece.model").is_file()

    assert fnet_main(train) == 2  # the folder is a finished run: refused, one line naming --output
    assert "--output" in capsys.readouterr().err
    assert fnet_main(train[:-2] + ["--max-steps", "9", "--save-every", "3", "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["resumed_from"] == 6

    assert fnet_main(["vae", "sample", "--model", str(out), "--num-samples", "3", "--iterations", "3"]) == 0
    samples = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(samples) == 3 and all(isinstance(s["text"], str) and s["pieces"] >= 1 for s in samples)

    path = tmp_path / "walk.jsonl"
    assert fnet_main(["vae", "interpolate", "--model", str(out), "--start", "apple river stone", "--end",
                      "light dark table chair", "--points", "4", "--output", str(path)]) == 0
    walk = [json.loads(line) for line in path.read_text().splitlines()]
    assert [w["t"] for w in walk] == [0.0, 0.3333, 0.6667, 1.0]

    vectors, lines = tmp_path / "z.npy", tmp_path / "lines.txt"
    lines.write_text((folder / "held.txt").read_text() + "\n" + "apple river stone\n")  # a blank line, then one more
    capsys.readouterr()
    assert fnet_main(["vae", "encode", "--model", str(out), "--input", str(lines), "--output", str(vectors)]) == 0
    assert json.loads(capsys.readouterr().out)["blank"] == 1
    z = np.load(vectors)
    assert z.shape == (10, 8) and np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)  # row i is line i
    assert not np.allclose(z[9], z[8])  # the blank line has its own row
    capsys.readouterr()
    assert fnet_main(["vae", "encode", "--model", str(out), "--input", str(lines), "--output", str(vectors)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("flags,message", [
    (["--kappa", "-1"], "--kappa"),
    (["--latent-dim", "1"], "--latent-dim"),
    (["--max-length", "1", "--max-texts", "5"], "--max-length"),
    pytest.param(["--device", "cuda"], "--device cuda",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_fnet_vae_train_bad_input_is_one_line_naming_the_flag(text_and_tokenizer, tmp_path, capsys, flags, message):
    from fnet.cli.main import main as fnet_main

    folder = text_and_tokenizer
    argv = ["vae", "train", "--train-files", str(folder / "train.txt"), "--tokenizer", str(folder / "tok"),
            "--output", str(tmp_path / "bad"), "--max-steps", "2", "--no-progress", *flags]
    assert fnet_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "bad").exists()
