"""The FNet model family, in the order data flows through it.

Legend: b batch, n sequence length, d hidden size, f intermediate size, v vocabulary, c choices.

embeddings -> [mixing sublayer -> feed-forward] x L -> pooler -> heads -> task models.

Names, arguments, outputs and state-dict keys follow ``transformers``' FNet, so checkpoints move both
ways. Differences, all opt-in or fixes: an ``attention_mask`` that makes each example mix over its
own tokens only, a Fourier transform that runs in float32 under any precision and at any length,
and clear errors for bad inputs.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils._pytree as _pytree
from torch import nn
from torch.utils.checkpoint import checkpoint

from fnet.config import FNetConfig
from fnet.fourier import is_tracing as _is_exporting  # data-dependent checks are skipped while tracing/exporting
from fnet.mixers import FNetBasicFourierTransform, TokenMixer, build_mixer  # noqa: F401 (FNetBasicFourierTransform: public name, re-exported)

# ----------------------------------------------------------------------------- outputs


class ModelOutput(OrderedDict):
    """Base of the output dataclasses, with transformers' ``ModelOutput`` semantics.

    Fields are attributes; the fields that are not None also form a dict in field order, so ``keys()``,
    ``items()``, ``values()``, ``"logits" in out``, ``out["logits"]`` and iteration (over names) work as on
    a dict, while ``out[0]`` / ``out[:2]`` / ``to_tuple()`` index the non-None values. Every subclass is
    registered as a pytree node, so ``torch.export`` and DDP's static graph can flatten it.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _pytree.register_pytree_node(
            cls, _flatten_output, functools.partial(_unflatten_output, cls),
            serialized_type_name=f"{cls.__module__}.{cls.__qualname__}",
            flatten_with_keys_fn=_pytree._dict_flatten_with_keys,
        )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = self.__dict__.get(f.name)
            if value is not None:
                super().__setitem__(f.name, value)

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return super().__getitem__(key)  # KeyError for a field that is None, as in transformers
        return self.to_tuple()[key]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dataclass_fields__ and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __reduce__(self):
        rebuild, _, *rest = super().__reduce__()
        return (rebuild, tuple(getattr(self, f.name) for f in fields(self)), *rest)

    def _immutable(self, *args: Any, **kwargs: Any):
        raise TypeError(f"{type(self).__name__} keeps its fields; set an attribute instead")

    __delitem__ = pop = popitem = update = setdefault = clear = _immutable

    def to_tuple(self) -> tuple:
        """The values that are not None, in field order."""
        return tuple(self.values())


def _flatten_output(output: ModelOutput) -> tuple[list[Any], list[str]]:
    return list(output.values()), list(output.keys())


def _unflatten_output(cls: type, values: Any, names: list[str]) -> ModelOutput:
    return cls(**dict(zip(names, values)))


@dataclass
class FNetModelOutput(ModelOutput):
    last_hidden_state: torch.Tensor  # (b, n, d)
    pooler_output: torch.Tensor | None = None  # (b, d)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # L+1 x (b, n, d): embeddings, then each layer


@dataclass
class FNetForPreTrainingOutput(ModelOutput):
    loss: torch.Tensor | None = None  # MLM + NSP cross-entropy
    prediction_logits: torch.Tensor | None = None  # (b, n, v), or (masked, v) with only_masked_logits
    seq_relationship_logits: torch.Tensor | None = None  # (b, 2)
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class MaskedLMOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (b, n, v)
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class NextSentencePredictorOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (b, 2): 0 = B follows A, 1 = B is random
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (b, num_labels)
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (b, c)
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (b, n, num_labels)
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None  # (b, n)
    end_logits: torch.Tensor | None = None  # (b, n)
    hidden_states: tuple[torch.Tensor, ...] | None = None


# ----------------------------------------------------------------------------- activations


def get_activation(name: str):
    """The activation function for ``config.hidden_act``; every GELU variant is one fused kernel."""
    if name in ("gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
        # the reference's gelu_new is the tanh approximation written as six elementwise ops;
        # F.gelu(approximate="tanh") is the same function in one kernel
        return lambda x: F.gelu(x, approximate="tanh")
    table = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu, "swish": F.silu, "tanh": torch.tanh}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; use one of gelu_new, gelu_fast, gelu_pytorch_tanh, {', '.join(table)}")
    return table[name]


# ----------------------------------------------------------------------------- embeddings


class FNetEmbeddings(nn.Module):
    """word + position + token-type embeddings -> LayerNorm -> projection -> dropout. ids (b, n) -> (b, n, d).

    Tables are ``config.embedding_width`` (e) wide; the projection maps e -> d (ALBERT's factorised
    embeddings when e < d). BERT has no projection (``embedding_projection=False``).
    """

    def __init__(self, config: FNetConfig):
        super().__init__()
        e = config.embedding_width
        self.word_embeddings = nn.Embedding(config.vocab_size, e, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, e)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, e)
        self.LayerNorm = nn.LayerNorm(e, eps=config.layer_norm_eps)
        self.projection = nn.Linear(e, config.hidden_size) if config.embedding_projection else None
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (b, n, d)
        b, n = inputs_embeds.shape[:2]
        device = inputs_embeds.device
        if position_ids is None:
            position_ids = torch.arange(n, device=device)[None, :]  # (1, n)
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        if token_type_ids is None:
            embeddings = embeddings + self.token_type_embeddings.weight[0]  # all-zero token types
        else:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        embeddings = self.LayerNorm(embeddings)  # (b, n, e)
        if self.projection is not None:
            embeddings = self.projection(embeddings)  # (b, n, e) -> (b, n, d)
        return self.dropout(embeddings)


