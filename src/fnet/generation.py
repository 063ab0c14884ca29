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
model, and is high for sentences the model finds fluent in every position. ``PLL`` sums over
pieces, so on its own it prefers short sentences: a chain that starts from the keywords stays a
fragment (the keywords plus a piece or two). So by default each chain first draws its **target
length** ``L ~ P(n | min_length <= n <= max_length)`` from a **length prior** ``P(n)``, the
distribution of sentence lengths (in pieces) of the model's own pretraining data (the tokenised
sentences ``fnet pretrain`` cached in the model folder, or its ``train_files``) or of a given text
file (:class:`LengthPrior`), and then samples

    pi_T(x) ∝ exp((L * PLL(x) / n + length_bonus * n) / T) * 1[x keeps the keywords] * 1[min_length <= n <= L]

The fluency term is the per-piece PLL, weighted as an ``L``-piece sentence's; it no longer falls with
every piece added (a longer context even makes pieces easier to predict), so chains end at or near
``L`` and the samples' lengths follow the data's. With ``length_prior=None`` the target is CGMH's
original sum, ``exp((PLL(x) + length_bonus * n) / T)`` on ``[min_length, max_length]``, where
``length_bonus`` (nats per piece) is the only thing against short sentences. ``min_length`` (default:
the keywords' pieces + 1) keeps every sample longer than its keywords. ``T`` is the temperature;
with ``final_temperature`` it is annealed geometrically over the steps (then the chain is simulated
annealing, not a stationary sampler).

**Grow, then polish.** Move probabilities may depend on the length: by default
(:func:`growth_move_probabilities`) a sentence shorter than the target mostly inserts
(replace, insert, delete) = (0.2, 0.75, 0.05) at length 0, moving linearly to (0.6, 0.2, 0.2) at the
target and beyond, so a chain first grows to a sentence and then polishes it. The acceptance below
uses the forward move's probability at the current length and the reverse move's at the new length,
so the target is unchanged. The default number of steps is ``STEPS_PER_PIECE`` per piece of the
chain's target length: a longer sentence needs more edits to grow and to polish.

**Acceptance.** A move type is chosen with probabilities ``p_rep(n), p_ins(n), p_del(n)``; a position
uniformly among the ``D(x)`` free (non-keyword) pieces for replace/delete, or among the ``G(x)``
gaps not inside a keyword for insert (``G(x) = n + 1 - sum_k (len_k - 1)``). The proposal x' is
accepted with probability ``min(1, A)``:

* replace i by w:  ``A = pi(x') q(x_i) / (pi(x) q(w))``; both q are the same distribution (at the
  same mask), which is also the reverse move's.
* insert w at gap g:  the reverse is deleting it, ``A = pi(x') p_del(n+1) / D(x') / (pi(x) p_ins(n) / G(x) q(w))``
  with ``D(x') = D(x) + 1``.
* delete piece i:  the reverse is inserting ``x_i`` at gap i of x', whose proposal is the MLM at
  ``x_{\\i}``: ``A = pi(x') p_ins(n-1) / G(x') q(x_i) / (pi(x) p_del(n) / D(x))`` with ``G(x') = G(x) - 1``.

A proposal outside the support (a keyword no longer a whole word, a length out of bounds) is
rejected; it still counts as proposed. Every step costs two encoder passes: one for the proposal,
one batch of ``n'`` masked copies for ``PLL(x')``.

Each sample is ``{"text", "score", "accepted", "proposed", "target_length"}``: the decoded final
sentence, its PLL per piece (nats), the chain's accepted and proposed moves, and its target length
``L``. Chain k is seeded with ``seed + k`` (its length draw too).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F


if TYPE_CHECKING:
    from fnet.modeling import FNetPreTrainedModel
    from fnet.tokenization import FNetTokenizer

logger = logging.getLogger(__name__)

__all__ = ["generate", "pseudo_log_likelihood", "load_generator", "MaskedLMScorer", "LengthPrior",
           "growth_move_probabilities", "default_steps", "FALLBACK_PRIOR"]

DEFAULT_MAX_LENGTH = 32
STEPS_PER_PIECE = 8  # default proposals per piece of the target length
FINAL_TEMPERATURE = 0.2  # default: anneal T from --temperature to this over the steps (the most fluent sentence)
FALLBACK_TARGET_LENGTH = 16  # mean of the Poisson length prior used when no text says how long sentences are
LENGTH_SAMPLE = 5000  # sentences of a text file read (a seeded sample) for its length prior
GROW = (0.2, 0.75, 0.05)  # (replace, insert, delete) at length 0
POLISH = (0.6, 0.2, 0.2)  # ... at the target length and beyond


def growth_move_probabilities(length: int, target: int) -> tuple[float, float, float]:
    """(replace, insert, delete) at a sentence of ``length`` pieces: from ``GROW`` at 0 linearly to
    ``POLISH`` at ``target`` and beyond, so a chain grows to a sentence before it polishes."""
    done = min(length / max(target, 1), 1.0)
    return tuple(g + (p - g) * done for g, p in zip(GROW, POLISH))  # type: ignore[return-value]


def default_steps(target: int) -> int:
    """Proposals per chain when none are given: ``STEPS_PER_PIECE`` per piece of the target length."""
    return STEPS_PER_PIECE * target


@dataclass(frozen=True)
class LengthPrior:
    """How long sentences are: ``weights[n]`` is the (relative) frequency of sentences of n pieces.

    Built from real sentences (:meth:`from_lengths`, :meth:`from_text`, :meth:`from_model_dir`) or
    the fallback :meth:`poisson`. :meth:`bounded` turns it into ``log P(n)`` on the lengths a sample
    may have, and the target length (its median).
    """

    weights: tuple[float, ...]  # index n = length in pieces (index 0: empty sentences, never used)
    source: str  # where the lengths came from, for logs and results

    @classmethod
    def from_lengths(cls, lengths: Iterable[int], source: str) -> "LengthPrior":
        counts: list[float] = []
        for n in lengths:
            n = int(n)
            if n > 0:
                counts.extend([0.0] * (n + 1 - len(counts)))
                counts[n] += 1
        if not counts:
            raise ValueError(f"{source}: no sentences to measure lengths on")
        return cls(tuple(counts), source)

    @classmethod
    def poisson(cls, mean: int = FALLBACK_TARGET_LENGTH, up_to: int = 4 * FALLBACK_TARGET_LENGTH) -> "LengthPrior":
        return cls(tuple(math.exp(n * math.log(mean) - mean - math.lgamma(n + 1)) for n in range(up_to + 1)),
                   f"a Poisson prior with mean {mean} pieces (no text to measure sentence lengths on)")

    @classmethod
    def from_text(cls, files: Sequence[str | os.PathLike], tokenizer: "FNetTokenizer",
                  max_sentences: int = LENGTH_SAMPLE, seed: int = 0) -> "LengthPrior":
        """Lengths of the sentences of text files, split as ``fnet pretrain`` splits them (a seeded
        sample of at most ``max_sentences``)."""
        from fnet.data.pretraining import iter_documents

        sentences = []
        for path in files:
            if not Path(path).is_file():
                raise ValueError(f"--length-from: {path} is not a file")
            sentences += [s for document in iter_documents(path) for s in document]
        if len(sentences) > max_sentences:
            sentences = random.Random(seed).sample(sentences, max_sentences)
        lengths = [len(tokenizer.encode(s, add_special_tokens=False)) for s in sentences]
        return cls.from_lengths(lengths, f"{len(lengths)} sentences of {', '.join(map(str, files))}")

    @classmethod
    def from_model_dir(cls, model_dir: str | os.PathLike, tokenizer: "FNetTokenizer") -> "LengthPrior | None":
        """The model's own pretraining data: the sentences ``fnet pretrain`` tokenised into its cache
        (``run_config.json``'s ``train_files``), else those files read again; None when neither is there."""
        run_config = Path(model_dir) / "run_config.json"
        if not run_config.is_file():
            return None
        config = json.loads(run_config.read_text(encoding="utf-8"))
        files = config.get("train_files") or []
        cache = Path(config["data_cache"]) if config.get("data_cache") else Path(model_dir) / "cache"
        for meta in sorted(cache.glob("*/meta.json")):
            if json.loads(meta.read_text(encoding="utf-8")).get("files") == files:
                import numpy as np

                from fnet.data.pretraining import ShardedCorpus

                lengths = np.diff(ShardedCorpus(meta.parent).sentence_starts)  # (sentences,) pieces each
                return cls.from_lengths(lengths.tolist(), f"the {len(lengths)} pretraining sentences cached in {meta.parent}")
        if files and all(Path(f).is_file() for f in files):
            return cls.from_text(files, tokenizer)
        return None

    def bounded(self, min_length: int, max_length: int) -> list[float]:
        """P(n) for n = 0..max_length, 0 outside [min_length, max_length], summing to 1.

        Smoothed: every allowed length also gets a thousandth of the mass, spread evenly, so a length
        the text never had is unlikely, not impossible.
        """
        allowed = range(min_length, max_length + 1)
        kept = [self.weights[n] if n < len(self.weights) else 0.0 for n in allowed]
        total = sum(kept)
        floor = (total if total > 0 else 1.0) * 1e-3 / len(kept)
        norm = total + floor * len(kept)
        return [0.0] * min_length + [(w + floor) / norm for w in kept]

    def draw(self, min_length: int, max_length: int, generator: torch.Generator) -> int:
        """A length n ~ P(n | min_length <= n <= max_length)."""
        return int(torch.multinomial(torch.tensor(self.bounded(min_length, max_length), dtype=torch.float64), 1,
                                     generator=generator))

    def median(self, min_length: int, max_length: int) -> int:
        """The median length on [min_length, max_length] (results report it)."""
        running = 0.0
        for n, p in enumerate(self.bounded(min_length, max_length)):
            running += p
            if running >= 0.5:
                return n
        return max_length


FALLBACK_PRIOR = LengthPrior.poisson()


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
    steps: int | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    final_temperature: float | None = FINAL_TEMPERATURE,
    min_length: int | None = None,
    max_length: int | None = None,
    length_bonus: float = 0.0,
    move_probabilities: tuple[float, float, float] | None = None,
    length_prior: LengthPrior | None = FALLBACK_PRIOR,
) -> list[dict[str, Any]]:
    """``num_samples`` independent CGMH chains of ``steps`` proposals each (module docstring).

    ``min_length``/``max_length`` bound the sentence in pieces (defaults: keyword pieces + 1, and
    32 or the position table). ``length_prior``: how long sentences are (:class:`LengthPrior`; the
    default is a Poisson prior around ``FALLBACK_TARGET_LENGTH`` pieces; ``fnet generate`` reads the
    model's pretraining data), or None for CGMH's original PLL-sum target. ``steps`` defaults to
    ``STEPS_PER_PIECE`` per piece of the chain's target length; ``temperature`` is annealed to
    ``final_temperature`` (None: no annealing). ``move_probabilities`` (replace, insert, delete) are
    fixed when given, else :func:`growth_move_probabilities`. Returns one
    ``{"text", "score", "accepted", "proposed", "target_length"}`` per chain, ``score`` the PLL per
    piece in nats.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise ValueError(f"--steps must be an int >= 0, got {steps!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"--num-samples must be an int >= 1, got {num_samples!r}")
    if not temperature > 0 or (final_temperature is not None and not final_temperature > 0):
        raise ValueError(f"--temperature must be > 0, got {temperature} (final {final_temperature})")
    if move_probabilities is not None and (len(move_probabilities) != 3 or min(move_probabilities) < 0
                                           or not math.isclose(sum(move_probabilities), 1)):
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
    samples = []
    for k in range(num_samples):
        generator = torch.Generator().manual_seed(seed + k)
        if length_prior is not None:  # this chain's length target, drawn from the prior
            target = _Target(scorer, length_bonus, length_prior.draw(min_length, max_length, generator),
                             move_probabilities, per_piece=True)
            chain_max = target.length
        else:
            target = _Target(scorer, length_bonus, min(max(FALLBACK_TARGET_LENGTH, min_length), max_length),
                             move_probabilities, per_piece=False)
            chain_max = max_length
        chain_steps = default_steps(target.length) if steps is None else steps
        samples.append(_chain(target, start, chain_steps, generator, temperature, final_temperature, min_length,
                              chain_max))
    return samples


@dataclass
class _Target:
    """T * log pi_T(x) up to a constant (module docstring), and the move probabilities at each length."""

    scorer: MaskedLMScorer
    length_bonus: float  # nats per piece
    length: int  # the target length L in pieces
    fixed_moves: tuple[float, float, float] | None  # (replace, insert, delete), or None: by length
    per_piece: bool  # L * PLL / n (with a length prior), or CGMH's PLL sum

    def log_density(self, ids: list[int]) -> float:
        n = len(ids)
        pll = self.scorer.pll(ids)
        return (self.length * pll / n if self.per_piece else pll) + self.length_bonus * n

    def log_moves(self, length: int) -> tuple[float, float, float]:
        """log (p_replace, p_insert, p_delete) at a sentence of ``length`` pieces."""
        moves = self.fixed_moves or growth_move_probabilities(length, self.length)
        return tuple(math.log(p) if p > 0 else float("-inf") for p in moves)  # type: ignore[return-value]


def _chain(target: _Target, start: _Sentence, steps: int, generator: torch.Generator, temperature: float,
           final_temperature: float | None, min_length: int, max_length: int) -> dict[str, Any]:
    scorer = target.scorer
    mask = scorer.tokenizer.mask_token_id
    x = start
    while len(x.ids) < min_length:  # not counted as moves: bring the keywords up to the minimum length
        g = _choice(x.gaps(), generator)
        log_q = scorer.proposal(x.ids[:g] + [mask] + x.ids[g:], g, x.after_keyword(g))
        x = x.insert(g, _sample(log_q, generator))  # word starts only after a keyword: stays valid

    current = target.log_density(x.ids)
    accepted = proposed = 0
    for step in range(steps):
        t = temperature if final_temperature is None else \
            temperature * (final_temperature / temperature) ** (step / max(steps - 1, 1))
        n = len(x.ids)
        log_rep, log_ins, log_del = target.log_moves(n)
        move = int(torch.multinomial(torch.tensor([log_rep, log_ins, log_del], dtype=torch.float64).exp(), 1,
                                     generator=generator))
        proposed += 1
        free, gaps = x.free(), x.gaps()
        if move == 0 and free:  # replace
            i = _choice(free, generator)
            log_q = scorer.proposal(x.ids[:i] + [mask] + x.ids[i + 1:], i, x.after_keyword(i))
            w = _sample(log_q, generator)
            new = x.replace(i, w)
            correction = float(log_q[x.ids[i]] - log_q[w])
        elif move == 1 and n < max_length:  # insert; the reverse deletes at length n + 1
            g = _choice(gaps, generator)
            log_q = scorer.proposal(x.ids[:g] + [mask] + x.ids[g:], g, x.after_keyword(g))
            w = _sample(log_q, generator)
            new = x.insert(g, w)
            correction = (target.log_moves(n + 1)[2] - math.log(len(free) + 1)) - \
                (log_ins - math.log(len(gaps)) + float(log_q[w]))
        elif move == 2 and free and n > min_length:  # delete; the reverse inserts at length n - 1
            i = _choice(free, generator)
            log_q = scorer.proposal(x.ids[:i] + [mask] + x.ids[i + 1:], i, x.after_keyword(i))
            new = x.delete(i)
            correction = (target.log_moves(n - 1)[1] - math.log(len(gaps) - 1) + float(log_q[x.ids[i]])) - \
                (log_del - math.log(len(free)))
        else:  # no such move from here: the proposal leaves the support and is rejected
            continue
        if not _valid(new, scorer.word_start, min_length, max_length) or correction == float("-inf"):
            continue
        candidate = target.log_density(new.ids)
        log_accept = (candidate - current) / t + correction
        if log_accept >= 0 or float(torch.rand((), generator=generator, dtype=torch.float64)) < math.exp(log_accept):
            x, current = new, candidate
            accepted += 1
    pll = scorer.pll(x.ids)
    return {"text": scorer.tokenizer.decode(x.ids), "score": pll / len(x.ids), "accepted": accepted,
            "proposed": proposed, "target_length": target.length}
