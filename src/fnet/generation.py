"""CGMH: sentences that contain given keywords, sampled by Metropolis-Hastings with fnet's own MLM.

Legend: x a sentence (its SentencePiece pieces, without [CLS]/[SEP]), n = |x|, v vocabulary,
x_{\\i} the sentence with piece i replaced by [MASK], q the proposal distribution.

CGMH (Miao et al., 2019, "CGMH: Constrained Sentence Generation by Metropolis-Hastings Sampling")
starts from the keywords and edits the sentence one piece at a time: replace, insert or delete a
piece at a position that is not part of a keyword. Keywords are hard constraints: their pieces are
never replaced or deleted, nothing is inserted inside one, so their order is kept.

**Proposals.** Replacement and insertion draw the new piece from the MLM at a [MASK] placed there,
``q(w) = p_MLM(w | x with [MASK] at i)``, renormalised over pieces the sentence may hold (no special,
control or unknown piece; right after a keyword only a word-start piece, so the keyword stays a
whole word). The masked-LM model is any of fnet's mixers: the sampler only runs its encoder and MLM
head (``model.fnet`` and ``model.cls.predictions``, the transformers layout).

**Stationary distribution.** CGMH uses a left-to-right LM's sentence probability; an MLM has no
such probability, but its pseudo-log-likelihood ``PLL(x) = sum_i log p_MLM(x_i | x_{\\i})`` (Wang
and Cho, 2019; Salazar et al., 2020) is the score MLMs rank sentences with, needs nothing but the
model, and is high for sentences the model finds fluent in every position. The target is

    pi_T(x) ∝ exp((PLL(x) + length_bonus * n) / T) * 1[x keeps the keywords] * 1[min_length <= n <= max_length]

``PLL`` sums over pieces, so it prefers short sentences; ``length_bonus`` (nats per piece) offsets
that, and ``min_length`` (default: the keywords' pieces + 1) keeps every sample longer than its
keywords. ``T`` is the temperature; with ``final_temperature`` it is annealed geometrically over
the steps (then the chain is simulated annealing, not a stationary sampler).

**Acceptance.** A move type is chosen with probabilities ``p_rep, p_ins, p_del``; a position
uniformly among the ``D(x)`` free (non-keyword) pieces for replace/delete, or among the ``G(x)``
gaps not inside a keyword for insert (``G(x) = n + 1 - sum_k (len_k - 1)``). The proposal x' is
accepted with probability ``min(1, A)``:

* replace i by w:  ``A = pi(x') q(x_i) / (pi(x) q(w))``; both q are the same distribution (at the
  same mask), which is also the reverse move's.
* insert w at gap g:  the reverse is deleting it, ``A = pi(x') p_del / D(x') / (pi(x) p_ins / G(x) q(w))``
  with ``D(x') = D(x) + 1``.
* delete piece i:  the reverse is inserting ``x_i`` at gap i of x', whose proposal is the MLM at
  ``x_{\\i}``: ``A = pi(x') p_ins / G(x') q(x_i) / (pi(x) p_del / D(x))`` with ``G(x') = G(x) - 1``.

A proposal outside the support (a keyword no longer a whole word, a length out of bounds) is
rejected; it still counts as proposed. Every step costs two encoder passes: one for the proposal,
one batch of ``n'`` masked copies for ``PLL(x')``.

Each sample is ``{"text", "score", "accepted", "proposed"}``: the decoded final sentence, its PLL
per piece (nats), and the chain's accepted and proposed moves. Chain k is seeded with ``seed + k``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F


if TYPE_CHECKING:
    from fnet.modeling import FNetPreTrainedModel
    from fnet.tokenization import FNetTokenizer

logger = logging.getLogger(__name__)

__all__ = ["generate", "pseudo_log_likelihood", "load_generator", "MaskedLMScorer"]

DEFAULT_MAX_LENGTH = 32


class MaskedLMScorer:
    """The MLM's distributions at [MASK] positions, and pseudo-log-likelihoods, for one tokenizer."""

    def __init__(self, model: "FNetPreTrainedModel", tokenizer: "FNetTokenizer"):
        head = getattr(getattr(model, "cls", None), "predictions", None)
        if head is None or not hasattr(model, "fnet"):
            raise ValueError(f"{type(model).__name__} has no masked-LM head; --model must be a pretrained "
                             "(fnet pretrain) model loaded as FNetForMaskedLM or FNetForPreTraining")
        if tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no [MASK] token; use the tokenizer the model was pretrained with")
        if len(tokenizer) > model.config.vocab_size:
            raise ValueError(f"the tokenizer has {len(tokenizer)} ids but the model only {model.config.vocab_size}; "
                             "use the model's own tokenizer")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.device = next(model.parameters()).device
        v = model.config.vocab_size
        banned = torch.ones(v, dtype=torch.bool)  # ids past the tokenizer's stay banned
        banned[: len(tokenizer)] = ~torch.tensor(tokenizer.text_piece_mask())
        self.banned = banned.to(self.device)  # (v,) pieces a sentence may not hold
        word_start = torch.zeros(v, dtype=torch.bool)
        word_start[: len(tokenizer)] = torch.tensor(tokenizer.word_start_mask())
        word_start[tokenizer.all_special_ids] = False  # [SEP] never follows a keyword inside a sentence
        self.word_start = word_start.to(self.device)  # (v,)

    @torch.no_grad()
    def log_probs(self, rows: list[list[int]], positions: list[int]) -> torch.Tensor:
        """log p_MLM at ``positions[r]`` of each row (equal-length piece lists). -> (r, v) float32."""
        t = self.tokenizer
        ids = torch.tensor([[t.cls_token_id, *row, t.sep_token_id] for row in rows], device=self.device)
        hidden = self.model.fnet(input_ids=ids, return_dict=True).last_hidden_state  # (r, n + 2, d)
        at = hidden[torch.arange(len(rows), device=self.device), torch.tensor(positions, device=self.device) + 1]
        return F.log_softmax(self.model.cls.predictions(at).float(), dim=-1)  # (r, d) -> (r, v)

    def pll(self, ids: list[int]) -> float:
        """Pseudo-log-likelihood: sum_i log p_MLM(x_i | x with [MASK] at i), in nats."""
        mask = self.tokenizer.mask_token_id
        rows = [ids[:i] + [mask] + ids[i + 1:] for i in range(len(ids))]  # n copies, one mask each
        logp = self.log_probs(rows, list(range(len(ids))))  # (n, v)
        return float(logp[torch.arange(len(ids)), torch.tensor(ids, device=self.device)].sum())

    def proposal(self, masked: list[int], position: int, after_keyword: bool) -> torch.Tensor:
        """Log q over the pieces allowed at ``position`` of ``masked`` (which holds [MASK] there). (v,)"""
        logp = self.log_probs([masked], [position])[0]
        disallowed = self.banned | (~self.word_start if after_keyword else torch.zeros_like(self.banned))
        return torch.log_softmax(logp.masked_fill(disallowed, float("-inf")), dim=-1)


