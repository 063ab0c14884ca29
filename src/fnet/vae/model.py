"""A sentence VAE on FNet: encoder -> latent z on the sphere (vMF) or in R^k (Gaussian) -> MLM decoder.

Legend: b batch, n tokens per row ([CLS] x_1..x_m [SEP] and pads), m content pieces of a sentence,
d hidden size, e embedding width, k latent size, v vocabulary.

**Encoder.** An :class:`fnet.modeling.FNetModel` over ``[CLS] x [SEP]``; its last hidden states are
mean-pooled over real tokens and projected to R^k. For the vMF posterior the projection is normalised,
``mu = W h / |W h|``, and ``z ~ vMF(mu, kappa)`` with kappa fixed (:mod:`fnet.vae.vmf`); the prior is
uniform on S^{k-1}, so the KL term is the constant ``kl_to_uniform(k, kappa)``. The Gaussian posterior
(``posterior="gaussian"``, the baseline that collapses) projects to ``(mean, log variance)`` with the
prior N(0, I) and the usual closed-form KL.

**Decoder, and why an MLM with iterative unmasking.** FNet's Fourier mixing is not causal (every output
mixes every position), so a left-to-right decoder would need another architecture. The decoder is an
:class:`fnet.modeling.FNetForMaskedLM` of the same shape, conditioned on z at every position (``W_z z``
added to every input embedding, before the position embeddings and LayerNorm), that reconstructs the
sentence from z and a randomly masked copy of it: per sentence a rate r ~ U(0, 1), each piece masked with
probability r (at least one). Trained at every rate, it decodes from a fully masked row by
**mask-predict** (Ghazvininejad et al., 2019): predict every masked piece, keep the most confident,
re-mask the ``m (T - 1 - t) / T`` least confident, T passes in all. That is T encoder passes per
sentence where CGMH (:mod:`fnet.generation`) needs two per proposal and hundreds of proposals, and it
needs no target distribution: the decoder's own conditional ``p(x_masked | z, x_visible)`` is what it
was trained on. A length head ``p(m | z)`` chooses m first (mask-predict's length prediction).

The low masking rates give the decoder context to copy from, which is what makes text-VAE decoders
"too strong" and the Gaussian posterior collapse; the vMF posterior's constant KL removes the incentive
(tests/test_vae_model.py shows both on a small task).

**Objective** per batch (minimised, in nats per masked piece): the negative log-likelihood of the masked
pieces, plus per sentence that of its length under ``p(m | z)`` and ``kl_weight * KL``, divided by the
number of masked pieces.

Files: ``vae_config.json`` (this model's :class:`VAEConfig` and the FNetConfig of both networks) and
``model.safetensors``; the training run adds the tokenizer (:mod:`fnet.vae.run`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fnet.config import FNetConfig
from fnet.modeling import FNetForMaskedLM, FNetModel
from fnet.vae import POSTERIORS
from fnet.vae.vmf import kl_to_uniform, sample_uniform_sphere, sample_vmf

__all__ = ["POSTERIORS", "VAEConfig", "FNetVAE", "Posterior", "vae_loss", "mask_for_training", "slerp",
           "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "vae_config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class VAEConfig:
    """The VAE around two FNet networks (encoder and decoder share ``fnet``'s shape)."""

    latent_dim: int = 64  # k: z lies on S^{k-1} (vmf) or in R^k (gaussian)
    posterior: str = "vmf"  # "vmf" (fixed kappa, uniform prior) or "gaussian" (N(0, I) prior: the collapsing baseline)
    kappa: float = 50.0  # the vMF concentration (fixed); larger: z closer to mu, higher constant KL
    max_length: int = 32  # most content pieces of a sentence (rows are [CLS] + these + [SEP])
    cls_token_id: int = 4
    sep_token_id: int = 5
    mask_token_id: int = 6
    pad_token_id: int = 3
    fnet: dict[str, Any] = field(default_factory=dict)  # FNetConfig.to_dict() of the encoder and the decoder

    def validate(self) -> None:
        if self.posterior not in POSTERIORS:
            raise ValueError(f"--posterior must be one of {', '.join(POSTERIORS)}, got {self.posterior!r}")
        if self.latent_dim < 2:
            raise ValueError(f"--latent-dim must be >= 2, got {self.latent_dim}")
        if self.posterior == "vmf" and not (self.kappa > 0 and math.isfinite(self.kappa)):
            raise ValueError(f"--kappa must be a finite number > 0, got {self.kappa}")
        if self.max_length < 1:
            raise ValueError(f"--max-length must be >= 1, got {self.max_length}")

    def fnet_config(self) -> FNetConfig:
        return FNetConfig.from_dict(self.fnet)

    def kl_constant(self) -> float | None:
        """The vMF posterior's KL to the uniform prior (nats); None for the Gaussian posterior."""
        return kl_to_uniform(self.latent_dim, self.kappa) if self.posterior == "vmf" else None


@dataclass
class Posterior:
    """q(z | x) of a batch: ``mean`` (b, k) is mu (unit vectors) for vmf, the Gaussian mean otherwise."""

    mean: torch.Tensor  # (b, k)
    log_var: torch.Tensor | None = None  # (b, k), gaussian only


class FNetVAE(nn.Module):
    """Sentence VAE: :meth:`posterior` (encoder), :meth:`sample_latent`, :meth:`kl`, :meth:`token_logits` and
    :meth:`length_logits` (decoder), :meth:`decode` (mask-predict), :meth:`prior_sample`."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        config.validate()
        self.config = config
        net = config.fnet_config()
        if net.max_position_embeddings < config.max_length + 2:
            raise ValueError(f"--max-length {config.max_length} needs {config.max_length + 2} positions; the model "
                             f"has {net.max_position_embeddings}")
        k = config.latent_dim
        self.encoder = FNetModel(net, add_pooling_layer=False)
        self.to_latent = nn.Linear(net.hidden_size, k if config.posterior == "vmf" else 2 * k)
        self.decoder = FNetForMaskedLM(net)
        self.from_latent = nn.Linear(k, net.embedding_width)
        self.length_head = nn.Linear(k, config.max_length + 1)  # p(m | z), m = 1..max_length (0 unused)
        # pieces a decoded sentence may hold (no special or control piece); set from the tokenizer
        self.register_buffer("allowed_pieces", torch.ones(net.vocab_size, dtype=torch.bool))

    # ------------------------------------------------------------------ encoder side
    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the encoder's last hidden states over real tokens: (b, n) -> (b, d)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (b, n, d)
        mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (b, n, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def posterior(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Posterior:
        return self.posterior_from_pooled(self.pooled(input_ids, attention_mask))

    def posterior_from_pooled(self, pooled: torch.Tensor) -> Posterior:
        """q(z | x) from the pooled encoder states (b, d)."""
        projected = self.to_latent(pooled)  # (b, k) or (b, 2k)
        if self.config.posterior == "vmf":
            return Posterior(F.normalize(projected, dim=-1))
        mean, log_var = projected.chunk(2, dim=-1)  # (b, k) each
        return Posterior(mean, log_var.clamp(-20.0, 10.0))

    def sample_latent(self, posterior: Posterior, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ q(z | x), reparameterised: (b, k)."""
        if self.config.posterior == "vmf":
            return sample_vmf(posterior.mean, self.config.kappa, generator)
        noise = torch.randn(posterior.mean.shape, generator=generator, dtype=posterior.mean.dtype)
        return posterior.mean + torch.exp(0.5 * posterior.log_var) * noise.to(posterior.mean.device)

    def kl(self, posterior: Posterior) -> torch.Tensor:
        """KL(q(z | x) || p(z)) per sentence in nats: (b,)."""
        if self.config.posterior == "vmf":
            return posterior.mean.new_full(posterior.mean.shape[:1], self.config.kl_constant())
        mean, log_var = posterior.mean, posterior.log_var
        return 0.5 * (mean ** 2 + log_var.exp() - 1.0 - log_var).sum(-1)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws from the prior: uniform on the sphere (vmf) or N(0, I): (n, k)."""
        k = self.config.latent_dim
        if self.config.posterior == "vmf":
            return sample_uniform_sphere(n, k, generator)
        return torch.randn(n, k, generator=generator)

    # ------------------------------------------------------------------ decoder side
    def token_logits(self, z: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The decoder's piece logits at every position of the (partly masked) rows, given z: (b, n, v)."""
        words = self.decoder.fnet.embeddings.word_embeddings(input_ids)  # (b, n, e)
        conditioned = words + self.from_latent(z).unsqueeze(1)  # (b, n, e): z at every position
        return self.decoder(inputs_embeds=conditioned, attention_mask=attention_mask).logits

    def length_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the number of content pieces m (index m; 0 never chosen): (b, max_length + 1)."""
        logits = self.length_head(z)
        logits[:, 0] = -torch.inf
        return logits

    @torch.no_grad()
    def decode(self, z: torch.Tensor, lengths: torch.Tensor | None = None, iterations: int = 10) -> list[list[int]]:
        """Sentences (content piece ids) for latents z (b, k) by mask-predict with ``iterations`` passes;
        ``lengths`` (b,) fixes m, else the length head's most likely m."""
        c = self.config
        device = next(self.parameters()).device
        z = z.to(device=device, dtype=next(self.parameters()).dtype)
        if lengths is None:
            lengths = self.length_logits(z).argmax(-1)
        lengths = lengths.to(device).clamp(1, c.max_length)  # (b,)
        b, n = z.shape[0], int(lengths.max()) + 2
        position = torch.arange(n, device=device)[None, :]  # (1, n)
        content = (position >= 1) & (position <= lengths[:, None])  # (b, n)
        ids = torch.full((b, n), c.pad_token_id, dtype=torch.long, device=device)
        ids[:, 0] = c.cls_token_id
        ids[content] = c.mask_token_id
        ids[position == lengths[:, None] + 1] = c.sep_token_id
        attention_mask = (position <= lengths[:, None] + 1).long()  # (b, n)
        confidence = torch.zeros(b, n, device=device)
        masked = content.clone()
        for t in range(iterations):
            logits = self.token_logits(z, ids, attention_mask).float()  # (b, n, v)
            logits[..., ~self.allowed_pieces] = -torch.inf
            prob, best = logits.softmax(-1).max(-1)  # (b, n) each
            ids = torch.where(masked, best, ids)
            confidence = torch.where(masked, prob, confidence)
            if t == iterations - 1:
                break
            remask = (lengths * (iterations - 1 - t)) // iterations  # (b,) pieces to predict again
            order = torch.where(content, confidence, torch.inf).argsort(dim=1)  # least confident first
            rank = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=device).expand(b, n))
            masked = rank < remask[:, None]
            ids = torch.where(masked, torch.full_like(ids, c.mask_token_id), ids)
        return [row[1:1 + int(m)].tolist() for row, m in zip(ids, lengths)]

    # ------------------------------------------------------------------ files
    # (``save``/``load``, not ``save_pretrained``: the trainer's checkpoints then hold a plain state dict,
    # ``model.pt`` read with ``weights_only=True``, rather than going through the FNet key maps)
    def save(self, directory: str | os.PathLike) -> None:
        """``vae_config.json`` and ``model.safetensors`` in ``directory`` (atomic writes)."""
        from safetensors.torch import save

        from fnet.io import atomic_write_bytes, atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}  # tied MLM weights: one copy each
        atomic_write_bytes(directory / WEIGHTS_NAME, save(state, metadata={"format": "pt"}))
        atomic_write_text(directory / CONFIG_NAME, json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike, flag: str = "--model") -> "FNetVAE":
        """The VAE saved in ``directory`` by :meth:`save` (errors name ``flag``)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{flag} {directory}: no {CONFIG_NAME}; pass the output of `fnet vae train`")
        try:
            config = VAEConfig(**json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8")))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{flag} {directory}: {CONFIG_NAME} is not a VAE config ({err})") from None
        model = cls(config)
        state = load_file(str(directory / WEIGHTS_NAME))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{flag} {directory}: weights do not match {CONFIG_NAME} (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
        return model.eval()


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The point a fraction t along the great circle from unit vector a to unit vector b: (k,)."""
    cos = torch.clamp((a * b).sum(), -1.0, 1.0)
    angle = torch.arccos(cos)
    if float(angle) < 1e-6:
        return a.clone()
    return (torch.sin((1 - t) * angle) * a + torch.sin(t * angle) * b) / torch.sin(angle)


