"""FNetConfig: the reference (transformers / google/fnet-base) fields, fnet's own options, presets.

A config round-trips through ``config.json`` in the layout ``transformers.FNetConfig`` reads, so a
directory written by fnet loads in ``transformers`` and vice versa. Cross-field checks live in
``FNetConfig.validate`` and say what to change.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fnet.io import atomic_write_text

CONFIG_NAME = "config.json"

# Keys that older transformers versions wrote into config.json; they carry no architecture information,
# so loading a config.json accepts and drops them. The keys transformers 5 writes into every config are
# FNetConfig fields (below). Any other unknown key is an error (a typo must not pass silently).
_TRANSFORMERS_LEGACY_KEYS = frozenset(
    {
        "torchscript", "use_bfloat16", "pruned_heads", "is_decoder", "cross_attention_hidden_size",
        "add_cross_attention", "tie_encoder_decoder", "finetuning_task", "tokenizer_class", "prefix",
        "sep_token_id", "decoder_start_token_id", "task_specific_params", "_attn_implementation_autoset",
        "_commit_hash", "use_cache", "position_embedding_type", "classifier_dropout",
    }
)

FOURIER_TRANSFORMS = ("auto", "fft", "dft", "matmul")
HIDDEN_ACTS = ("gelu_new", "gelu", "gelu_fast", "gelu_pytorch_tanh", "relu", "silu", "swish", "tanh")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
# token mixers (fnet.mixers.MIXERS holds the classes; the names live here so config needs no torch)
TOKEN_MIXERS = ("fourier", "attention", "linear-attention", "performer", "linear", "random", "identity")
ATTENTION_FAMILY = ("attention", "linear-attention", "performer")  # q/k/v mixers: heads, RoPE
HYBRID_LAYOUTS = ("top", "bottom", "middle", "mixed")  # where a hybrid's attention layers sit (f_net's)
FEED_FORWARDS = ("standard", "glu", "geglu", "swiglu")
NORM_TYPES = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("post", "pre")
_DTYPES = ("float32", "float16", "bfloat16", "float64")  # FNetConfig.dtype values (torch dtype names)


def _default_labels(num_labels: int) -> dict[int, str]:
    """transformers' label names for a head without named labels: LABEL_0 .. LABEL_{n-1}."""
    return {i: f"LABEL_{i}" for i in range(num_labels)}