# ----------------------------------------------------------------------------- mixing sublayer


def make_norm(config: FNetConfig, width: int | None = None) -> nn.Module:
    """The sublayer norm of ``config.norm_type`` (LayerNorm or RMSNorm) over the last dim."""
    width = width or config.hidden_size
    if config.norm_type == "rmsnorm":
        return nn.RMSNorm(width, eps=config.layer_norm_eps)
    return nn.LayerNorm(width, eps=config.layer_norm_eps)


class FNetBasicOutput(nn.Module):
    """LayerNorm(residual + mixed). FNet's mixing sublayer has no dense layer and no dropout; the
    attention family adds BERT's ``dense`` + dropout (``with_dense``). The norm keeps the key name
    ``LayerNorm`` even when it is an RMSNorm."""

    def __init__(self, config: FNetConfig, with_dense: bool = False):
        super().__init__()
        if with_dense:
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.with_dense = with_dense
        self.LayerNorm = make_norm(config)

    def project(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The mixed states before the residual: dense + dropout for attention, as-is otherwise."""
        return self.dropout(self.dense(hidden_states)) if self.with_dense else hidden_states

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(input_tensor + self.project(hidden_states))


class FNetMixingSublayer(nn.Module):
    """A token mixer (``self``: any of fnet.mixers, built by ``build_mixer``) in its residual
    sublayer (``output``). (b, n, d), padding mask (b, n) | None -> (b, n, d).

    post-norm (reference): norm(x + mix(x)), or norm(x + dropout(dense(mix(x)))) for the attention
    family (BERT's output projection); pre-norm: x + project(mix(norm(x))). The layer holds it under
    the mixer's ``sublayer_name``: ``fourier`` (FNet keys), ``attention`` (BERT keys) or ``mixing``.
    """

    def __init__(self, config: FNetConfig, mixer: str = "fourier", layer_index: int = 0):
        super().__init__()
        self.self: TokenMixer = build_mixer(mixer, config, layer_index)
        self.output = FNetBasicOutput(config, with_dense=self.self.has_output_dense)
        self.pre_norm = config.norm_position == "pre"
        # LayerScale (Touvron et al., 2021): mix(x) * gain, a learned (d,) gain; None in the reference
        self.layer_scale = None
        if config.mixing_layer_scale is not None:
            self.layer_scale = nn.Parameter(torch.full((config.hidden_size,), float(config.mixing_layer_scale)))

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pre_norm:
            return hidden_states + self._mixed(self.output.LayerNorm(hidden_states), padding_mask)
        if self.output.with_dense or self.layer_scale is not None:
            return self.output.LayerNorm(hidden_states + self._mixed(hidden_states, padding_mask))
        # x + mix(x) in the mixer's own residual form (the Fourier mixer's is one fused pass)
        return self.output.LayerNorm(self.self.residual(hidden_states, padding_mask))

    def _mixed(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """The sublayer's branch: project(mix(x)) [* layer_scale]. (b, n, d) -> (b, n, d)."""
        mixed = self.output.project(self.self(hidden_states, padding_mask))
        return mixed if self.layer_scale is None else mixed * self.layer_scale.to(mixed.dtype)


class FNetFourierTransform(FNetMixingSublayer):
    """transformers' name for the reference mixing sublayer: Fourier transform, residual add,
    LayerNorm (key prefix ``fourier``); the same module as ``FNetMixingSublayer(config, "fourier")``."""

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__(config, "fourier", layer_index)


# ----------------------------------------------------------------------------- feed-forward


# gated feed-forwards (Shazeer, 2020): act(gate(x)) * dense(x); "standard" uses config.hidden_act
_GATE_ACTIVATIONS = {"glu": torch.sigmoid, "geglu": F.gelu, "swiglu": F.silu}


class FNetIntermediate(nn.Module):
    """dense d -> f, activation. (b, n, d) -> (b, n, f). Gated variants add ``gate`` (d -> f)."""

    def __init__(self, config: FNetConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        if config.feed_forward == "standard":
            self.intermediate_act_fn = get_activation(config.hidden_act)
            self.gate = None
        else:
            self.intermediate_act_fn = _GATE_ACTIVATIONS[config.feed_forward]
            self.gate = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            return self.intermediate_act_fn(self.gate(hidden_states)) * self.dense(hidden_states)
        return self.intermediate_act_fn(self.dense(hidden_states))


class FNetOutput(nn.Module):
    """dense f -> d, dropout, LayerNorm(residual + out). (b, n, f), (b, n, d) -> (b, n, d)."""

    def __init__(self, config: FNetConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = make_norm(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def project(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden_states))  # (b, n, f) -> (b, n, d)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(input_tensor + self.project(hidden_states))


# ----------------------------------------------------------------------------- layer and encoder


class FNetLayer(nn.Module):
    """One block: the mixing sublayer, then the feed-forward sublayer (post-norm as the reference,
    or pre-norm). The mixing sublayer sits under its mixer's name: ``self.fourier`` by default,
    ``self.attention`` for the attention family, ``self.mixing`` for linear/random/identity."""

    def __init__(self, config: FNetConfig, layer_index: int = 0):
        super().__init__()
        sublayer = FNetMixingSublayer(config, config.layer_mixers()[layer_index], layer_index)
        self.mixing_name = sublayer.self.sublayer_name
        self.add_module(self.mixing_name, sublayer)
        self.intermediate = FNetIntermediate(config)
        self.output = FNetOutput(config)
        self.pre_norm = config.norm_position == "pre"

    @property
    def mixing_sublayer(self) -> FNetMixingSublayer:
        return getattr(self, self.mixing_name)

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.feed_forward(self.mixing_sublayer(hidden_states, padding_mask))

    def feed_forward(self, mixed: torch.Tensor) -> torch.Tensor:
        """The feed-forward sublayer alone, per token: (..., d) -> (..., d) (``fnet.unpadded`` runs it packed)."""
        if self.pre_norm:
            return mixed + self.output.project(self.intermediate(self.output.LayerNorm(mixed)))
        return self.output(self.intermediate(mixed), mixed)


class FNetEncoder(nn.Module):
    """A stack of ``num_hidden_layers`` FNetLayers.

    ``share_layers``: one layer (``layer.0``) applied ``num_hidden_layers`` times (ALBERT).
    Pre-norm stacks end with ``final_norm``, since their residual stream is never normalised.
    """

    def __init__(self, config: FNetConfig):
        super().__init__()
        built = 1 if config.share_layers else config.num_hidden_layers
        self.layer = nn.ModuleList([FNetLayer(config, i) for i in range(built)])
        self.depth = config.num_hidden_layers
        self.final_norm = make_norm(config) if config.norm_position == "pre" else None
        # activation checkpointing (transformers' attribute names; set by model.activation_checkpointing_enable)
        self.gradient_checkpointing = False
        self._gradient_checkpointing_func = checkpoint
        self.checkpoint_every = 1  # checkpoint layers 0, k, 2k, ... (transformers' every_n_layers)

    def forward(
        self,
        hidden_states: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        all_hidden = (hidden_states,) if output_hidden_states else None
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for index in range(self.depth):
            layer = self.layer[index % len(self.layer)]
            if recompute and index % self.checkpoint_every == 0:
                # keep only the layer's input; its activations are recomputed in the backward pass
                hidden_states = self._gradient_checkpointing_func(layer.__call__, hidden_states, padding_mask)
            else:
                hidden_states = layer(hidden_states, padding_mask)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
        if self.final_norm is not None:  # the last hidden state is reported after it (as GPT-2's ln_f)
            hidden_states = self.final_norm(hidden_states)
            if output_hidden_states:
                all_hidden = all_hidden[:-1] + (hidden_states,)
        return hidden_states, all_hidden


class FNetPooler(nn.Module):
    """dense + tanh on the first ([CLS]) position. (b, n, d) -> (b, d)."""

    def __init__(self, config: FNetConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


# ----------------------------------------------------------------------------- heads


class FNetPredictionHeadTransform(nn.Module):
    """dense d -> d, activation, LayerNorm: the MLM head's first stage."""

    def __init__(self, config: FNetConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_width)  # d -> e (= d unless factorised)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.embedding_width, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class FNetLMPredictionHead(nn.Module):
    """transform, then the decoder d -> v whose weight is tied to the word embeddings. (..., d) -> (..., v)."""

    def __init__(self, config: FNetConfig):
        super().__init__()
        self.transform = FNetPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.embedding_width, config.vocab_size)  # tied: (v, e) word embeddings
        self.bias = self.decoder.bias  # one parameter under two names, as in the reference checkpoints

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden_states))


class FNetOnlyMLMHead(nn.Module):
    def __init__(self, config: FNetConfig):
        super().__init__()
        self.predictions = FNetLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)


class FNetOnlyNSPHead(nn.Module):
    def __init__(self, config: FNetConfig):
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.seq_relationship(pooled_output)


class FNetPreTrainingHeads(nn.Module):
    """MLM head on every (or every masked) position + NSP head on the pooled output."""

    def __init__(self, config: FNetConfig):
        super().__init__()
        self.predictions = FNetLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output: torch.Tensor, pooled_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)


# ----------------------------------------------------------------------------- base class


def _rows_at_mean(weight: torch.Tensor, added: int) -> torch.Tensor:
    """(added, e) new embedding rows at the mean of ``weight``'s (v, e) rows, as transformers' ``mean_resizing``:
    drawn from N(mean, 1e-9 * covariance) when that covariance is positive definite (new rows then differ from
    the mean and each other by ~3e-5 of the rows' spread), else the mean itself."""
    rows = weight.detach().float()
    mean = rows.mean(0)  # (e,)
    centered = rows - mean
    covariance = 1e-9 * (centered.T @ centered) / rows.shape[0]  # (e, e)
    if torch.distributions.constraints.positive_definite.check(covariance).all():
        normal = torch.distributions.MultivariateNormal(mean, covariance_matrix=covariance)
        return normal.sample((added,)).to(weight.dtype)
    return mean.expand(added, -1).to(weight.dtype)


class FNetPreTrainedModel(nn.Module):
    """Initialisation, checkpoint io, embedding resizing and input validation shared by all models."""

    config_class = FNetConfig
    base_model_prefix = "fnet"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True

    def __init__(self, config: FNetConfig):
        super().__init__()
        if not isinstance(config, FNetConfig):
            raise TypeError(f"{type(self).__name__} needs an FNetConfig, got {type(config).__name__}")
        self.config = config
        self.name_or_path: str | None = None  # the folder or Hub id from_pretrained loaded (transformers' name)

    # -- initialisation
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.RMSNorm):
            nn.init.ones_(module.weight)

    def post_init(self) -> None:
        self.apply(self._init_weights)
        self.tie_weights()
        if self.config.gradient_checkpointing:  # transformers' config flag: consumed here, so it is not saved
            self.activation_checkpointing_enable()
            self.config.gradient_checkpointing = False

    def tie_weights(self) -> None:
        out = self.get_output_embeddings()
        if out is not None and self.config.tie_word_embeddings:
            out.weight = self.get_input_embeddings().weight

    # -- embeddings
    @property
    def base_model(self) -> "FNetModel":
        return getattr(self, self.base_model_prefix, self)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.base_model.embeddings.word_embeddings = value
        self.tie_weights()

    def get_output_embeddings(self) -> nn.Linear | None:
        cls = getattr(self, "cls", None)
        predictions = getattr(cls, "predictions", None)
        return predictions.decoder if predictions is not None else None

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True,
    ) -> nn.Embedding:
        """Grow or shrink the vocabulary to ``new_num_tokens`` rows (rounded up to ``pad_to_multiple_of``;
        None keeps the size) and return the word embeddings, as transformers. Old rows are kept. New rows
        start at the old rows' mean (``mean_resizing``, transformers' default: new tokens then barely move
        the MLM's predictions), or from the reference init; new MLM-decoder biases at the old biases' mean."""
        old = self.get_input_embeddings()
        if pad_to_multiple_of is not None:
            if isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int) \
                    or pad_to_multiple_of <= 0:
                raise ValueError(f"pad_to_multiple_of must be a positive int, got {pad_to_multiple_of!r}")
            wanted = old.num_embeddings if new_num_tokens is None else new_num_tokens
            new_num_tokens = -(-wanted // pad_to_multiple_of) * pad_to_multiple_of
        if new_num_tokens is None:
            return old
        if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, int) or new_num_tokens <= 0:
            raise ValueError(f"new_num_tokens must be a positive int, got {new_num_tokens!r}")
        keep, added = min(old.num_embeddings, new_num_tokens), new_num_tokens - old.num_embeddings
        pad = self.config.pad_token_id if (self.config.pad_token_id or 0) < new_num_tokens else None
        new = nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=pad).to(old.weight.device, old.weight.dtype)
        self._init_weights(new)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
            if added > 0 and mean_resizing:
                new.weight[keep:] = _rows_at_mean(old.weight, added)
        new.requires_grad_(old.weight.requires_grad)
        self.base_model.embeddings.word_embeddings = new
        decoder = self.get_output_embeddings()
        if decoder is not None:
            new_decoder = nn.Linear(old.embedding_dim, new_num_tokens).to(decoder.weight.device, decoder.weight.dtype)
            self._init_weights(new_decoder)  # bias 0
            with torch.no_grad():
                new_decoder.bias[:keep] = decoder.bias[:keep]
                if added > 0 and mean_resizing:
                    new_decoder.bias[keep:] = decoder.bias.float().mean().to(decoder.bias.dtype)
                if not self.config.tie_word_embeddings:
                    new_decoder.weight[:keep] = decoder.weight[:keep]
                    if added > 0 and mean_resizing:
                        new_decoder.weight[keep:] = _rows_at_mean(decoder.weight, added)
            new_decoder.requires_grad_(decoder.weight.requires_grad)
            self.cls.predictions.decoder = new_decoder
            self.cls.predictions.bias = new_decoder.bias
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return new

    def resize_position_embeddings(self, new_max_positions: int, init: str = "copy") -> nn.Embedding:
        """Extend (or cut) the position table so the model reads longer inputs.

        ``init="copy"`` fills new rows by repeating the trained table (row p gets row p mod old_max),
        which keeps a trained model's local position pattern and is a good start for fine-tuning on
        longer inputs; ``init="random"`` uses the reference initialisation. The Fourier mixing itself
        has no length limit, so this table is the only thing to extend.
        """
        if init not in ("copy", "random"):
            raise ValueError(f"init must be 'copy' or 'random', got {init!r}")
        if not isinstance(new_max_positions, int) or new_max_positions <= 0:
            raise ValueError(f"new_max_positions must be a positive int, got {new_max_positions!r}")
        emb = self.base_model.embeddings
        old = emb.position_embeddings
        new = nn.Embedding(new_max_positions, old.embedding_dim).to(old.weight.device, old.weight.dtype)
        self._init_weights(new)
        with torch.no_grad():
            keep = min(old.num_embeddings, new_max_positions)
            new.weight[:keep] = old.weight[:keep]
            if init == "copy" and new_max_positions > old.num_embeddings:
                rows = torch.arange(old.num_embeddings, new_max_positions, device=old.weight.device)
                new.weight[old.num_embeddings :] = old.weight[rows % old.num_embeddings]
        emb.position_embeddings = new
        self.config.max_position_embeddings = new_max_positions
        return new

    # -- training helpers, under transformers' names (the Trainer and PEFT call them)
    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict[str, Any] | None = None, every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """Recompute each encoder layer's activations in the backward pass instead of keeping them: training
        memory drops to about each layer's input, for about one more forward pass; gradients are unchanged.

        ``activation_checkpointing_kwargs`` go to ``torch.utils.checkpoint.checkpoint`` (default
        ``use_reentrant=False``); ``every_n_layers`` checkpoints layers 0, n, 2n, ...; ``offload`` keeps the
        saved layer inputs in (pinned) CPU memory. Runs only in training mode with autograd on.
        """
        if isinstance(every_n_layers, bool) or not isinstance(every_n_layers, int) or every_n_layers <= 0:
            raise ValueError(f"every_n_layers must be a positive int, got {every_n_layers!r}")
        kwargs = dict(activation_checkpointing_kwargs) if activation_checkpointing_kwargs is not None \
            else {"use_reentrant": False}
        run = functools.partial(checkpoint, **kwargs)
        if offload:
            def run(function, *args, _run=run):
                with torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available()):
                    return _run(function, *args)
        for module in self.modules():
            if isinstance(module, FNetEncoder):
                module.gradient_checkpointing, module._gradient_checkpointing_func = True, run
                module.checkpoint_every = every_n_layers
        # as transformers: with use_reentrant=True, a recomputed layer passes gradients to its weights only when
        # its input requires grad, which is not so when the embeddings are frozen (PEFT)
        if getattr(self, "_require_grads_hook", None) is None:
            self.enable_input_require_grads()
            self._checkpointing_hook = True

    def activation_checkpointing_disable(self) -> None:
        """Undo :meth:`activation_checkpointing_enable`."""
        for module in self.modules():
            if isinstance(module, FNetEncoder):
                module.gradient_checkpointing = False
        if getattr(self, "_checkpointing_hook", False):
            self.disable_input_require_grads()
            self._checkpointing_hook = False

    @property
    def is_activation_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules() if isinstance(m, FNetEncoder))

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None,
                                      **kwargs: Any) -> None:
        """transformers' older name of :meth:`activation_checkpointing_enable` (PEFT calls it)."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def gradient_checkpointing_disable(self) -> None:
        """transformers' older name of :meth:`activation_checkpointing_disable`."""
        self.activation_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.is_activation_checkpointing

    def enable_input_require_grads(self) -> None:
        """Make the word embeddings' output require grad, so gradients reach trainable layers above frozen
        embeddings (adapters, checkpointed layers). PEFT calls this."""
        if getattr(self, "_require_grads_hook", None) is None:
            self._require_grads_hook = self.get_input_embeddings().register_forward_hook(
                lambda module, inputs, output: output.requires_grad_(True))

    def disable_input_require_grads(self) -> None:
        """Undo :meth:`enable_input_require_grads`."""
        hook = getattr(self, "_require_grads_hook", None)
        if hook is not None:
            hook.remove()
            self._require_grads_hook = None

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameters, each shared tensor once; ``only_trainable``, ``exclude_embeddings`` (the ``nn.Embedding``
        tables) as transformers (its Trainer counts FLOPs with them)."""
        embeddings = {id(m.weight) for m in self.modules() if exclude_embeddings and isinstance(m, nn.Embedding)}
        return sum(p.numel() for p in self.parameters()
                   if (p.requires_grad or not only_trainable) and id(p) not in embeddings)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # -- checkpoints
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        state_dict: dict[str, torch.Tensor] | None = None,
        max_shard_size: int | str = "50GB",
        safe_serialization: bool = True,
        is_main_process: bool = True,
    ) -> None:
        """Write ``config.json`` and the weights (atomically), loadable by transformers too:
        ``model.safetensors``, or shards plus ``model.safetensors.index.json`` above ``max_shard_size``
        (``"5GB"``, ``"500MiB"`` or bytes); ``safe_serialization=False`` writes ``pytorch_model.bin``;
        ``state_dict`` is saved instead of the model's own; only ``is_main_process`` writes."""
        from fnet.checkpoint import save_model

        save_model(self, save_directory, state_dict=state_dict, max_shard_size=max_shard_size,
                   safe_serialization=safe_serialization, is_main_process=is_main_process)

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str | os.PathLike | None,
        *,
        config: FNetConfig | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
        output_loading_info: bool = False,
        ignore_mismatched_sizes: bool = False,
        strict: bool = False,
        dtype: torch.dtype | str | None = None,
        torch_dtype: torch.dtype | str | None = None,
        subfolder: str = "",
        device_map: str | int | torch.device | dict[str, Any] | None = None,
        low_cpu_mem_usage: bool | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        token: str | bool | None = None,
        **config_overrides: Any,
    ):
        """Load from a folder written by fnet or transformers (``subfolder``: a folder inside it), a Hugging
        Face Hub id (``owner/name``; ``revision``, ``cache_dir``, ``local_files_only``, ``token`` as in
        transformers; ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE`` are honoured), ``None`` with ``config`` and
        ``state_dict``, or build a preset with random init. ``config_overrides`` replace config fields
        (``output_hidden_states=True``, ``num_labels=3``, ...).

        As in transformers: ``output_loading_info=True`` also returns the dict of ``missing_keys``,
        ``unexpected_keys``, ``mismatched_keys`` and ``error_msgs``; keys the model lacks are reported, not
        refused; a head of another shape raises RuntimeError unless ``ignore_mismatched_sizes=True``;
        ``dtype`` (alias ``torch_dtype``) is a torch.dtype, its name, or ``"auto"`` (the checkpoint's);
        ``device_map`` puts the model on one device (``"cuda:0"``, ``"auto"``: the GPU when there is one, or
        ``{"": device}``); ``low_cpu_mem_usage`` has no effect, as in transformers 5.
        fnet's differences: the default dtype is float32, not ``"auto"``; ``strict=True`` refuses keys of
        another architecture and missing encoder weights (ValueError naming them).
        """
        from fnet.checkpoint import load_model

        del low_cpu_mem_usage  # transformers 5 ignores it too: loading never holds two copies of the weights
        model, info = load_model(
            cls, name_or_dir, config=config, state_dict=state_dict, ignore_mismatched_sizes=ignore_mismatched_sizes,
            strict=strict, dtype=dtype if dtype is not None else torch_dtype, subfolder=subfolder, revision=revision,
            cache_dir=cache_dir, local_files_only=local_files_only, token=token, **config_overrides,
        )
        if device_map is not None:
            model = model.to(_one_device(device_map))
        if name_or_dir is not None:
            model.name_or_path = str(name_or_dir)  # where encode() finds the tokenizer and pooling recipe
        return (model, info) if output_loading_info else model

    def encode(self, texts, tokenizer=None, *, batch_size: int = 32, max_length: int | None = None,
               pooling: str | None = None, normalize: bool | None = None, progress: bool = False):
        """(N, d) float32 sentence embeddings of ``texts`` (see :mod:`fnet.embeddings`).

        ``pooling`` ("mean" | "cls"), ``normalize`` and ``max_length`` default to the model folder's
        sentence-transformers recipe when it has one, else mean pooling, no normalisation, the
        position table's length; ``tokenizer`` defaults to the folder's (``fnet.AutoTokenizer``).
        """
        from fnet.embeddings import encode

        return encode(self, texts, tokenizer, batch_size=batch_size, max_length=max_length, pooling=pooling,
                      normalize=normalize, progress=progress)

    def _finish(self, out: ModelOutput, return_dict: bool | None) -> ModelOutput | tuple:
        """The output object, or its tuple when ``return_dict`` (default: ``config.return_dict``) is False."""
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return out if return_dict else out.to_tuple()

    # -- input checks (skipped while tracing/exporting, where values are symbolic)
    def _check_inputs(
        self,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        rank: int = 2,
    ) -> None:
        if _is_exporting():
            return
        config = self.config
        what = "(batch, seq)" if rank == 2 else "(batch, choices, seq)"
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if input_ids is not None:
            _check_ids("input_ids", input_ids, config.vocab_size, rank, what,
                       "the tokenizer and model vocabularies differ: use the model's own tokenizer, "
                       "or call model.resize_token_embeddings(len(tokenizer))")
            shape = tuple(input_ids.shape)
        else:
            if not isinstance(inputs_embeds, torch.Tensor) or not inputs_embeds.is_floating_point():
                raise TypeError("inputs_embeds must be a floating-point tensor (batch, seq, hidden)")
            if inputs_embeds.dim() != rank + 1 or inputs_embeds.shape[-1] != config.embedding_width:
                raise ValueError(
                    f"inputs_embeds must have shape {what[:-1]}, hidden={config.embedding_width}), "
                    f"got {tuple(inputs_embeds.shape)}"
                )
            shape = tuple(inputs_embeds.shape[:-1])
        if shape[-1] == 0:
            raise ValueError("the input has no tokens (sequence length 0)")
        if token_type_ids is not None:
            _check_ids("token_type_ids", token_type_ids, config.type_vocab_size, rank, what,
                       "token types index the segment table (type_vocab_size rows)", shape)
        if position_ids is not None:
            _check_ids("position_ids", position_ids, config.max_position_embeddings, None, what,
                       "extend the table with model.resize_position_embeddings(n)")
        elif shape[-1] > config.max_position_embeddings:
            raise ValueError(
                f"sequence length {shape[-1]} exceeds max_position_embeddings={config.max_position_embeddings}; "
                f"truncate the input (tokenizer truncation=True, max_length={config.max_position_embeddings}) "
                f"or extend the position table with model.resize_position_embeddings({shape[-1]})"
            )
        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor):
                raise TypeError(f"attention_mask must be a torch.Tensor, got {type(attention_mask).__name__}")
            if tuple(attention_mask.shape) != shape:
                raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} does not match the input {shape}")
            if attention_mask.is_floating_point() and not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
                raise ValueError("attention_mask must hold 0 (pad) and 1 (token) only")


