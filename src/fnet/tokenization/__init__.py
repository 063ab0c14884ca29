"""Tokenizers for FNet and BERT: SentencePiece ``FNetTokenizer`` and WordPiece ``WordPieceTokenizer`` on a
shared, kind-independent base, chosen by ``AutoTokenizer``.

    normalization.py            text -> what SentencePiece sees (whitespace, quotes, accents, case)
    offsets.py                  piece spans -> character spans into the original text
    encoding.py                 input checks, truncation, padding, ``BatchEncoding``
    base.py                     ``TokenizerBase``: __call__, pairs, padding, save/load (all kinds)
    sentencepiece_tokenizer.py  ``FNetTokenizer`` (SentencePiece, ``spiece.model``, or a Unigram ``tokenizer.json``)
    unigram_json.py             a Unigram ``tokenizer.json`` (transformers 5) behind FNetTokenizer, via ``tokenizers``
    wordpiece.py                ``WordPieceTokenizer`` (BERT, ``tokenizer.json``/``vocab.txt``, via ``tokenizers``)
    auto.py                     ``AutoTokenizer.from_pretrained(folder_or_hub_id)``: the kind by the files present
    training.py                 SentencePiece training from text files
"""

from fnet.tokenization.auto import AutoTokenizer
from fnet.tokenization.base import TokenizerBase, TokenizerFileError
from fnet.tokenization.encoding import BatchEncoding
from fnet.tokenization.normalization import clean_up_tokenization
from fnet.tokenization.offsets import SPIECE_UNDERLINE
from fnet.tokenization.sentencepiece_tokenizer import FNetTokenizer
from fnet.tokenization.wordpiece import WordPieceTokenizer

# transformers 5 keeps FNetTokenizerFast as another name of FNetTokenizer (which is already "fast")
FNetTokenizerFast = FNetTokenizer

__all__ = ["AutoTokenizer", "FNetTokenizer", "FNetTokenizerFast", "WordPieceTokenizer", "TokenizerBase", "BatchEncoding",
           "SPIECE_UNDERLINE", "TokenizerFileError", "clean_up_tokenization"]
