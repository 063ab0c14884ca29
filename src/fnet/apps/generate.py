"""`fnet generate`: keyword-constrained sentences from a pretrained masked LM (CGMH, :mod:`fnet.generation`),
on any device (:mod:`fnet.harness`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fnet.harness import DeviceOptions
from fnet.options import option, require

__all__ = ["GenerateConfig", "generate_from_config"]


@dataclass
class GenerateConfig(DeviceOptions):
    """`fnet generate`: keyword-constrained sentences from a pretrained MLM (CGMH)."""

    model: str | None = option(None, "a pretraining output (fnet pretrain) with its MLM head and tokenizer (required)")
    keywords: list[str] | None = option(None, "words every sample contains, in this order (required)", metavar="W")
    num_samples: int = option(5, "independent chains, one sample each", metavar="N")
    steps: int = option(100, "proposals per chain (each costs two encoder passes)", metavar="N")
    seed: int = option(0, "chain k uses seed + k")
    temperature: float = option(1.0, "temperature T of the target exp((PLL + length bonus * n) / T)", metavar="T")
    final_temperature: float | None = option(None, "anneal T geometrically to this value over the steps (simulated "
                                                   "annealing; e.g. 0.1 for the most fluent sentence)", metavar="T")
    min_length: int | None = option(None, "fewest pieces per sample (default: the keywords' pieces + 1)", metavar="N")
    max_length: int | None = option(None, "most pieces per sample (default: fnet.generation.DEFAULT_MAX_LENGTH, "
                                          "32, or the model's positions - 2 when fewer)", metavar="N")
    length_bonus: float = option(0.0, "nats per piece added to the PLL (a PLL sum favours short sentences)",
                                 metavar="NATS", signed=True)
    output: str | None = option(None, "write JSON lines here instead of stdout", metavar="FILE.jsonl")
    overwrite: bool = option(False, "replace --output if it exists")

    def validate(self) -> None:
        require(self, "model")
        require(self, "keywords", hint=" (one or more words)")
        self.check_device_options()


def generate_from_config(config: GenerateConfig) -> list[dict[str, Any]]:
    """Load ``config.model`` and run :func:`generate` with the config's options."""
    from fnet import harness
    from fnet.generation import generate, load_generator

    config.validate()
    with harness.start(config, command="generate") as run:
        model, tokenizer = load_generator(config.model)
        with run.autocast():
            return generate(model.to(run.device), tokenizer, list(config.keywords), num_samples=config.num_samples,
                            steps=config.steps, seed=config.seed, temperature=config.temperature,
                            final_temperature=config.final_temperature, min_length=config.min_length,
                            max_length=config.max_length, length_bonus=config.length_bonus)
