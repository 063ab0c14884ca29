"""Token mixers: the one part of an encoder block that moves information between positions.

Legend: b batch, n sequence length, d hidden size, h heads, e head size (d / h), m random features,
N max_position_embeddings.

The contract every mixer keeps::

    mixer(hidden_states (b, n, d), padding_mask (b, n) or None) -> (b, n, d)

``padding_mask`` is nonzero at real tokens and 0 at pads (the model's ``attention_mask``). A mixer
does the mixing only: the optional output projection and the norm belong to the sublayer around it
(``modeling.FNetMixingSublayer``). Mixers that ignore the mask say so. Every mixer is a
``TokenMixer``, which also gives the residual form the post-norm sublayer calls::

    mixer.residual(hidden_states, padding_mask) == hidden_states + mixer(hidden_states, padding_mask)

A mixer with a faster exact form of the sum overrides it: ``fourier`` writes x + Re(F_n x F_d) in one
pass from the half spectrum (``fourier.fourier_residual``).

| name               | mixes with                                  | parameters        | cost          |
|--------------------|---------------------------------------------|-------------------|---------------|
| `fourier`          | Re(F_n x F_d), FFT or DFT matrices           | none              | O(n d log nd) |
| `attention`        | softmax(q k^T / sqrt(e)) v, multi-head      | q, k, v (+ out)   | O(n^2 d)      |
| `linear-attention` | phi(q) (phi(k)^T v), phi = elu + 1          | q, k, v (+ out)   | O(n d e)      |
| `performer`        | FAVOR+ positive orthogonal random features  | q, k, v (+ out)   | O(n m d)      |
| `linear`           | W_n[:n, :n] x W_d, both learned             | N^2 + d^2         | O(n^2 d)      |
| `random`           | R_n[:n, :n] x R_d, both fixed at init       | none (buffers)    | O(n^2 d)      |
| `identity`         | nothing (feed-forward only)                 | none              | O(1)          |

``MIXERS`` maps each name to its class; ``build_mixer`` is the one dispatch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fnet.config import ATTENTION_FAMILY, TOKEN_MIXERS, FNetConfig
from fnet.fourier import fourier_residual, fourier_transform

__all__ = [
    "MIXERS",
    "build_mixer",
    "TokenMixer",
    "FNetBasicFourierTransform",
    "SelfAttentionMixer",
    "LinearAttentionMixer",
    "PerformerMixer",
    "LinearMixer",
    "RandomMixer",
    "IdentityMixer",
    "apply_rotary",
]


# ----------------------------------------------------------------------------- the contract


class TokenMixer(nn.Module):
    """Base of every mixer. ``forward(hidden_states (b, n, d), padding_mask (b, n) | None) -> (b, n, d)``.

    Class attributes tell the sublayer how to hold the mixer: ``sublayer_name`` is its state-dict
    prefix (``fourier``, ``attention`` or ``mixing``) and ``has_output_dense`` adds BERT's output
    projection + dropout after it.
    """

    sublayer_name = "mixing"
    has_output_dense = False

    def residual(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x + mix(x), the post-norm sublayer's sum before its norm. (b, n, d) -> (b, n, d)."""
        return hidden_states + self(hidden_states, padding_mask)


# ----------------------------------------------------------------------------- fourier