def _one_device(device_map: str | int | torch.device | dict[str, Any]) -> torch.device:
    """The device of transformers' ``device_map`` when it names one device for the whole model."""
    if isinstance(device_map, dict):
        if set(device_map) != {""}:
            raise ValueError(f"device_map={device_map!r} splits the model across devices, which fnet does not do; "
                             "pass one device (device_map='cuda:0', {'': 'cuda:0'}) or 'auto'")
        device_map = device_map[""]
    if device_map in ("auto", "balanced", "sequential"):
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(device_map)


def _check_ids(
    name: str, ids: Any, limit: int, rank: int | None, what: str, hint: str, shape: tuple | None = None
) -> None:
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer ids {what}, got {type(ids).__name__}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer ids (torch.long), got dtype {ids.dtype}"
            + ("; to pass embeddings use inputs_embeds=" if name == "input_ids" else "")
        )
    if rank is not None and ids.dim() != rank:
        hint_dim = f"; add a batch dimension with {name}[None]" if ids.dim() == rank - 1 else ""
        raise ValueError(f"{name} must have shape {what}, got {tuple(ids.shape)}{hint_dim}")
    if shape is not None and tuple(ids.shape) != shape:
        raise ValueError(f"{name} shape {tuple(ids.shape)} does not match input_ids shape {shape}")
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= limit:
            bad = low if low < 0 else high
            raise ValueError(f"{name} contains {bad}, outside [0, {limit}); {hint}")


