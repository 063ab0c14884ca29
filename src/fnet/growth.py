"""Function-preserving growth: a bigger FNet that starts out computing what a smaller one computes.

Legend: b batch, n sequence length, d hidden size, f intermediate size, v vocabulary, L layers.

Every growth maps the old state dict (transformers' key names) to a state dict of a bigger config
and loads it into a fresh model of the same class; nothing in the model code changes. What is exact
(logits equal up to float rounding) and what is not, and why, is in docs/growth.md:

| growth                      | function                 | exact? |
|-----------------------------|--------------------------|--------|
| feed-forward width f -> f'  | :func:`grow_intermediate` | yes: split neurons (Net2WiderNet) |
| positions N -> N'           | :func:`grow_positions`   | yes: new rows are never read by inputs of <= N tokens |
| vocabulary (new spiece)     | :func:`grow_vocabulary`  | yes for the old pieces' logits (ids are renumbered by piece) |
| depth, pre-norm             | :func:`grow_depth_pre_norm` | yes: each new sublayer starts closed (its norm's scale 0, its FFN output 0) |
| depth, post-norm            | :func:`grow_depth`       | no: the residual sits inside the norm; the deviation is measured |
| hidden size d -> d'         | :func:`grow_hidden`      | no: the Fourier transform over d does not commute with copying channels |

:func:`grow` applies any of them in one call and measures the deviation of the result with
:func:`measure_deviation` (max |logit difference| on seeded random inputs).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from fnet.config import FNetConfig

if TYPE_CHECKING:
    from fnet.modeling import FNetPreTrainedModel
    from fnet.tokenization import FNetTokenizer

logger = logging.getLogger(__name__)

__all__ = [
    "GrowthReport", "grow", "grow_intermediate", "grow_positions", "grow_vocabulary", "grow_depth",
    "grow_depth_pre_norm", "grow_hidden", "measure_deviation",
]

State = dict[str, torch.Tensor]


@dataclass
class GrowthReport:
    """What :func:`grow` changed, whether every change is exact by construction, and the measured deviation."""

    changes: list[str] = field(default_factory=list)  # e.g. "intermediate_size 512 -> 1024 (exact)"
    exact: bool = True  # every change preserves the function (up to float rounding)
    deviation: float = 0.0  # max |logit difference| between the old and the new model on probe inputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- plumbing


def _check_larger(flag: str, new: int, old: int) -> None:
    if isinstance(new, bool) or not isinstance(new, int):
        raise TypeError(f"{flag} must be an int, got {new!r}")
    if new < old:
        raise ValueError(f"{flag} {new} is smaller than the model's {old}; growth only enlarges a model, "
                         f"pass {flag} >= {old}")


def _rebuild(model: "FNetPreTrainedModel", state: State, **changes: Any) -> "FNetPreTrainedModel":
    """A fresh model of ``model``'s class with ``changes`` applied to its config, holding ``state``."""
    config = FNetConfig.from_dict({**model.config.to_dict(), **changes})
    param = next(model.parameters())
    new = type(model)(config).to(param.device, param.dtype)
    new.load_state_dict(state, strict=True)
    new.tie_weights()
    return new.train(model.training)


