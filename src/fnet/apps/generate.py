"""`fnet generate`: keyword-constrained sentences from a pretrained masked LM (CGMH, :mod:`fnet.generation`),
on any device (:mod:`fnet.harness`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fnet.harness import DeviceOptions
from fnet.options import option, require

if TYPE_CHECKING:
    from fnet.generation import LengthPrior
    from fnet.tokenization import FNetTokenizer

__all__ = ["GenerateConfig", "generate_from_config", "resolve_length_prior"]

logger = logging.getLogger(__name__)

@dataclass
class GenerateConfig(DeviceOptions):
    """`fnet generate`: keyword-constrained sentences from a pretrained MLM (CGMH)."""

    model: str | None = option(None, "a pretraining output (fnet pretrain) with its MLM head and tokenizer (required)")
    keywords: list[str] | None = option(None, "words every sample contains, in this order (required)", metavar="W")
    num_samples: int = option(5, "independent chains, one sample each", metavar="N")
    steps: int | None = option(None, "proposals per chain, each two encoder passes (default: "
                                     "fnet.generation.STEPS_PER_PIECE per piece of the target length)", metavar="N")
    seed: int = option(0, "chain k uses seed + k")
    temperature: float = option(1.0, "temperature T of the target exp((PLL + length bonus * n) / T)", metavar="T")
    final_temperature: float | None = option(None, "anneal T geometrically to this value over the steps (simulated "
                                                   "annealing: the most fluent sentence the chain finds; default: "
                                                   "fnet.generation.FINAL_TEMPERATURE, 0.2); pass --temperature's "
                                                   "value to sample at a fixed T", metavar="T")
    min_length: int | None = option(None, "fewest pieces per sample (default: the keywords' pieces + 1)", metavar="N")
    max_length: int | None = option(None, "most pieces per sample (default: fnet.generation.DEFAULT_MAX_LENGTH, "
                                          "32, or the model's positions - 2 when fewer)", metavar="N")
    length_bonus: float = option(0.0, "nats per piece added to the target's log (with --no-length-prior the only "
                                      "thing against short sentences: a PLL sum favours them)", metavar="NATS",
                                 signed=True)
    length_prior: bool = option(True, "score fluency per piece and draw each chain's length from a prior of real "
                                      "sentence lengths (--length-from, else the model's pretraining data, else "
                                      "Poisson); --no-length-prior: CGMH's PLL sum")
    length_from: list[str] | None = option(None, "text files whose sentence lengths (in the model's pieces) set the "
                                                 "length prior (default: the model's pretraining data)", metavar="FILE")
    output: str | None = option(None, "write JSON lines here instead of stdout", metavar="FILE.jsonl")
    overwrite: bool = option(False, "replace --output if it exists")

    def validate(self) -> None:
        require(self, "model")
        require(self, "keywords", hint=" (one or more words)")
        if not self.length_prior and self.length_from:
            raise ValueError("--length-from sets the length prior, which --no-length-prior turns off; pass one of them")
        self.check_device_options()


def resolve_length_prior(config: GenerateConfig, tokenizer: "FNetTokenizer") -> "LengthPrior | None":
    """The length prior ``config`` asks for: --length-from, else the model's pretraining data, else Poisson."""
    from fnet.generation import FALLBACK_PRIOR, LengthPrior

    if not config.length_prior:
        if config.length_from:
            raise ValueError("--length-from sets the length prior, which --no-length-prior turns off; pass one of them")
        return None
    if config.length_from:
        prior = LengthPrior.from_text(config.length_from, tokenizer)
    else:
        prior = LengthPrior.from_model_dir(config.model, tokenizer) or FALLBACK_PRIOR
    logger.info("length prior: %s", prior.source)
    return prior


def generate_from_config(config: GenerateConfig) -> list[dict[str, Any]]:
    """Load ``config.model`` and run :func:`fnet.generation.generate` with the config's options."""
    from fnet import harness
    from fnet.generation import generate, load_generator

    config.validate()
    with harness.start(config, command="generate") as run:
        model, tokenizer = load_generator(config.model)
        prior = resolve_length_prior(config, tokenizer)
        annealing = {} if config.final_temperature is None else {"final_temperature": config.final_temperature}
        with run.autocast():
            return generate(model.to(run.device), tokenizer, list(config.keywords), num_samples=config.num_samples,
                            steps=config.steps, seed=config.seed, temperature=config.temperature,
                            min_length=config.min_length, max_length=config.max_length,
                            length_bonus=config.length_bonus, length_prior=prior, **annealing)