# ----------------------------------------------------------------------------- the backbone


class FNetModel(FNetPreTrainedModel):
    """The FNet encoder: embeddings, L FNet layers, optional pooler.

    ``forward`` returns ``FNetModelOutput(last_hidden_state (b, n, d), pooler_output (b, d), hidden_states)``.
    """

    base_model_prefix = "fnet"

    def __init__(self, config: FNetConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = FNetEmbeddings(config)
        self.encoder = FNetEncoder(config)
        self.pooler = FNetPooler(config) if add_pooling_layer else None
        self.post_init()

    @property
    def base_model(self) -> "FNetModel":
        return self

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> FNetModelOutput | tuple:
        """``attention_mask`` (b, n), 1 at tokens, 0 at pads: when given, each example is mixed over
        its own tokens only, so its outputs do not depend on the padding. Without it, pads are mixed
        in like tokens, exactly as in the reference."""
        self._check_inputs(input_ids, inputs_embeds, token_type_ids, position_ids, attention_mask)
        if output_attentions:  # transformers' argument (PEFT passes it); FNet mixes tokens without attention maps
            raise ValueError("output_attentions=True: FNet mixes tokens with a Fourier transform and has no attention "
                             "maps to return; leave output_attentions unset")
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # (b, n, d)
        hidden, all_hidden = self.encoder(hidden, attention_mask, bool(output_hidden_states))
        pooled = self.pooler(hidden) if self.pooler is not None else None
        out = FNetModelOutput(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden)
        return self._finish(out, return_dict)


# ----------------------------------------------------------------------------- task models


class _FNetTaskModel(FNetPreTrainedModel):
    """A backbone under the ``fnet`` prefix plus a head; shared plumbing of the task models."""

    def _backbone(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
                  output_attentions=None):
        return self.fnet(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            inputs_embeds=inputs_embeds, output_hidden_states=output_hidden_states, return_dict=True,
            output_attentions=output_attentions,
        )



def _mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


class FNetForPreTraining(_FNetTaskModel):
    """FNet with the MLM and NSP heads. loss = MLM cross-entropy + NSP cross-entropy."""

    def __init__(self, config: FNetConfig):
        super().__init__(config)
        self.fnet = FNetModel(config)
        self.cls = FNetPreTrainingHeads(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
        only_masked_logits: bool = False,
    ) -> FNetForPreTrainingOutput | tuple:
        """``labels`` (b, n): token ids at masked positions, -100 elsewhere. ``next_sentence_label`` (b,).

        ``only_masked_logits=True`` runs the vocabulary projection on labelled positions only (the
        expensive part of pretraining) and returns ``prediction_logits`` of shape (masked, v).
        """
        out = self._backbone(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                             output_hidden_states, output_attentions)
        sequence, pooled = out.last_hidden_state, out.pooler_output
        if only_masked_logits:
            if labels is None:
                raise ValueError("only_masked_logits=True needs labels (which positions are masked)")
            selected = labels.reshape(-1) != -100
            prediction_logits = self.cls.predictions(sequence.reshape(-1, sequence.shape[-1])[selected])  # (m, v)
            mlm_labels = labels.reshape(-1)[selected]
        else:
            prediction_logits = self.cls.predictions(sequence)  # (b, n, v)
            mlm_labels = labels
        nsp_logits = self.cls.seq_relationship(pooled)  # (b, 2)
        loss = None
        if labels is not None:
            loss = _mlm_loss(prediction_logits, mlm_labels)
        if next_sentence_label is not None:
            nsp = F.cross_entropy(nsp_logits.float(), next_sentence_label.reshape(-1))
            loss = nsp if loss is None else loss + nsp
        result = FNetForPreTrainingOutput(loss, prediction_logits, nsp_logits, out.hidden_states)
        return self._finish(result, return_dict)


class FNetForMaskedLM(_FNetTaskModel):
    """FNet with the MLM head; loss is cross-entropy on positions whose label is not -100."""

    def __init__(self, config: FNetConfig):
        super().__init__(config)
        self.fnet = FNetModel(config)
        self.cls = FNetOnlyMLMHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> MaskedLMOutput | tuple:
        out = self._backbone(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                             output_hidden_states, output_attentions)
        logits = self.cls(out.last_hidden_state)  # (b, n, v)
        loss = _mlm_loss(logits, labels) if labels is not None else None
        return self._finish(MaskedLMOutput(loss, logits, out.hidden_states), return_dict)


class FNetForNextSentencePrediction(_FNetTaskModel):
    """FNet with the NSP head: label 0 = segment B follows A, 1 = B is random."""

    def __init__(self, config: FNetConfig):
        super().__init__(config)
        self.fnet = FNetModel(config)
        self.cls = FNetOnlyNSPHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
        next_sentence_label: torch.Tensor | None = None,
    ) -> NextSentencePredictorOutput | tuple:
        if labels is None:
            labels = next_sentence_label
        out = self._backbone(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                             output_hidden_states, output_attentions)
        logits = self.cls(out.pooler_output)  # (b, 2)
        loss = F.cross_entropy(logits.float(), labels.reshape(-1)) if labels is not None else None
        return self._finish(NextSentencePredictorOutput(loss, logits, out.hidden_states), return_dict)


