"""Tokenizers for FNet: the SentencePiece ``FNetTokenizer`` on a shared, kind-independent base.

    normalization.py            text -> what SentencePiece sees (whitespace, quotes, accents, case)
    offsets.py                  piece spans -> character spans into the original text
    encoding.py                 input checks, truncation, padding, ``BatchEncoding``
    base.py                     ``TokenizerBase``: __call__, pairs, padding, save/load (all kinds)
    sentencepiece_tokenizer.py  ``FNetTokenizer`` (SentencePiece, ``spiece.model``)
    training.py                 SentencePiece training from text files
"""

from fnet.tokenization.base import TokenizerBase, TokenizerFileError
from fnet.tokenization.encoding import BatchEncoding
from fnet.tokenization.normalization import clean_up_tokenization
from fnet.tokenization.offsets import SPIECE_UNDERLINE
from fnet.tokenization.sentencepiece_tokenizer import FNetTokenizer

__all__ = ["FNetTokenizer", "TokenizerBase", "BatchEncoding", "SPIECE_UNDERLINE", "TokenizerFileError",
           "clean_up_tokenization"]
