"""fnet: FNet encoders (Fourier token mixing) and their BERT-family relatives.

The public API is re-exported here lazily, so ``import fnet`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_EXPORTS: dict[str, str] = {
    "FNetConfig": "fnet.config",
    "PRESETS": "fnet.config",
    "fourier_transform": "fnet.fourier",
    "fft_fourier_transform": "fnet.fourier",
    "dft_fourier_transform": "fnet.fourier",
    "FNetTokenizer": "fnet.tokenization",
    "FNetTokenizerFast": "fnet.tokenization",
    "WordPieceTokenizer": "fnet.tokenization",
    "AutoTokenizer": "fnet.tokenization",
    "optimize_for_inference": "fnet.optimize",
    "optimize_for_training": "fnet.optimize",
    "quantize": "fnet.optimize",
    "configure_allocator": "fnet.runtime",
    "TemperatureScaling": "fnet.calibration",
    "calibration_report": "fnet.calibration",
    "generate": "fnet.generation",
    "grow": "fnet.growth",
    "encode": "fnet.embeddings",
    "DistillConfig": "fnet.training.distill",
    "distill": "fnet.training.distill",
}
for _name in (
    "FNetEmbeddings FNetBasicFourierTransform FNetFourierTransform FNetBasicOutput FNetOutput "
    "FNetIntermediate FNetLayer FNetEncoder FNetPooler FNetPredictionHeadTransform FNetLMPredictionHead "
    "FNetOnlyMLMHead FNetOnlyNSPHead FNetPreTrainingHeads FNetPreTrainedModel FNetModel FNetForPreTraining "
    "FNetForMaskedLM FNetForNextSentencePrediction FNetForSequenceClassification FNetForMultipleChoice "
    "FNetForTokenClassification FNetForQuestionAnswering FNetModelOutput FNetForPreTrainingOutput "
    "MaskedLMOutput NextSentencePredictorOutput SequenceClassifierOutput MultipleChoiceModelOutput "
    "TokenClassifierOutput QuestionAnsweringModelOutput"
).split():
    _EXPORTS[_name] = "fnet.modeling"

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