class FNetBasicFourierTransform(TokenMixer):
    """The parameter-free mixing: Re(F_n x F_d), by FFT or DFT matrices. (b, n, d) -> (b, n, d).

    With a padding mask each example is transformed over its own real tokens (pads get zeros).
    ``method`` is ``config.fourier_transform`` ("dft" also under the reference TPU switch); "auto"
    is resolved per call by ``fourier.resolve_method``: the half-precision matmul form on CUDA for
    short sequences, the FFT elsewhere (so CPUs run exactly what "fft" runs).
    """

    sublayer_name = "fourier"  # state-dict prefix of the sublayer (transformers' FNet keys)
    has_output_dense = False  # the reference mixing sublayer has no dense layer and no dropout

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__()
        self.method = "dft" if config.uses_dft else config.fourier_transform  # "fft" or "auto"
        self.dft_max_length = config.dft_max_length

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return fourier_transform(hidden_states, padding_mask, self.method, self.dft_max_length)

    def residual(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x + Re(F_n x F_d), fused: one pass from the half spectrum on the FFT path without a mask,
        the second GEMM's epilogue on the matmul path."""
        return fourier_residual(hidden_states, padding_mask, self.method, self.dft_max_length)


# ----------------------------------------------------------------------------- attention family


def apply_rotary(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoPE) on queries or keys. (b, h, n, e) -> (b, h, n, e), e even.

    Channel pairs (i, i + e/2) are rotated by angle p * base^(-2i/e) at position p, so the dot
    product of a rotated query and key depends on their offset only.
    """
    n, e = x.shape[-2], x.shape[-1]
    half = e // 2
    inv_freq = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)  # (e/2,)
    angle = torch.arange(n, device=x.device, dtype=torch.float32)[:, None] * inv_freq  # (n, e/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]  # (b, h, n, e/2) each
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class _AttentionBase(TokenMixer):
    """Query/key/value projections and head bookkeeping shared by the attention family.

    Key names are BERT's (``attention.self.{query,key,value}``), so BERT weights load 1:1. The
    output projection ``attention.output.dense`` lives in the sublayer (``has_output_dense``).
    """

    sublayer_name = "attention"
    has_output_dense = True

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = d // self.num_heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.rotary = config.rotary

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_size).transpose(1, 2)  # (b, n, d) -> (b, h, n, e)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        b, h, n, e = x.shape
        return x.transpose(1, 2).reshape(b, n, h * e)  # (b, h, n, e) -> (b, n, d)

    def _qkv(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q = self._heads(self.query(hidden_states))  # (b, h, n, e)
        k = self._heads(self.key(hidden_states))
        v = self._heads(self.value(hidden_states))
        if self.rotary:
            q, k = apply_rotary(q), apply_rotary(k)
        return q, k, v


class SelfAttentionMixer(_AttentionBase):
    """Multi-head softmax self-attention (BERT) through ``F.scaled_dot_product_attention``.

    Pads are never attended to; pad rows still attend to the real tokens (their outputs are unused).
    """

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__(config, layer_index)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._qkv(hidden_states)
        attn_mask = None
        if padding_mask is not None:
            attn_mask = padding_mask.to(torch.bool)[:, None, None, :]  # (b, 1, 1, n): True = may attend
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout_p if self.training else 0.0
        )  # (b, h, n, e)
        return self._merge(context)


def _masked_keys(k_features: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the pads' key features so they contribute to neither sum. (b, h, n, r)."""
    if padding_mask is None:
        return k_features
    return k_features * padding_mask.to(k_features.dtype)[:, None, :, None]


def _linear_attention(q_features: torch.Tensor, k_features: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    """sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j), in O(n): (b,h,n,r) x2, (b,h,n,e) -> (b,h,n,e)."""
    kv = torch.einsum("bhnr,bhne->bhre", k_features, v)  # (b, h, r, e)
    numerator = torch.einsum("bhnr,bhre->bhne", q_features, kv)  # (b, h, n, e)
    denominator = torch.einsum("bhnr,bhr->bhn", q_features, k_features.sum(dim=2))  # (b, h, n)
    return numerator / (denominator[..., None] + eps)


class LinearAttentionMixer(_AttentionBase):
    """Kernelised attention with the positive feature map phi(x) = elu(x) + 1 (Katharopoulos et al.).

    Cost O(n e^2) per head instead of O(n^2 e): keys and values are summed once, then each query
    reads the sum. Pads' key features are zeroed, so they contribute nothing.
    """

    eps = 1e-6

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._qkv(hidden_states)
        with torch.autocast(device_type=hidden_states.device.type, enabled=False):
            qf = F.elu(q.float()) + 1.0  # (b, h, n, e)
            kf = _masked_keys(F.elu(k.float()) + 1.0, padding_mask)
            context = _linear_attention(qf, kf, v.float(), self.eps)
        return self._merge(context.to(hidden_states.dtype))


def orthogonal_gaussian(num_features: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(m, e) random features: blocks of orthonormal rows, each row scaled to a Gaussian vector's norm.

    Orthogonal rows lower the variance of the FAVOR+ estimate (Choromanski et al., 2021, sec. 2.4).
    """
    blocks = []
    for start in range(0, num_features, dim):
        gaussian = torch.randn(dim, dim, generator=generator)
        q, _ = torch.linalg.qr(gaussian)  # (e, e), orthonormal columns
        blocks.append(q.T[: min(dim, num_features - start)])
    rows = torch.cat(blocks, dim=0)  # (m, e)
    norms = torch.randn(num_features, dim, generator=generator).norm(dim=1, keepdim=True)  # (m, 1)
    return rows * norms


class PerformerMixer(_AttentionBase):
    """FAVOR+ (Performer): softmax attention estimated with positive orthogonal random features.

    phi(x) = exp(w . x - |x|^2 / 2) / sqrt(m) on x = q / e^(1/4) (and k likewise), so that
    E[phi(q) . phi(k)] = exp(q . k / sqrt(e)). Queries and keys are capped at norm
    ``max_feature_norm`` * e^(1/4) first (see ``_features``): the estimate stays usable, so the
    mixer trains from any weights (uncapped, it stayed at the majority class once q, k grew). The features ``projection_matrix`` (m, e) are a
    saved buffer; ``redraw_features()`` draws new ones, and in training they are redrawn every
    ``config.performer_redraw_interval`` forward calls (0 = never).
    """

    eps = 1e-6
    max_feature_norm = 2.0  # |q| / e^(1/4) and |k| / e^(1/4) are capped here (logits within +-4)

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__(config, layer_index)
        self.num_features = config.performer_features
        self.redraw_interval = config.performer_redraw_interval
        self.register_buffer("projection_matrix", orthogonal_gaussian(self.num_features, self.head_size))
        self.calls_since_redraw = 0

    @torch.no_grad()
    def redraw_features(self, generator: torch.Generator | None = None) -> None:
        """Draw a fresh (m, e) feature matrix in place (same device and dtype)."""
        new = orthogonal_gaussian(self.num_features, self.head_size, generator)
        self.projection_matrix.copy_(new.to(self.projection_matrix))
        self.calls_since_redraw = 0

    def _features(self, x: torch.Tensor, is_query: bool, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Positive random features of queries or keys. (b, h, n, e) float32 -> (b, h, n, m)."""
        x = x * self.head_size**-0.25
        # cap |x| (direction kept): the estimate's variance grows like exp(|q|^2 + |k|^2), so once
        # trained q and k grow (pretrained weights, high learning rates) 64 features give noise and
        # training stalls at the majority class; below the cap the estimate is FAVOR+'s unchanged
        norm = x.norm(dim=-1, keepdim=True)  # (b, h, n, 1)
        x = x * (self.max_feature_norm / norm.clamp(min=self.max_feature_norm))
        projected = torch.einsum("bhne,me->bhnm", x, self.projection_matrix.float())  # (b, h, n, m)
        squared = (x * x).sum(dim=-1, keepdim=True) / 2  # (b, h, n, 1)
        if is_query:  # a per-row constant cancels between numerator and denominator
            stabiliser = projected.amax(dim=-1, keepdim=True)
        else:  # one constant per (example, head), taken over real tokens only
            scores = projected
            if padding_mask is not None:
                scores = projected.masked_fill(~padding_mask.to(torch.bool)[:, None, :, None], float("-inf"))
            stabiliser = scores.amax(dim=(-2, -1), keepdim=True)
        return torch.exp(projected - squared - stabiliser) / math.sqrt(self.num_features) + self.eps

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.training and self.redraw_interval > 0:
            if self.calls_since_redraw >= self.redraw_interval:
                self.redraw_features()
            self.calls_since_redraw += 1
        q, k, v = self._qkv(hidden_states)
        with torch.autocast(device_type=hidden_states.device.type, enabled=False):
            qf = self._features(q.float(), True, padding_mask)
            kf = _masked_keys(self._features(k.float(), False, padding_mask), padding_mask)
            context = _linear_attention(qf, kf, v.float(), self.eps)
        return self._merge(context.to(hidden_states.dtype))


# ----------------------------------------------------------------------------- the paper's baselines


def _zero_pads(hidden_states: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    if padding_mask is None:
        return hidden_states
    return hidden_states * padding_mask.to(hidden_states.dtype)[..., None]


class LinearMixer(TokenMixer):
    """Learned dense mixing along the sequence and the hidden dimension: W_n[:n, :n] x W_d.

    ``seq_weight`` is (N, N) for N = max_position_embeddings and is cut to the input length n.
    With a padding mask, pads are zeroed before mixing, so a right-padded example's outputs equal
    its outputs alone (where the matrix is cut to its real length).
    """

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__()
        n, d = config.max_position_embeddings, config.hidden_size
        self.seq_weight = nn.Parameter(torch.empty(n, n))
        self.hidden_weight = nn.Parameter(torch.empty(d, d))
        # N(0, 1/dim) keeps the mixed activations at the input's scale; model init leaves Parameters alone
        nn.init.normal_(self.seq_weight, std=n**-0.5)
        nn.init.normal_(self.hidden_weight, std=d**-0.5)

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        n = hidden_states.shape[1]
        x = _zero_pads(hidden_states, padding_mask)
        mixed = torch.matmul(x, self.hidden_weight)  # (b, n, d)
        return torch.matmul(self.seq_weight[:n, :n], mixed)  # (n, n) @ (b, n, d) -> (b, n, d)


class RandomMixer(TokenMixer):
    """Fixed random mixing R_n[:n, :n] x R_d: like ``linear`` but the matrices are frozen buffers.

    Drawn N(0, 1/dim) from a generator seeded with the layer index, so every build of the same
    config has the same matrices; they are saved with the weights. Pads are zeroed as in ``linear``.
    """

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__()
        n, d = config.max_position_embeddings, config.hidden_size
        generator = torch.Generator().manual_seed(1234 + layer_index)
        self.register_buffer("seq_matrix", torch.randn(n, n, generator=generator) * n**-0.5)
        self.register_buffer("hidden_matrix", torch.randn(d, d, generator=generator) * d**-0.5)

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        n = hidden_states.shape[1]
        x = _zero_pads(hidden_states, padding_mask)
        mixed = torch.matmul(x, self.hidden_matrix.to(x.dtype))  # (b, n, d)
        return torch.matmul(self.seq_matrix[:n, :n].to(x.dtype), mixed)  # (b, n, d)


class IdentityMixer(TokenMixer):
    """No mixing (the paper's feed-forward-only baseline): returns its input.

    The sublayer then computes norm(x + x), which equals norm(x) up to the norm's epsilon, so each
    position is processed independently by the feed-forward layers.
    """

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__()

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        del padding_mask  # unused: no position sees another
        return hidden_states


# ----------------------------------------------------------------------------- registry

MIXERS: dict[str, type[TokenMixer]] = {
    "fourier": FNetBasicFourierTransform,
    "attention": SelfAttentionMixer,
    "linear-attention": LinearAttentionMixer,
    "performer": PerformerMixer,
    "linear": LinearMixer,
    "random": RandomMixer,
    "identity": IdentityMixer,
}
assert tuple(MIXERS) == TOKEN_MIXERS, "config.TOKEN_MIXERS and mixers.MIXERS must list the same names"
assert all(MIXERS[name].sublayer_name == "attention" for name in ATTENTION_FAMILY)


def build_mixer(name: str, config: FNetConfig, layer_index: int = 0) -> TokenMixer:
    """The mixer called ``name`` for layer ``layer_index``; ValueError lists the valid names."""
    if name not in MIXERS:
        raise ValueError(f"unknown token mixer {name!r}; use one of {list(MIXERS)}")
    return MIXERS[name](config, layer_index)