@dataclass
class FNetConfig:
    """Configuration of an FNet encoder and its heads.

    The first block of fields is exactly ``transformers.FNetConfig`` (same names, same defaults =
    google/fnet-base). The second block is fnet's: how the Fourier transform is computed, and the
    task-head fields that transformers keeps on its base config class.
    """

    # --- reference fields (transformers.FNetConfig, google/fnet-base defaults) ---
    vocab_size: int = 32000  # rows of the word-embedding table (= SentencePiece pieces + added specials)
    hidden_size: int = 768  # width d of every layer; the Fourier transform runs over it too
    num_hidden_layers: int = 12  # number of FNetLayer blocks (mixing sublayer + feed-forward)
    intermediate_size: int = 3072  # inner width of the feed-forward sublayer
    hidden_act: str = "gelu_new"  # feed-forward and MLM-transform activation; gelu_new = tanh GELU
    hidden_dropout_prob: float = 0.1  # dropout after embeddings, feed-forward, and before classifiers
    max_position_embeddings: int = 512  # rows of the position table = longest input (up to 16,384+)
    type_vocab_size: int = 4  # rows of the token-type (segment) table
    initializer_range: float = 0.02  # std of the normal init of Linear and Embedding weights
    layer_norm_eps: float = 1e-12  # epsilon of every LayerNorm
    use_tpu_fourier_optimizations: bool = False  # reference switch for the DFT-matrix path
    tpu_short_seq_length: int = 512  # reference: the one length its DFT path accepted (kept for io)
    pad_token_id: int | None = 3  # id of <pad>; its embedding row is zero and gets no gradient
    bos_token_id: int | None = 1  # id of <s> (unused by the encoder, kept for io)
    eos_token_id: int | None = 2  # id of </s> (unused by the encoder, kept for io)
    tie_word_embeddings: bool = True  # MLM decoder weight is the word-embedding matrix

    # --- fnet's options ---
    fourier_transform: str = "auto"  # "fft" (any length), "dft" (matrix form, <= dft_max_length), "auto"
    # (the matmul form on CUDA under bf16/fp16 for short inputs, else fft), "matmul" (that form always)
    dft_max_length: int = 4096  # longest sequence the DFT-matrix path accepts (matrices are n x n)

    # --- block options (fnet.mixers; defaults = the reference FNet block) ---
    token_mixer: str = "fourier"  # mixer of every layer (hybrids: of the non-attention layers); TOKEN_MIXERS
    num_attention_heads: int = 12  # heads of the attention family; hidden_size must divide by it
    attention_probs_dropout_prob: float = 0.1  # dropout on softmax attention weights
    hybrid_layout: str | None = None  # put attention in hybrid_attention_layers layers: top|bottom|middle|mixed
    hybrid_attention_layers: int = 2  # how many attention layers a hybrid_layout places
    attention_layers: list[int] | None = None  # explicit 0-based attention layers (instead of a layout)
    performer_features: int = 64  # random features m per head of the performer mixer
    performer_redraw_interval: int = 0  # redraw performer features every N training forwards (0 = never)
    rotary: bool = False  # rotary position embedding (RoPE) on queries/keys of the attention family
    feed_forward: str = "standard"  # standard (dense, hidden_act) | glu | geglu | swiglu (gated, + `gate`)
    norm_type: str = "layernorm"  # norm of the sublayers: layernorm | rmsnorm (key name stays LayerNorm)
    norm_position: str = "post"  # post: norm(x + f(x)) as the reference; pre: x + f(norm(x)), + final_norm
    embedding_size: int | None = None  # ALBERT factorised embeddings: table width (None = hidden_size)
    embedding_projection: bool = True  # the embeddings' projection Linear(embedding_size, hidden); BERT has none
    share_layers: bool = False  # ALBERT cross-layer sharing: one layer's weights applied num_hidden_layers times
    mixing_layer_scale: float | None = None  # LayerScale: learned per-channel gain on the mixing output, init value

    # --- task-head fields (transformers keeps these on every config) ---
    num_labels: int = 2  # outputs of sequence/token classification heads
    problem_type: str | None = None  # regression | single_label_classification | multi_label_...
    id2label: dict[int, str] | None = None  # label names; default LABEL_0..LABEL_{n-1}
    label2id: dict[str, int] | None = None  # inverse of id2label

    # --- keys every transformers config carries, so FNetConfig(**transformers_config.to_dict()) works;
    # the folder's metadata (dtype, architectures, version) does not take part in config equality ---
    output_hidden_states: bool = False  # forward's default for output_hidden_states (the argument wins)
    return_dict: bool = True  # forward's default: an output object; False returns its to_tuple()
    output_attentions: bool = False  # FNet has no attention maps to return; carried for transformers' configs
    gradient_checkpointing: bool = False  # a model built from this config starts with activation checkpointing on
    # the saved weights' dtype ("float32", ...): what from_pretrained(dtype="auto") loads
    dtype: str | None = field(default=None, compare=False)
    architectures: list[str] | None = field(default=None, compare=False)  # the model class that saved the folder
    transformers_version: str | None = field(default=None, compare=False)  # the transformers that wrote config.json
    chunk_size_feed_forward: int = 0  # transformers' feed-forward chunking, a memory knob; fnet runs it whole
    is_encoder_decoder: bool = False  # transformers' flag for seq2seq models; FNet is an encoder and ignores it
    _name_or_path: str = field(default="", repr=False, compare=False)  # where from_pretrained read the config
    model_type: str = field(default="fnet", repr=False)  # "fnet"; BERT config.json files go through from_dict

    def __post_init__(self) -> None:
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
        else:
            self.id2label = _default_labels(self.num_labels)
        self.num_labels = len(self.id2label)  # label names, when given, decide the count (as in transformers)
        if self.label2id is not None and len(self.label2id) == len(self.id2label):
            self.label2id = {str(k): int(v) for k, v in self.label2id.items()}
        else:
            self.label2id = {v: k for k, v in self.id2label.items()}
        if self.dtype is not None and not isinstance(self.dtype, str):  # a torch.dtype, as transformers accepts
            self.dtype = str(self.dtype).removeprefix("torch.")
        self.validate()
        object.__setattr__(self, "_ready", True)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        # transformers' rule: a new number of labels replaces label names of a different count with LABEL_i
        if name == "num_labels" and getattr(self, "_ready", False) and len(self.id2label) != value:
            super().__setattr__("id2label", _default_labels(value))
            super().__setattr__("label2id", {v: k for k, v in self.id2label.items()})

    @property
    def name_or_path(self) -> str:
        return self._name_or_path

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ValueError/TypeError naming the field and what to change."""

        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"FNetConfig.{name} must be an int, got {type(value).__name__} {value!r}")
            if value <= 0:
                raise ValueError(f"FNetConfig.{name} must be a positive int, got {value}")

        for name in (
            "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "tpu_short_seq_length", "dft_max_length",
            "num_labels",
        ):
            positive_int(name)
        if not 0.0 <= float(self.hidden_dropout_prob) < 1.0:
            raise ValueError(f"FNetConfig.hidden_dropout_prob must be in [0, 1), got {self.hidden_dropout_prob}")
        if not (math.isfinite(self.initializer_range) and self.initializer_range > 0):
            raise ValueError(f"FNetConfig.initializer_range must be a finite number > 0, got {self.initializer_range}")
        if not (math.isfinite(self.layer_norm_eps) and self.layer_norm_eps > 0):
            raise ValueError(f"FNetConfig.layer_norm_eps must be a finite number > 0, got {self.layer_norm_eps}")
        if self.hidden_act not in HIDDEN_ACTS:
            raise ValueError(f"FNetConfig.hidden_act={self.hidden_act!r} is not supported; use one of {HIDDEN_ACTS}")
        if self.fourier_transform not in FOURIER_TRANSFORMS:
            raise ValueError(
                f"FNetConfig.fourier_transform={self.fourier_transform!r} is not valid; use one of {FOURIER_TRANSFORMS}"
            )
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"FNetConfig.pad_token_id={self.pad_token_id} is outside the vocabulary (vocab_size="
                f"{self.vocab_size}); set pad_token_id to the tokenizer's pad id or raise vocab_size"
            )
        self._validate_block_options()
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"FNetConfig.problem_type={self.problem_type!r} is not valid; use one of {PROBLEM_TYPES}")
        if sorted(self.id2label) != list(range(len(self.id2label))):
            raise ValueError(f"FNetConfig.id2label keys must be 0..num_labels-1, got {sorted(self.id2label)}")
        if self.model_type != "fnet":
            raise ValueError(f"FNetConfig.model_type must be 'fnet', got {self.model_type!r}; read a BERT "
                             "config.json with FNetConfig.from_pretrained(folder)")
        if self.dtype is not None and self.dtype not in _DTYPES:
            raise ValueError(f"FNetConfig.dtype={self.dtype!r} is not valid; use one of {list(_DTYPES)} or None")

    def _validate_block_options(self) -> None:
        """Cross-field checks of the token mixer and block options."""
        for name, value, valid in (
            ("token_mixer", self.token_mixer, TOKEN_MIXERS),
            ("feed_forward", self.feed_forward, FEED_FORWARDS),
            ("norm_type", self.norm_type, NORM_TYPES),
            ("norm_position", self.norm_position, NORM_POSITIONS),
        ):
            if value not in valid:
                raise ValueError(f"FNetConfig.{name}={value!r} is not valid; use one of {list(valid)}")
        for name in ("num_attention_heads", "hybrid_attention_layers", "performer_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"FNetConfig.{name} must be a positive int, got {value!r}")
        if isinstance(self.performer_redraw_interval, bool) or not isinstance(self.performer_redraw_interval, int) \
                or self.performer_redraw_interval < 0:
            raise ValueError(f"FNetConfig.performer_redraw_interval must be an int >= 0, got {self.performer_redraw_interval!r}")
        if self.mixing_layer_scale is not None and (
                isinstance(self.mixing_layer_scale, bool) or not isinstance(self.mixing_layer_scale, (int, float))):
            raise TypeError(f"FNetConfig.mixing_layer_scale must be a number or None, got {self.mixing_layer_scale!r}")
        if not 0.0 <= float(self.attention_probs_dropout_prob) < 1.0:
            raise ValueError(
                f"FNetConfig.attention_probs_dropout_prob must be in [0, 1), got {self.attention_probs_dropout_prob}"
            )
        if self.hybrid_layout is not None or self.attention_layers is not None:
            if self.hybrid_layout is not None and self.attention_layers is not None:
                raise ValueError("set either FNetConfig.hybrid_layout or attention_layers, not both")
            if self.hybrid_layout is not None and self.hybrid_layout not in HYBRID_LAYOUTS:
                raise ValueError(f"FNetConfig.hybrid_layout={self.hybrid_layout!r} is not valid; use one of "
                                 f"{list(HYBRID_LAYOUTS)} or None")
            if self.token_mixer == "attention":
                raise ValueError("a hybrid puts attention in some layers and token_mixer in the others; "
                                 "set token_mixer to a non-attention mixer (e.g. 'fourier')")
            if self.hybrid_layout is not None and self.hybrid_attention_layers > self.num_hidden_layers:
                raise ValueError(f"FNetConfig.hybrid_attention_layers={self.hybrid_attention_layers} exceeds "
                                 f"num_hidden_layers={self.num_hidden_layers}; lower it")
            if self.attention_layers is not None:
                layers = self.attention_layers
                if not isinstance(layers, (list, tuple)) or not all(
                    isinstance(i, int) and not isinstance(i, bool) for i in layers
                ):
                    raise TypeError(f"FNetConfig.attention_layers must be a list of ints, got {layers!r}")
                bad = [i for i in layers if not 0 <= i < self.num_hidden_layers]
                if bad or len(set(layers)) != len(layers):
                    raise ValueError(f"FNetConfig.attention_layers={list(layers)} must be distinct layer indices "
                                     f"in [0, {self.num_hidden_layers})")
                self.attention_layers = sorted(layers)
            if self.share_layers:
                raise ValueError("share_layers=True repeats one layer, so every layer has the same mixer; "
                                 "drop hybrid_layout/attention_layers or set share_layers=False")
        mixers = set(self.layer_mixers())
        if mixers & set(ATTENTION_FAMILY):
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_attention_heads="
                                 f"{self.num_attention_heads}; change one of them")
            if self.rotary and (self.hidden_size // self.num_attention_heads) % 2:
                raise ValueError(f"rotary needs an even head size, got hidden_size/num_attention_heads="
                                 f"{self.hidden_size // self.num_attention_heads}")
        elif self.rotary:
            raise ValueError(f"rotary=True applies to the attention family {list(ATTENTION_FAMILY)} only; the "
                             f"layers here use {sorted(mixers)}: set rotary=False or use an attention mixer")
        if self.embedding_size is not None:
            if isinstance(self.embedding_size, bool) or not isinstance(self.embedding_size, int) or self.embedding_size <= 0:
                raise ValueError(f"FNetConfig.embedding_size must be a positive int or None, got {self.embedding_size!r}")
            if not self.embedding_projection and self.embedding_size != self.hidden_size:
                raise ValueError(f"embedding_size={self.embedding_size} differs from hidden_size={self.hidden_size}, "
                                 "which needs the embedding projection: set embedding_projection=True")

    def attention_layer_ids(self) -> list[int]:
        """0-based indices of the layers that use softmax attention in a hybrid ([] otherwise)."""
        if self.attention_layers is not None:
            return list(self.attention_layers)
        if self.hybrid_layout is None:
            return []
        total, k = self.num_hidden_layers, self.hybrid_attention_layers
        if self.hybrid_layout == "bottom":
            return list(range(k))
        if self.hybrid_layout == "top":
            return list(range(total - k, total))
        if self.hybrid_layout == "middle":
            start = (total - k) // 2
            return list(range(start, start + k))
        return sorted({round(i * (total - 1) / max(k - 1, 1)) for i in range(k)})  # "mixed": evenly spread

    def layer_mixers(self) -> list[str]:
        """The token mixer of each layer, in order."""
        attention = set(self.attention_layer_ids())
        return ["attention" if i in attention else self.token_mixer for i in range(self.num_hidden_layers)]

    @property
    def embedding_width(self) -> int:
        """Width of the embedding tables (embedding_size, or hidden_size when unset)."""
        return self.embedding_size or self.hidden_size

    # ------------------------------------------------------------------ derived
    @property
    def uses_dft(self) -> bool:
        """Whether the DFT-matrix path is selected (explicitly, or via the reference TPU switch)."""
        if self.fourier_transform == "auto":
            return self.use_tpu_fourier_optimizations
        return self.fourier_transform == "dft"

    def labels(self) -> dict[int, str]:
        return self.id2label

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict[str, Any]:
        """The fields as config.json holds them: LABEL_i names (transformers derives them from num_labels),
        unset optional keys and the loading path left out."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.id2label == _default_labels(self.num_labels):
            del out["id2label"], out["label2id"]
        else:
            out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        for key in ("problem_type", "dtype", "architectures", "transformers_version"):
            if out[key] is None:
                del out[key]
        if not out["gradient_checkpointing"]:
            del out["gradient_checkpointing"]
        del out["_name_or_path"]
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """``to_dict`` without the values that equal FNetConfig()'s (``model_type`` always kept), as transformers."""
        default = FNetConfig().to_dict()
        return {k: v for k, v in self.to_dict().items() if k == "model_type" or k not in default or default[k] != v}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> "FNetConfig":
        if "num_labels" in overrides and "id2label" not in overrides:
            # a new number of labels replaces the stored label names
            if len(data.get("id2label") or {}) != overrides["num_labels"]:
                data = {k: v for k, v in data.items() if k not in ("id2label", "label2id")}
        data = {**data, **overrides}
        model_type = data.pop("model_type", "fnet")
        if model_type == "bert":  # a transformers BERT directory runs as the attention configuration
            return dataclasses.replace(config_from_bert({**data, **overrides}), **overrides) if overrides \
                else config_from_bert(data)
        if model_type != "fnet":
            raise ValueError(f"config has model_type={model_type!r}; fnet reads 'fnet' and 'bert' configs")
        if "torch_dtype" in data:  # the name transformers 4 wrote
            torch_dtype = data.pop("torch_dtype")
            data.setdefault("dtype", torch_dtype)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(k for k in data if k not in names and k not in _TRANSFORMERS_LEGACY_KEYS)
        if unknown:
            raise ValueError(f"unknown FNetConfig field(s) {unknown}; valid fields are {sorted(names)}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json_string(self, use_diff: bool = True) -> str:
        """config.json's text; ``use_diff`` (transformers' default) keeps only values that differ from FNetConfig()."""
        return json.dumps(self.to_diff_dict() if use_diff else self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> Path:
        """Write ``to_json_string(use_diff)`` to a file (atomically)."""
        return atomic_write_text(Path(json_file_path), self.to_json_string(use_diff))

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write the full ``config.json`` (every field, so the folder describes the model without defaults)."""
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        return self.to_json_file(path / CONFIG_NAME, use_diff=False)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> "FNetConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON ({err}); re-save the config") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, **overrides)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                        token: str | bool | None = None, subfolder: str = "", **overrides: Any) -> "FNetConfig":
        """A preset name (``fnet-base``...), a folder holding config.json (``subfolder``: in a folder below it),
        a config.json path, or a Hugging Face Hub id (``revision``, ``cache_dir``, ``local_files_only``,
        ``token``: see :func:`fnet.hub.resolve`). ``overrides`` replace fields, as transformers' kwargs do."""
        if isinstance(name_or_dir, str) and name_or_dir in PRESETS:
            return cls.from_preset(name_or_dir, **overrides)
        path = Path(name_or_dir)
        if not path.is_file():
            from fnet.hub import resolve

            try:
                path = resolve(name_or_dir, what="model", revision=revision, cache_dir=cache_dir,
                               local_files_only=local_files_only, token=token, weights=False,
                               subfolder=subfolder) / CONFIG_NAME
            except FileNotFoundError as err:
                raise FileNotFoundError(f"{err}; it is neither a preset ({', '.join(PRESETS)})") from None
        if not path.exists():
            raise FileNotFoundError(f"{path.parent} has no {CONFIG_NAME} (and {name_or_dir!s} is not a preset: "
                                    f"{', '.join(PRESETS)})")
        config = cls.from_json_file(path, **overrides)
        config._name_or_path = str(name_or_dir)
        return config

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "FNetConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {list(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


# Named sizes. Base and large are the paper's; the small ones are for CPUs, tests and the demo.
PRESETS: dict[str, dict[str, Any]] = {
    # num_attention_heads only matters for the attention-family mixers; BERT's head counts per size
    "fnet-base": dict(hidden_size=768, num_hidden_layers=12, intermediate_size=3072, num_attention_heads=12),
    "fnet-large": dict(hidden_size=1024, num_hidden_layers=24, intermediate_size=4096, num_attention_heads=16),
    "fnet-small": dict(hidden_size=256, num_hidden_layers=4, intermediate_size=1024, num_attention_heads=4),
    "fnet-mini": dict(hidden_size=256, num_hidden_layers=4, intermediate_size=512, num_attention_heads=4),
    "fnet-tiny": dict(hidden_size=128, num_hidden_layers=2, intermediate_size=512, num_attention_heads=2),
}


# BERT config.json keys that map to FNetConfig fields of the same name
_BERT_SAME_NAME = (
    "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "hidden_act", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range",
    "layer_norm_eps", "num_attention_heads", "num_labels", "id2label", "label2id", "problem_type",
)


def config_from_bert(bert: dict[str, Any]) -> FNetConfig:
    """FNetConfig of the attention encoder that computes what ``transformers.BertModel`` computes."""
    embedding_type = bert.get("position_embedding_type", "absolute")
    if embedding_type not in (None, "absolute"):
        raise ValueError(f"BERT position_embedding_type={embedding_type!r} is not supported; only 'absolute' maps "
                         "to fnet (use rotary=True for relative positions in new models)")
    if bert.get("is_decoder") or bert.get("add_cross_attention"):
        raise ValueError("BERT decoders (is_decoder / add_cross_attention) are not encoders; they do not map to fnet")
    fields = {k: bert[k] for k in _BERT_SAME_NAME if k in bert}
    fields.setdefault("hidden_act", "gelu")  # BERT's default: the exact erf GELU
    fields.setdefault("attention_probs_dropout_prob", 0.1)
    fields.setdefault("hidden_dropout_prob", 0.1)
    fields.setdefault("type_vocab_size", 2)
    fields.setdefault("layer_norm_eps", 1e-12)
    pad = bert.get("pad_token_id", 0)
    return FNetConfig(
        **fields,
        token_mixer="attention",
        embedding_projection=False,
        tie_word_embeddings=bert.get("tie_word_embeddings", True),
        pad_token_id=pad,
        bos_token_id=bert.get("bos_token_id"),
        eos_token_id=bert.get("eos_token_id"),
    )