class FNetForSequenceClassification(_FNetTaskModel):
    """Pooled output -> dropout -> Linear(d, num_labels). Regression (MSE), single-label (CE) or multi-label (BCE)."""

    def __init__(self, config: FNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.fnet = FNetModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        out = self._backbone(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                             output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output))  # (b, num_labels)
        loss = None
        if labels is not None:
            problem = self.config.problem_type
            if problem is None:  # inferred as the reference does, and remembered
                if self.num_labels == 1:
                    problem = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    problem = "single_label_classification"
                else:
                    problem = "multi_label_classification"
                self.config.problem_type = problem
            if problem == "regression":
                target = labels.float()
                loss = F.mse_loss(logits.squeeze().float(), target.squeeze()) if self.num_labels == 1 else F.mse_loss(logits.float(), target)
            elif problem == "single_label_classification":
                loss = F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return self._finish(SequenceClassifierOutput(loss, logits, out.hidden_states), return_dict)


class FNetForMultipleChoice(_FNetTaskModel):
    """Inputs (b, c, n) are scored per choice: pooled -> dropout -> Linear(d, 1) -> logits (b, c)."""

    def __init__(self, config: FNetConfig):
        super().__init__(config)
        self.fnet = FNetModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> MultipleChoiceModelOutput | tuple:
        self._check_inputs(input_ids, inputs_embeds, token_type_ids, None, attention_mask, rank=3)
        ref = input_ids if input_ids is not None else inputs_embeds
        num_choices = ref.shape[1]

        def flat(t: torch.Tensor | None) -> torch.Tensor | None:
            # (b, c, n[, d]) -> (b*c, n[, d])
            return None if t is None else t.reshape(-1, *t.shape[2:])

        out = self._backbone(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                             flat(inputs_embeds), output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)  # (b, c)
        loss = F.cross_entropy(logits.float(), labels.view(-1)) if labels is not None else None
        return self._finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states), return_dict)