def pseudo_log_likelihood(model: "FNetPreTrainedModel", tokenizer: "FNetTokenizer", text: str) -> tuple[float, int]:
    """(PLL in nats, number of pieces) of ``text`` under the model's MLM."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise ValueError("the text has no pieces to score")
    return MaskedLMScorer(model, tokenizer).pll(ids), len(ids)


def load_generator(model_dir: str | os.PathLike) -> tuple["FNetPreTrainedModel", "FNetTokenizer"]:
    """The masked-LM model and tokenizer saved in ``model_dir``; refused when its MLM head is not trained."""
    from fnet.modeling import FNetForMaskedLM
    from fnet.tokenization import AutoTokenizer

    model, info = FNetForMaskedLM.from_pretrained(model_dir, output_loading_info=True, strict=True)
    untrained = sorted(k for k in info["missing_keys"] if k.startswith("cls.predictions"))
    if untrained:
        raise ValueError(f"the model in {model_dir} has no trained masked-LM head ({untrained[0]} is missing); "
                         "pass --model a pretraining output (fnet pretrain), not a fine-tuned task model")
    return model, AutoTokenizer.from_pretrained(model_dir, flag="--model")


# ----------------------------------------------------------------------------- the chain


@dataclass
class _Sentence:
    ids: list[int]  # the pieces
    locked: list[bool]  # True at keyword pieces
    keyword_end: list[bool]  # True at the last piece of each keyword

    def free(self) -> list[int]:
        return [i for i, locked in enumerate(self.locked) if not locked]

    def gaps(self) -> list[int]:
        """Gaps g (insert before piece g; g = n appends) that are not inside a keyword."""
        return [g for g in range(len(self.ids) + 1)
                if g == 0 or g == len(self.ids) or not (self.locked[g] and not self.keyword_end[g - 1])]

    def insert(self, g: int, piece: int) -> "_Sentence":
        return _Sentence(self.ids[:g] + [piece] + self.ids[g:], self.locked[:g] + [False] + self.locked[g:],
                         self.keyword_end[:g] + [False] + self.keyword_end[g:])

    def delete(self, i: int) -> "_Sentence":
        return _Sentence(self.ids[:i] + self.ids[i + 1:], self.locked[:i] + self.locked[i + 1:],
                         self.keyword_end[:i] + self.keyword_end[i + 1:])

    def replace(self, i: int, piece: int) -> "_Sentence":
        return _Sentence(self.ids[:i] + [piece] + self.ids[i + 1:], self.locked, self.keyword_end)

    def after_keyword(self, position: int) -> bool:
        return position > 0 and self.keyword_end[position - 1]


def _keyword_pieces(tokenizer: "FNetTokenizer", keywords: list[str], banned: torch.Tensor) -> list[list[int]]:
    if not keywords:
        raise ValueError("--keywords needs at least one keyword")
    out = []
    for word in keywords:
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"--keywords got an empty keyword {word!r}")
        ids = tokenizer.encode(word, add_special_tokens=False)
        if not ids or tokenizer.unk_token_id in ids:
            raise ValueError(f"keyword {word!r} has characters the tokenizer cannot represent (they map to "
                             f"{tokenizer.unk_token}); pass --keywords it can spell, or a model whose tokenizer covers them")
        if any(bool(banned[i]) for i in ids):
            raise ValueError(f"keyword {word!r} contains a special token; pass --keywords of plain words")
        out.append(ids)
    return out


def _valid(s: _Sentence, word_start: torch.Tensor, min_length: int, max_length: int) -> bool:
    """Inside the support: length bounds, and every keyword followed by a word start (or the end)."""
    if not min_length <= len(s.ids) <= max_length:
        return False
    return all(not end or i + 1 == len(s.ids) or bool(word_start[s.ids[i + 1]]) for i, end in enumerate(s.keyword_end))


def _sample(log_q: torch.Tensor, generator: torch.Generator) -> int:
    return int(torch.multinomial(log_q.exp().cpu(), 1, generator=generator))


def _choice(options: list[int], generator: torch.Generator) -> int:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def generate(
    model: "FNetPreTrainedModel",
    tokenizer: "FNetTokenizer",
    keywords: list[str],
    num_samples: int = 1,
    steps: int = 100,
    seed: int = 0,
    temperature: float = 1.0,
    final_temperature: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    length_bonus: float = 0.0,
    move_probabilities: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3),
) -> list[dict[str, Any]]:
    """``num_samples`` independent CGMH chains of ``steps`` proposals each (module docstring).

    ``min_length``/``max_length`` bound the sentence in pieces (defaults: keyword pieces + 1, and
    32 or the position table); ``move_probabilities`` are (replace, insert, delete). Returns one
    ``{"text", "score", "accepted", "proposed"}`` per chain, ``score`` the PLL per piece in nats.
    """
    for name, value, low in (("--num-samples", num_samples, 1), ("--steps", steps, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if not temperature > 0 or (final_temperature is not None and not final_temperature > 0):
        raise ValueError(f"--temperature must be > 0, got {temperature} (final {final_temperature})")
    if len(move_probabilities) != 3 or min(move_probabilities) < 0 or not math.isclose(sum(move_probabilities), 1):
        raise ValueError(f"move probabilities (replace, insert, delete) must be 3 numbers >= 0 summing to 1, "
                         f"got {move_probabilities}")
    scorer = MaskedLMScorer(model, tokenizer)
    pieces = _keyword_pieces(tokenizer, list(keywords), scorer.banned)
    n_keyword = sum(len(p) for p in pieces)
    limit = model.config.max_position_embeddings - 2  # [CLS] and [SEP]
    min_length = n_keyword + 1 if min_length is None else min_length
    max_length = min(limit, max(DEFAULT_MAX_LENGTH, min_length)) if max_length is None else max_length
    if min_length <= n_keyword:
        raise ValueError(f"the minimum length must exceed the keywords' {n_keyword} pieces, got {min_length}")
    if not min_length <= max_length <= limit:
        raise ValueError(f"lengths must satisfy {min_length} (min) <= {max_length} (max) <= {limit} (the model's "
                         f"positions - 2); pass a --max-length in that range")
    start = _Sentence(
        ids=[i for p in pieces for i in p], locked=[True] * n_keyword,
        keyword_end=[j == len(p) - 1 for p in pieces for j in range(len(p))],
    )
    return [
        _chain(scorer, start, steps, seed + k, temperature, final_temperature, min_length, max_length, length_bonus,
               move_probabilities)
        for k in range(num_samples)
    ]


def _chain(scorer: MaskedLMScorer, start: _Sentence, steps: int, seed: int, temperature: float,
           final_temperature: float | None, min_length: int, max_length: int, length_bonus: float,
           move_probabilities: tuple[float, float, float]) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(seed)
    mask = scorer.tokenizer.mask_token_id
    log_p_rep, log_p_ins, log_p_del = (math.log(p) if p > 0 else float("-inf") for p in move_probabilities)
    x = start
    while len(x.ids) < min_length:  # not counted as moves: bring the keywords up to the minimum length
        g = _choice(x.gaps(), generator)
        log_q = scorer.proposal(x.ids[:g] + [mask] + x.ids[g:], g, x.after_keyword(g))
        x = x.insert(g, _sample(log_q, generator))  # word starts only after a keyword: stays valid

    def score(s: _Sentence) -> float:
        return scorer.pll(s.ids) + length_bonus * len(s.ids)

    current = score(x)
    accepted = proposed = 0
    moves = torch.tensor(move_probabilities, dtype=torch.float64)
    for step in range(steps):
        t = temperature if final_temperature is None else \
            temperature * (final_temperature / temperature) ** (step / max(steps - 1, 1))
        move = int(torch.multinomial(moves, 1, generator=generator))
        proposed += 1
        free, gaps = x.free(), x.gaps()
        if move == 0 and free:  # replace
            i = _choice(free, generator)
            log_q = scorer.proposal(x.ids[:i] + [mask] + x.ids[i + 1:], i, x.after_keyword(i))
            w = _sample(log_q, generator)
            new = x.replace(i, w)
            correction = float(log_q[x.ids[i]] - log_q[w])
        elif move == 1 and len(x.ids) < max_length:  # insert
            g = _choice(gaps, generator)
            log_q = scorer.proposal(x.ids[:g] + [mask] + x.ids[g:], g, x.after_keyword(g))
            w = _sample(log_q, generator)
            new = x.insert(g, w)
            correction = (log_p_del - math.log(len(free) + 1)) - (log_p_ins - math.log(len(gaps)) + float(log_q[w]))
        elif move == 2 and free and len(x.ids) > min_length:  # delete
            i = _choice(free, generator)
            log_q = scorer.proposal(x.ids[:i] + [mask] + x.ids[i + 1:], i, x.after_keyword(i))
            new = x.delete(i)
            correction = (log_p_ins - math.log(len(gaps) - 1) + float(log_q[x.ids[i]])) - (log_p_del - math.log(len(free)))
        else:  # no such move from here: the proposal leaves the support and is rejected
            continue
        if not _valid(new, scorer.word_start, min_length, max_length) or correction == float("-inf"):
            continue
        candidate = score(new)
        log_accept = (candidate - current) / t + correction
        if log_accept >= 0 or float(torch.rand((), generator=generator, dtype=torch.float64)) < math.exp(log_accept):
            x, current = new, candidate
            accepted += 1
    pll = scorer.pll(x.ids)
    return {"text": scorer.tokenizer.decode(x.ids), "score": pll / len(x.ids), "accepted": accepted,
            "proposed": proposed}