def _state(model: torch.nn.Module) -> State:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _select(tensor: torch.Tensor, axis: int, index: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Rows (axis 0) or columns (axis 1) ``index`` of ``tensor``; ``counts`` divides each picked slice
    by how many times its source is picked, so a sum over the grown axis equals the old sum."""
    out = tensor.index_select(axis, index.to(tensor.device))
    if counts is not None:
        scale = counts[index].to(out.device, out.dtype)
        out = out / (scale if axis == 0 or out.dim() == 1 else scale[None, :])
    return out


def _channel_map(old: int, new: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(new,) source index of every new unit and (old,) how many new units copy each old one.

    The first ``old`` units are the old ones; the extra ones copy a random permutation of them
    (``seed``), cycling when more than ``old`` are added. ``seed=None`` copies in order (tiling).
    """
    if seed is None:
        order = torch.arange(old)
    else:
        order = torch.randperm(old, generator=torch.Generator().manual_seed(seed))
    extra = order.repeat((new - old) // old + 1)[: new - old]
    index = torch.cat([torch.arange(old), extra])
    return index, torch.bincount(index, minlength=old)


def _layer_keys(state: State, layer: int) -> list[str]:
    marker = f"encoder.layer.{layer}."
    return [k for k in state if marker in k]


# ----------------------------------------------------------------------------- exact growths


def grow_intermediate(model: "FNetPreTrainedModel", intermediate_size: int, seed: int = 0) -> "FNetPreTrainedModel":
    """Feed-forward width f -> f' by splitting neurons (Net2WiderNet). Exact.

    Each new neuron copies the incoming weights (``intermediate.dense``, and ``gate`` for gated
    feed-forwards) of a randomly chosen old one (``seed``); the outgoing columns (``output.dense``)
    of a neuron and its copies are divided by their number, so their sum is the old column.
    """
    old = model.config.intermediate_size
    _check_larger("--intermediate-size", intermediate_size, old)
    state = _state(model)
    for layer in range(len(model.base_model.encoder.layer)):
        index, counts = _channel_map(old, intermediate_size, seed + layer)
        for key in _layer_keys(state, layer):
            if ".intermediate.dense." in key or ".intermediate.gate." in key:
                state[key] = _select(state[key], 0, index)  # (f, d) rows, (f,) bias
            elif key.endswith(".output.dense.weight"):
                state[key] = _select(state[key], 1, index, counts)  # (d, f) columns, split
    return _rebuild(model, state, intermediate_size=intermediate_size)


def grow_positions(model: "FNetPreTrainedModel", max_position_embeddings: int) -> "FNetPreTrainedModel":
    """Position table N -> N' rows. Exact for inputs of up to N tokens, which never read the new rows.

    The new rows repeat the trained table (row p copies row p mod N), a better start than noise
    for training on longer inputs (as ``resize_position_embeddings(init="copy")``).
    """
    old = model.config.max_position_embeddings
    _check_larger("--max-position-embeddings", max_position_embeddings, old)
    state = _state(model)
    key = next(k for k in state if k.endswith("embeddings.position_embeddings.weight"))
    state[key] = _select(state[key], 0, torch.arange(max_position_embeddings) % old)
    return _rebuild(model, state, max_position_embeddings=max_position_embeddings)


def grow_vocabulary(
    model: "FNetPreTrainedModel", tokenizer: "FNetTokenizer", new_tokenizer: "FNetTokenizer", seed: int = 0
) -> tuple["FNetPreTrainedModel", torch.Tensor]:
    """The vocabulary of ``new_tokenizer``, which must hold every piece of ``tokenizer``.

    Returns the model and ``id_map`` (old id -> new id). A piece keeps its embedding row and output
    bias under its new id (SentencePiece renumbers pieces, and the appended specials move), so
    ``new_model(id_map[ids])`` computes ``model(ids)``, and its logits at ``id_map`` equal the old
    logits. New pieces get the reference initialisation (``seed``) and output bias 0.
    """
    old_vocab = model.config.vocab_size
    if len(tokenizer) != old_vocab:
        raise ValueError(f"the tokenizer has {len(tokenizer)} ids but the model {old_vocab}; pass the "
                         "model's own tokenizer")
    new_ids = new_tokenizer.get_vocab()
    old_pieces = tokenizer.convert_ids_to_tokens(list(range(old_vocab)))
    missing = [p for p in old_pieces if p not in new_ids]
    if missing:
        raise ValueError(f"--vocab lacks {len(missing)} piece(s) of the model's vocabulary (e.g. {missing[:5]}); "
                         "growth keeps every old piece: train the new vocabulary on text that includes them")
    id_map = torch.tensor([new_ids[p] for p in old_pieces])
    size = len(new_tokenizer)
    generator = torch.Generator().manual_seed(seed)
    state = _state(model)
    for key in state:
        if key.endswith(("word_embeddings.weight", "predictions.decoder.weight", "predictions.bias",
                         "predictions.decoder.bias")):
            old = state[key]
            if key.endswith("bias"):
                grown = torch.zeros(size, dtype=old.dtype)
            else:
                grown = torch.randn(size, old.shape[1], generator=generator) * model.config.initializer_range
            grown = grown.to(old.device, old.dtype)
            grown[id_map.to(old.device)] = old
            state[key] = grown
    if model.config.tie_word_embeddings:  # the decoder is the embedding matrix: one set of fresh rows
        embed = next(k for k in state if k.endswith("word_embeddings.weight"))
        for key in [k for k in state if k.endswith("predictions.decoder.weight")]:
            state[key] = state[embed]
    remap = {name: int(id_map[value]) for name in ("pad_token_id", "bos_token_id", "eos_token_id")
             if (value := getattr(model.config, name)) is not None and value < old_vocab}
    return _rebuild(model, state, vocab_size=size, **remap), id_map


def grow_depth_pre_norm(model: "FNetPreTrainedModel", num_layers: int, gate: bool = True) -> "FNetPreTrainedModel":
    """L -> L' layers of a pre-norm model (``norm_position="pre"``). Exact with ``gate=True``.

    New layer ``L + i`` copies layer ``i mod L`` (its mixer and weights), then both of its residual
    branches are closed: the mixing sublayer's norm gets scale 0 and shift 0, so the mixer sees
    zeros and adds ``Re(F 0) = 0`` (the attention family, whose q/k/v biases make ``attn(0)`` non-zero,
    gets its output dense zeroed instead); the feed-forward's output dense gets weight 0 and bias 0. Each
    branch is ``x + 0`` = identity, and training opens it (the gradients of the norm scale and of
    the output dense are non-zero). ``gate=False`` keeps the copied norm of the mixing sublayer, to
    measure why the closing is needed (docs/growth.md).
    """
    if model.config.norm_position != "pre":
        raise ValueError("grow_depth_pre_norm needs a pre-norm model (norm_position='pre'); use grow_depth")

    def close(new_layer: str, state: State) -> None:
        keys = [k[len(new_layer):] for k in state if k.startswith(new_layer)]
        # the attention family has an output dense after the mixer (q/k/v biases make attn(0) != 0):
        # that dense is the mixing branch's gate; the other mixers are linear maps without bias, so
        # the norm in front of them is
        has_dense = any(r.endswith(".output.dense.weight") and not r.startswith("output.") for r in keys)
        for rest in keys:
            mixing = rest.split(".")[1:3] == ["output", "dense" if has_dense else "LayerNorm"] \
                and not rest.startswith("output.")
            if (gate and mixing) or rest in ("output.dense.weight", "output.dense.bias"):
                state[new_layer + rest] = torch.zeros_like(state[new_layer + rest])

    return _add_layers(model, num_layers, close)


def grow_depth(model: "FNetPreTrainedModel", num_layers: int, init: str = "copy") -> "FNetPreTrainedModel":
    """L -> L' layers. Pre-norm models: exact (:func:`grow_depth_pre_norm`). Post-norm: not exact.

    Post-norm layers compute ``LN2(m + FFN(m))`` with ``m = LN1(x + Re F x)``: the residual is
    inside the norm and the Fourier term has no weight to switch off, so no new layer is an
    identity. New layer ``L + i`` copies layer ``i mod L``; ``init="copy"`` keeps the copy as it is
    (progressive stacking); ``init="zero-ffn"`` zeroes its feed-forward output, makes ``LN1`` the plain
    normalisation and gives ``LN2`` the scale and shift of the layer below, so the new layer outputs
    ``gamma * normalise(x + Re F x) + beta`` where the old stack had ``gamma * z + beta``: only the
    Fourier term differs. Measure either with :func:`measure_deviation` (docs/growth.md).
    """
    if model.config.norm_position == "pre":
        return grow_depth_pre_norm(model, num_layers)
    if init not in ("copy", "zero-ffn"):
        raise ValueError(f"--depth-init must be 'copy' or 'zero-ffn', got {init!r}")
    below = f"encoder.layer.{model.config.num_hidden_layers - 1}.output.LayerNorm."

    def zero_ffn(new_layer: str, state: State) -> None:
        if init == "copy":
            return
        for key in [k for k in state if k.startswith(new_layer)]:
            rest = key[len(new_layer):]
            if rest in ("output.dense.weight", "output.dense.bias"):
                state[key] = torch.zeros_like(state[key])
            elif rest.startswith("output.LayerNorm."):
                state[key] = state[next(k for k in state if k.endswith(below + rest.rsplit(".", 1)[1]))].clone()
            elif rest.split(".")[1:3] == ["output", "LayerNorm"]:
                state[key] = torch.ones_like(state[key]) if key.endswith("weight") else torch.zeros_like(state[key])

    return _add_layers(model, num_layers, zero_ffn)


def _add_layers(model: "FNetPreTrainedModel", num_layers: int, adjust: Callable[[str, State], None]):
    """Append layers ``L..L'-1`` copying layers ``i mod L``; ``adjust(prefix, state)`` edits each new one."""
    config = model.config
    old = config.num_hidden_layers
    _check_larger("--num-layers", num_layers, old)
    if config.share_layers:
        raise ValueError("a model with share_layers=True applies one layer many times, so it cannot grow new "
                         "layers; set share_layers=False in its config.json first")
    state = _state(model)
    prefix = next(k for k in state if ".encoder.layer.0." in f".{k}").split("encoder.layer.0.")[0]
    mixers = config.layer_mixers()
    for new in range(old, num_layers):
        source = new % old
        src, dst = f"{prefix}encoder.layer.{source}.", f"{prefix}encoder.layer.{new}."
        for key in [k for k in state if k.startswith(src)]:
            state[dst + key[len(src):]] = state[key].clone()
        mixers.append(mixers[source])
        adjust(dst, state)
    # hybrids name their attention layers explicitly, so a layout does not move them in the deeper stack
    attention = [i for i, m in enumerate(mixers) if m == "attention" and config.token_mixer != "attention"]
    hybrid = {"hybrid_layout": None, "attention_layers": attention} if attention else {}
    return _rebuild(model, state, num_hidden_layers=num_layers, **hybrid)


# ----------------------------------------------------------------------------- hidden size (inexact)


# where the hidden (D) and embedding-table (E) widths sit in each state-dict key, by key suffix:
# "out" axes are copied channel by channel, "in" axes are copied and divided by the copy count (so a
# Linear reading copied channels computes the old sum); "head" (the MLM transform's norm, read by the
# tied decoder) is copied and divided as well
_HIDDEN_AXES: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("embeddings.word_embeddings.weight", (None, "E")),
    ("embeddings.position_embeddings.weight", (None, "E")),
    ("embeddings.token_type_embeddings.weight", (None, "E")),
    ("embeddings.LayerNorm.weight", ("E",)),
    ("embeddings.LayerNorm.bias", ("E",)),
    ("embeddings.projection.weight", ("D", "E_in")),
    ("embeddings.projection.bias", ("D",)),
    ("intermediate.dense.weight", (None, "D_in")),
    ("intermediate.gate.weight", (None, "D_in")),
    ("intermediate.dense.bias", (None,)),
    ("intermediate.gate.bias", (None,)),
    ("output.dense.weight", ("D", None)),
    ("output.dense.bias", ("D",)),
    ("transform.LayerNorm.weight", ("E_head",)),
    ("transform.LayerNorm.bias", ("E_head",)),
    ("LayerNorm.weight", ("D",)),  # sublayer norms (after the more specific LayerNorm keys above)
    ("LayerNorm.bias", ("D",)),
    ("final_norm.weight", ("D",)),
    ("final_norm.bias", ("D",)),
    ("pooler.dense.weight", ("D", "D_in")),
    ("pooler.dense.bias", ("D",)),
    ("transform.dense.weight", ("E", "D_in")),
    ("transform.dense.bias", ("E",)),
    ("predictions.decoder.weight", (None, "E")),
    ("predictions.decoder.bias", (None,)),
    ("predictions.bias", (None,)),
    ("seq_relationship.weight", (None, "D_in")),
    ("seq_relationship.bias", (None,)),
    ("classifier.weight", (None, "D_in")),
    ("classifier.bias", (None,)),
    ("qa_outputs.weight", (None, "D_in")),
    ("qa_outputs.bias", (None,)),
)


def grow_hidden(model: "FNetPreTrainedModel", hidden_size: int) -> "FNetPreTrainedModel":
    """Hidden size d -> d' by copying channels (channel j' copies j' mod d). NOT exact: measure it.

    Every Linear, norm and table is grown so that, were the mixing channel-wise, the grown model
    would carry each old channel in its copies and compute the same logits (exactly so when d'
    is a multiple of d, since a norm over evenly copied channels has the old mean and variance).
    The Fourier transform over the hidden dimension breaks this: the DFT of d-periodic channels is
    the old spectrum on every (d'/d)-th frequency and zero elsewhere, not the copied spectrum
    (docs/growth.md). Token mixers with weights over d are not supported.
    """
    config = model.config
    old = config.hidden_size
    _check_larger("--hidden-size", hidden_size, old)
    if set(config.layer_mixers()) - {"fourier", "identity"}:
        raise ValueError(f"--hidden-size growth supports Fourier (and identity) mixers only; this model uses "
                         f"{sorted(set(config.layer_mixers()))}")
    index, counts = _channel_map(old, hidden_size, None)
    grows_tables = config.embedding_size is None  # tables are d wide unless factorised
    state = _state(model)
    for key, tensor in state.items():
        axes = next((axes for suffix, axes in _HIDDEN_AXES if key.endswith(suffix)), None)
        if axes is None:
            raise ValueError(f"growing the hidden size does not know the key {key!r}")
        for axis, kind in enumerate(axes):
            if kind in ("D", "E") and (kind == "D" or grows_tables):
                tensor = _select(tensor, axis, index)
            elif kind in ("D_in", "E_in", "E_head") and (kind == "D_in" or grows_tables):
                tensor = _select(tensor, axis, index, counts)
        state[key] = tensor
    return _rebuild(model, state, hidden_size=hidden_size)


# ----------------------------------------------------------------------------- measuring, all at once


@torch.no_grad()
def measure_deviation(old: torch.nn.Module, new: torch.nn.Module, seed: int = 0, batch: int = 4,
                      length: int = 32, id_map: torch.Tensor | None = None) -> float:
    """Max |difference| of every output the two models share, on seeded random ids (b, n).

    Outputs wider in ``new`` (a grown hidden size) are compared on their first old-width channels;
    with ``id_map`` (vocabulary growth) the new model reads ``id_map[ids]`` and its vocabulary
    logits are compared at ``id_map``. Both models run in eval mode (no dropout).
    """
    generator = torch.Generator().manual_seed(seed)
    length = min(length, old.config.max_position_embeddings)
    device = next(old.parameters()).device
    ids = torch.randint(0, old.config.vocab_size, (batch, length), generator=generator).to(device)
    modes = old.training, new.training
    old.eval(), new.eval()
    try:
        a = old(input_ids=ids, return_dict=True)
        b = new(input_ids=ids if id_map is None else id_map.to(device)[ids], return_dict=True)
    finally:
        old.train(modes[0]), new.train(modes[1])
    worst = 0.0
    for name in a.keys():
        x, y = getattr(a, name), getattr(b, name, None)
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            continue
        if id_map is not None and x.shape[-1] == old.config.vocab_size and y.shape[-1] == new.config.vocab_size:
            y = y[..., id_map.to(device)]
        elif y.shape[-1] > x.shape[-1] and y.shape[:-1] == x.shape[:-1]:
            y = y[..., : x.shape[-1]]
        if x.shape == y.shape:
            worst = max(worst, float((x.float() - y.float()).abs().max()))
    return worst


def grow(
    model: "FNetPreTrainedModel",
    *,
    intermediate_size: int | None = None,
    num_layers: int | None = None,
    hidden_size: int | None = None,
    max_position_embeddings: int | None = None,
    tokenizer: "FNetTokenizer | None" = None,
    new_tokenizer: "FNetTokenizer | None" = None,
    depth_init: str = "copy",
    seed: int = 0,
) -> tuple["FNetPreTrainedModel", GrowthReport]:
    """Apply the requested growths (None = unchanged) and measure the result against ``model``.

    Returns the grown model and a :class:`GrowthReport`. ``new_tokenizer`` (with the model's own
    ``tokenizer``) grows the vocabulary; the returned report's deviation then compares the models
    through the id map.
    """
    config = model.config
    report = GrowthReport()
    grown = model
    id_map = None

    def note(what: str, old: int, new: int, exact: bool) -> None:
        report.changes.append(f"{what} {old} -> {new} ({'exact' if exact else 'not exact'})")
        report.exact &= exact

    if new_tokenizer is not None:
        if tokenizer is None:
            raise ValueError("growing the vocabulary needs the model's own tokenizer too")
        grown, id_map = grow_vocabulary(grown, tokenizer, new_tokenizer, seed)
        note("vocab_size", config.vocab_size, grown.config.vocab_size, True)
    if max_position_embeddings is not None and max_position_embeddings != config.max_position_embeddings:
        grown = grow_positions(grown, max_position_embeddings)
        note("max_position_embeddings", config.max_position_embeddings, max_position_embeddings, True)
    if intermediate_size is not None and intermediate_size != config.intermediate_size:
        grown = grow_intermediate(grown, intermediate_size, seed)
        note("intermediate_size", config.intermediate_size, intermediate_size, True)
    if num_layers is not None and num_layers != config.num_hidden_layers:
        grown = grow_depth(grown, num_layers, depth_init)
        note("num_hidden_layers", config.num_hidden_layers, num_layers, config.norm_position == "pre")
    if hidden_size is not None and hidden_size != config.hidden_size:
        grown = grow_hidden(grown, hidden_size)
        note("hidden_size", config.hidden_size, hidden_size, False)
    if grown is model:
        grown = copy.deepcopy(model)
    report.deviation = measure_deviation(model, grown, seed=seed, id_map=id_map)
    logger.info("grew %s: %s; max |logit difference| %.3g", type(model).__name__, "; ".join(report.changes),
                report.deviation)
    return grown, report
