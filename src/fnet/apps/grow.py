"""`fnet grow`: a saved model grown to a bigger config (:mod:`fnet.growth`), written to a new folder with
its tokenizer and task info; the deviation is measured on the run's device (:mod:`fnet.harness`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fnet.harness import PRECISIONS, DeviceOptions
from fnet.options import option, require

if TYPE_CHECKING:
    from fnet.growth import GrowthReport

__all__ = ["GrowConfig", "grow_directory"]


@dataclass
class GrowConfig(DeviceOptions):
    """`fnet grow`: a saved model grown to a bigger config, written to a new directory."""

    model: str | None = option(None, "model directory to grow (pretraining or fine-tuned output; required)")
    output: str | None = option(None, "new directory for the grown model (required; empty or new unless --overwrite)")
    overwrite: bool = option(False, "replace what --output holds (the old folder stays until the grown model is "
                                    "written)")
    intermediate_size: int | None = option(None, "new feed-forward width (exact: split neurons)", metavar="N")
    num_layers: int | None = option(None, "new number of layers (exact for pre-norm models; post-norm: measured)",
                                    metavar="N")
    hidden_size: int | None = option(None, "new hidden size (not exact through the Fourier transform: measured)",
                                     metavar="N")
    max_position_embeddings: int | None = option(None, "new position-table size (exact for inputs the old model "
                                                       "could read)", metavar="N")
    vocab: str | None = option(None, "a tokenizer directory (or spiece.model) holding every piece of the model's "
                                     "vocabulary, plus new ones (exact on the old pieces)", metavar="DIR")
    depth_init: str = option("copy", "post-norm depth growth: copy (progressive stacking) or zero-ffn",
                             choices=("copy", "zero-ffn"))
    seed: int = option(0, "which neurons are split, new vocabulary rows, the probe inputs of the deviation")
    precision: str | None = option(None, "fp32, bf16 or fp16 autocast of the deviation measurement (default: fp32 on "
                                         "every device: it measures exactness)", choices=PRECISIONS)

    def validate(self) -> None:
        require(self, "model", "output")
        self.check_device_options()
        sizes = (self.intermediate_size, self.num_layers, self.hidden_size, self.max_position_embeddings, self.vocab)
        if all(size is None for size in sizes):
            raise ValueError("nothing to grow: pass at least one of --intermediate-size, --num-layers, "
                             "--hidden-size, --max-position-embeddings, --vocab")


def _model_class(model_dir: Path) -> type:
    """The class a directory was saved from (config.json ``architectures``), among fnet's."""
    import json

    import fnet.modeling

    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--model {model_dir} has no config.json: not a saved model directory")
    names = json.loads(path.read_text(encoding="utf-8")).get("architectures") or ["FNetModel"]
    cls = getattr(fnet.modeling, names[0], None)
    if not (isinstance(cls, type) and issubclass(cls, fnet.modeling.FNetPreTrainedModel)):
        raise ValueError(f"--model {model_dir} holds a {names[0]}, which fnet cannot grow")
    return cls


def _check_grown_size(config: GrowConfig, source: Path) -> None:
    """Refuse, before the output is claimed, a grown shape this machine cannot hold (the source and the
    grown model are in memory together, float32) or build (:data:`fnet.model_size.MAX_LAYERS`)."""
    import dataclasses

    from fnet.checkpoint import load_config
    from fnet.model_size import check_fits

    _model_class(source)  # a folder with a config.json of fnet's
    sizes = {"intermediate_size": config.intermediate_size, "num_hidden_layers": config.num_layers,
             "hidden_size": config.hidden_size, "max_position_embeddings": config.max_position_embeddings}
    given = {key: value for key, value in sizes.items() if value is not None}
    flags = {"num_hidden_layers": "--num-layers"}
    where = " ".join(f"{flags.get(key, '--' + key.replace('_', '-'))} {value}" for key, value in given.items())
    check_fits(dataclasses.replace(load_config(source), **given), where or "--vocab", bytes_per_parameter=8)


def grow_directory(config: GrowConfig) -> "GrowthReport":
    """Load ``config.model`` (as the class it was saved from), grow it, measure it, save it to ``config.output``
    with its tokenizer (the ``--vocab`` one when given) and, for a fine-tuned model, its fnet_task.json."""
    import shutil

    import dataclasses

    from fnet import harness
    from fnet.growth import grow
    from fnet.tokenization import FNetTokenizer

    config.validate()
    source = Path(config.model)
    _check_grown_size(config, source)
    with harness.start(dataclasses.replace(config, precision=config.precision or "fp32"), command="grow",
                       output=config.output, overwrite=config.overwrite, inputs={"--model": config.model}) as run:
        out = run.out
        cls = _model_class(source)
        model = cls.from_pretrained(source, strict=True).to(run.device)
        tokenizer = FNetTokenizer.from_pretrained(source) if (source / "spiece.model").is_file() else None
        new_tokenizer = None
        if config.vocab:
            if tokenizer is None:
                raise ValueError(f"--vocab needs the model's own tokenizer (spiece.model) in {source}")
            vocab = Path(config.vocab)
            new_tokenizer = FNetTokenizer.from_pretrained(vocab.parent if vocab.is_file() else vocab)
        with run.autocast():
            grown, report = grow(model, intermediate_size=config.intermediate_size, num_layers=config.num_layers,
                                 hidden_size=config.hidden_size,
                                 max_position_embeddings=config.max_position_embeddings, tokenizer=tokenizer,
                                 new_tokenizer=new_tokenizer, depth_init=config.depth_init, seed=config.seed)
        grown.save_pretrained(out.path)
        if new_tokenizer or tokenizer:
            (new_tokenizer or tokenizer).save_pretrained(out.path)
        if (source / "fnet_task.json").is_file():  # a task model keeps how its inputs are read
            shutil.copyfile(source / "fnet_task.json", out.path / "fnet_task.json")
    return report