class FNetForTokenClassification(_FNetTaskModel):
    """Per-token labels: sequence -> dropout -> Linear(d, num_labels); -100 labels are ignored."""

    def __init__(self, config: FNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.fnet = FNetModel(config)  # the reference keeps the (unused) pooler: same checkpoint keys
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> TokenClassifierOutput | tuple:
        out = self._backbone(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                             output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (b, n, num_labels)
        loss = _mlm_loss(logits, labels) if labels is not None else None
        return self._finish(TokenClassifierOutput(loss, logits, out.hidden_states), return_dict)


class FNetForQuestionAnswering(_FNetTaskModel):
    """Extractive QA: Linear(d, 2) -> start/end logits (b, n). Out-of-range gold positions are ignored."""

    def __init__(self, config: FNetConfig):
        super().__init__(config)
        self.num_labels = 2
        self.fnet = FNetModel(config)  # the reference keeps the (unused) pooler: same checkpoint keys
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> QuestionAnsweringModelOutput | tuple:
        out = self._backbone(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                             output_hidden_states, output_attentions)
        logits = self.qa_outputs(out.last_hidden_state)  # (b, n, 2)
        start_logits, end_logits = logits[..., 0].contiguous(), logits[..., 1].contiguous()  # (b, n) each
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.shape[1]  # positions outside the window are clamped here and ignored
            start = start_positions.reshape(-1).clamp(0, ignored)
            end = end_positions.reshape(-1).clamp(0, ignored)
            loss = (
                F.cross_entropy(start_logits.float(), start, ignore_index=ignored)
                + F.cross_entropy(end_logits.float(), end, ignore_index=ignored)
            ) / 2
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states)
        return self._finish(result, return_dict)