def mask_for_training(input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_token_id: int,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked ids, labels) of rows ``[CLS] x [SEP]``: per row a rate r ~ U(0, 1), each content piece masked
    with probability r, at least one; labels are -100 where nothing is to be predicted."""
    b, n = input_ids.shape
    lengths = attention_mask.sum(1) - 2  # (b,) content pieces
    position = torch.arange(n, device=input_ids.device)[None, :]  # (1, n)
    content = (position >= 1) & (position <= lengths[:, None])  # (b, n)
    rate = torch.rand(b, 1, generator=generator).to(input_ids.device)  # (b, 1)
    chosen = (torch.rand(b, n, generator=generator).to(input_ids.device) < rate) & content
    forced = (torch.rand(b, generator=generator).to(input_ids.device) * lengths).long() + 1  # (b,) in 1..m
    chosen[torch.arange(b), forced] = True  # at least one masked piece per row
    masked = torch.where(chosen, torch.full_like(input_ids, mask_token_id), input_ids)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    return masked, labels


def vae_loss(model: FNetVAE, batch: dict[str, torch.Tensor], kl_weight: float = 1.0,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss, stats) of one batch (``input_ids``, ``attention_mask``: rows ``[CLS] x [SEP]``); see the module
    docstring. ``stats``: ``kl`` (nats per sentence), ``rec_nll`` (nats per masked piece), ``token_accuracy``
    (masked pieces predicted), ``length_accuracy``."""
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    post = model.posterior(input_ids, attention_mask)
    z = model.sample_latent(post, generator)  # (b, k)
    masked, labels = mask_for_training(input_ids, attention_mask, model.config.mask_token_id, generator)
    logits = model.token_logits(z, masked, attention_mask)  # (b, n, v)
    token_nll = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="sum")
    lengths = attention_mask.sum(1) - 2  # (b,)
    length_logits = model.length_logits(z).float()
    length_nll = F.cross_entropy(length_logits, lengths, reduction="sum")
    kl = model.kl(post)  # (b,)
    pieces = (labels != -100).sum().clamp_min(1)
    loss = (token_nll + length_nll + kl_weight * kl.sum()) / pieces
    with torch.no_grad():
        hit = (logits.argmax(-1) == labels) & (labels != -100)
        stats = {"kl": float(kl.mean()), "rec_nll": float(token_nll / pieces),
                 "token_accuracy": float(hit.sum() / pieces),
                 "length_accuracy": float((length_logits.argmax(-1) == lengths).float().mean())}
    return loss, stats
