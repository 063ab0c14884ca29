"""Pretraining data, BERT style: raw text -> token shards on disk -> segment pairs -> MLM/NSP batches.

The pipeline has three stages, each a function or class of this module:

1. **Reading** (:func:`iter_documents`): documents are separated by blank lines; every non-blank line
   is a sentence, except that a long line (a paragraph or a whole speech on one line) is cut into
   sentences by a small regex splitter. Invalid UTF-8 and empty files raise ``ValueError`` naming the
   file, the line and the byte offset.
2. **Sharding** (:func:`build_shards`): the text is tokenised while it streams and written as numpy
   shards (token ids + sentence and document boundaries), so a corpus larger than RAM works. The
   shards are memory-mapped by :class:`ShardedCorpus`; only the boundary tables live in RAM.
3. **Pairs and masks**: :func:`create_instances` follows BERT's ``create_pretraining_data`` (segments
   filling ``max_num_tokens = seq_len - 3``, the short-sequence probability, 50% true next segment /
   50% a random segment of another document with unused sentences put back, random truncation).
   It is run once per epoch with that epoch's generator, so the pairs change between epochs.
   :class:`PretrainingBatches` turns pairs into ``[CLS] A [SEP] B [SEP]`` rows and masks them
   dynamically (:func:`mask_tokens`) with a generator seeded by (seed, epoch, instance index): the
   same instance gets the same mask whatever the batching, rank count or resume point.

The loss on these batches is :mod:`fnet.training.objectives`; the run is :mod:`fnet.training.pretrain`.

Legend for shape comments: ``b`` batch, ``n`` sequence length, ``m`` instances.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fnet.data.tokenizer import Tokenizer
from fnet.io import atomic_write, atomic_write_text

# Bump when reading, splitting or the shard layout changes: old caches are then rebuilt.
SHARD_FORMAT_VERSION = 1
# Lines longer than this many characters are treated as paragraphs and split into sentences.
LONG_LINE_CHARS = 400
# A sentence ends at . ! ? (plus closing quotes/brackets), before whitespace and an upper-case letter,
# a digit or an opening quote. Simple on purpose: abbreviations ("Mr. Smith") split wrongly, which
# only makes a few segments shorter.
_SENTENCE_END = re.compile(r"([.!?][\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")

# column layout of an instance row: token spans of segment A and B (global positions) and the NSP label
A_START, A_END, B_START, B_END, IS_RANDOM_NEXT = range(5)


# ----------------------------------------------------------------------------- reading


def split_sentences(line: str) -> list[str]:
    """Cut a long line into sentences; a line of at most ``LONG_LINE_CHARS`` characters is one sentence."""
    line = line.strip()
    if len(line) <= LONG_LINE_CHARS:
        return [line] if line else []
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        sentences.append(line[start:match.end(1)])
        start = match.end()
    sentences.append(line[start:])
    return [s.strip() for s in sentences if s.strip()]


def iter_documents(path: str | os.PathLike) -> Iterator[list[str]]:
    """Yield the documents of a text file, each a list of sentences, reading it line by line.

    Raises ``ValueError`` naming the file, line and byte offset for invalid UTF-8, and naming the
    file for a file without any text.
    """
    from fnet.io import utf8_lines

    path = Path(path)
    document: list[str] = []
    lineno, has_text = 0, False
    for lineno, line in utf8_lines(path):
        sentences = split_sentences(line)
        if sentences:
            has_text = True
            document.extend(sentences)
        elif document:  # a blank line ends the document
            yield document
            document = []
    if document:
        yield document
    if not has_text:
        raise ValueError(f"{path}: line {max(lineno, 1)}: the file has no text (it is empty or blank)")


# ----------------------------------------------------------------------------- sharding


def _tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    digest = hashlib.sha256()
    sp_model = getattr(tokenizer, "sp_model", None)
    if sp_model is not None:
        digest.update(sp_model.serialized_model_proto())
    backend = getattr(tokenizer, "backend_tokenizer", None)  # WordPiece: the whole tokenizers pipeline
    if backend is not None:
        digest.update(backend.to_str().encode())
    digest.update(json.dumps([len(tokenizer), sorted(tokenizer.all_special_ids), type(tokenizer).__name__]).encode())
    # the tokenizer's own preprocessing options change the ids too
    for name in ("do_lower_case", "remove_space", "keep_accents"):
        digest.update(f"{name}={getattr(tokenizer, name, None)}".encode())
    return digest.hexdigest()


def shard_cache_key(files: Sequence[str | os.PathLike], tokenizer: Tokenizer) -> str:
    """Hash of the files (path, size, mtime), the tokenizer and the shard format."""
    stats = []
    for name in files:
        path = Path(name).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"text file not found: {name}")
        info = path.stat()
        stats.append([str(path), info.st_size, info.st_mtime_ns])
    blob = json.dumps({"files": stats, "tokenizer": _tokenizer_fingerprint(tokenizer), "format": SHARD_FORMAT_VERSION,
                       "long_line_chars": LONG_LINE_CHARS})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode(tokenizer: Tokenizer, sentences: list[str]) -> list[list[int]]:
    import warnings

    with warnings.catch_warnings():  # long sentences are expected here: pairs are truncated later
        warnings.simplefilter("ignore")
        return list(tokenizer(sentences, add_special_tokens=False)["input_ids"])


def _save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, array, allow_pickle=False))


def build_shards(
    files: Sequence[str | os.PathLike],
    tokenizer: Tokenizer,
    cache_dir: str | os.PathLike,
    shard_tokens: int = 1 << 24,
    encode_batch: int = 2048,
    progress: bool = False,
) -> Path:
    """Tokenise ``files`` into shards under ``cache_dir/<key>/`` and return that directory.

    A shard ``shard-XXXXX`` is three ``.npy`` arrays: ``tokens`` (uint16, or int32 for vocabularies
    above 65,535), ``sentences`` (int64 (s+1,) token offsets of sentence starts) and ``documents``
    (int64 (d+1,) sentence offsets of document starts). A shard is closed at a document boundary once
    it holds ``shard_tokens`` tokens. ``meta.json`` is written last, so a directory without it is an
    interrupted build and is redone. An existing complete cache for the same key is reused.
    Memory: one shard and one document at a time (a single document must fit in RAM).
    """
    files = [str(f) for f in files]
    if not files:
        raise ValueError("no text files given")
    root = Path(cache_dir) / shard_cache_key(files, tokenizer)
    meta_path = root / "meta.json"
    if meta_path.is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.int32
    shards: list[dict[str, int]] = []
    state = {"tokens": [], "sent_lengths": [], "doc_sizes": [], "n_tokens": 0}

    def flush() -> None:
        if not state["doc_sizes"]:
            return
        name = f"shard-{len(shards):05d}"
        tokens = np.concatenate(state["tokens"]).astype(dtype) if state["tokens"] else np.zeros(0, dtype)
        sentences = np.concatenate([[0], np.cumsum(state["sent_lengths"], dtype=np.int64)]).astype(np.int64)
        documents = np.concatenate([[0], np.cumsum(state["doc_sizes"], dtype=np.int64)]).astype(np.int64)
        _save_npy(root / f"{name}-tokens.npy", tokens)
        _save_npy(root / f"{name}-sentences.npy", sentences)
        _save_npy(root / f"{name}-documents.npy", documents)
        shards.append({"name": name, "tokens": int(tokens.size), "sentences": len(sentences) - 1,
                       "documents": len(documents) - 1})
        state.update(tokens=[], sent_lengths=[], doc_sizes=[], n_tokens=0)

    pending_docs: list[list[str]] = []
    pending_sentences = 0

    def encode_pending() -> None:
        nonlocal pending_docs, pending_sentences
        flat = [s for doc in pending_docs for s in doc]
        ids = _encode(tokenizer, flat) if flat else []
        position = 0
        for doc in pending_docs:
            doc_ids = [row for row in ids[position:position + len(doc)] if len(row)]
            position += len(doc)
            if not doc_ids:
                continue
            state["tokens"].extend(np.asarray(row, dtype=dtype) for row in doc_ids)
            state["sent_lengths"].extend(len(row) for row in doc_ids)
            state["doc_sizes"].append(len(doc_ids))
            state["n_tokens"] += sum(len(row) for row in doc_ids)
            if state["n_tokens"] >= shard_tokens:
                flush()
        pending_docs, pending_sentences = [], 0

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(Path(f).stat().st_size for f in files), unit="B", unit_scale=True, desc="tokenising")
    for name in files:
        for document in iter_documents(name):
            pending_docs.append(document)
            pending_sentences += len(document)
            if bar is not None:
                bar.update(sum(len(s) for s in document))
            if pending_sentences >= encode_batch:
                encode_pending()
    encode_pending()
    flush()
    if bar is not None:
        bar.close()
    if not shards:
        raise ValueError(f"the text files {files} produced no tokens")
    meta = {"format": SHARD_FORMAT_VERSION, "files": files, "dtype": np.dtype(dtype).name, "shards": shards,
            "vocab_size": len(tokenizer), "tokens": sum(s["tokens"] for s in shards),
            "sentences": sum(s["sentences"] for s in shards), "documents": sum(s["documents"] for s in shards)}
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    return root


class ShardedCorpus:
    """Memory-mapped shards with global sentence and document tables.

    Token positions are global: shard ``k`` covers ``[token_base[k], token_base[k+1])``. Sentences of a
    document are contiguous, so a run of sentences is one token span. RAM holds only the boundary
    tables (8 bytes per sentence and per document).
    """

    def __init__(self, directory: str | os.PathLike):
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{directory} is not a complete shard directory (no meta.json)")
        self.meta = json.loads(meta_path.read_text())
        self.directory = directory
        self.shards: list[np.ndarray] = []
        sentence_starts, doc_starts = [], []
        token_base, sentence_base = 0, 0
        bases = [0]
        for shard in self.meta["shards"]:
            name = shard["name"]
            tokens = np.load(directory / f"{name}-tokens.npy", mmap_mode="r")
            sentences = np.load(directory / f"{name}-sentences.npy")
            documents = np.load(directory / f"{name}-documents.npy")
            self.shards.append(tokens)
            sentence_starts.append(sentences[:-1] + token_base)
            doc_starts.append(documents[:-1] + sentence_base)
            token_base += int(tokens.size)
            sentence_base += len(sentences) - 1
            bases.append(token_base)
        self.token_base = np.asarray(bases, dtype=np.int64)  # (shards+1,)
        # (s+1,) global token position where each sentence starts (last = end of the corpus)
        self.sentence_starts = np.concatenate(sentence_starts + [[token_base]]).astype(np.int64)
        # (d+1,) global sentence index where each document starts
        self.doc_starts = np.concatenate(doc_starts + [[sentence_base]]).astype(np.int64)

    @property
    def num_documents(self) -> int:
        return len(self.doc_starts) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.token_base[-1])

    def tokens(self, start: int, end: int) -> np.ndarray:
        """Token ids of the global span ``[start, end)`` (which never crosses a shard)."""
        shard = int(np.searchsorted(self.token_base, start, side="right")) - 1
        base = int(self.token_base[shard])
        return np.asarray(self.shards[shard][start - base:end - base], dtype=np.int64)


# ----------------------------------------------------------------------------- segment pairs


def _truncate_pair(len_a: int, len_b: int, max_num_tokens: int, rng: np.random.Generator):
    """BERT's truncate_seq_pair: cut one token at a time from the longer segment, from its front or
    back at random. Returns tokens to drop (a_front, a_back, b_front, b_back)."""
    total = len_a + len_b
    excess = max(0, total - max_num_tokens)
    if excess == 0:
        return 0, 0, 0, 0
    # the longer segment loses tokens until both are equal, then they alternate (ties cut from b)
    first = min(excess, abs(len_a - len_b))
    rest = excess - first
    cut_a = (first if len_a > len_b else 0) + rest // 2
    cut_b = (first if len_b >= len_a else 0) + rest - rest // 2
    a_front = int(rng.binomial(cut_a, 0.5)) if cut_a else 0
    b_front = int(rng.binomial(cut_b, 0.5)) if cut_b else 0
    return a_front, cut_a - a_front, b_front, cut_b - b_front


def create_instances(
    corpus: ShardedCorpus,
    max_num_tokens: int,
    rng: np.random.Generator,
    short_seq_prob: float = 0.1,
    nsp_random_prob: float = 0.5,
) -> np.ndarray:
    """Segment pairs of every document, BERT's algorithm; returns an int64 (m, 5) array of
    ``[a_start, a_end, b_start, b_end, is_random_next]`` (global token spans, NSP label 1 = random).

    Differences from BERT's script: the target length is redrawn for every chunk (not once per
    document, which made long documents almost never short), and truncation draws how many tokens go
    from the front with one binomial instead of one coin per token (the same distribution).
    """
    if max_num_tokens < 2:
        raise ValueError(f"max_num_tokens must be >= 2 (seq_len >= 5), got {max_num_tokens}")
    starts = corpus.sentence_starts
    doc_starts = corpus.doc_starts
    n_docs = corpus.num_documents
    rows: list[tuple[int, int, int, int, int]] = []

    def draw_target() -> int:
        if rng.random() < short_seq_prob:
            return int(rng.integers(2, max_num_tokens + 1))
        return max_num_tokens

    for doc in range(n_docs):
        first, last = int(doc_starts[doc]), int(doc_starts[doc + 1])  # sentences [first, last)
        target = draw_target()
        chunk_start, length = first, 0
        i = first
        while i < last:
            length += int(starts[i + 1] - starts[i])
            if i == last - 1 or length >= target:
                n_chunk = i + 1 - chunk_start
                a_sents = 1 if n_chunk < 2 else int(rng.integers(1, n_chunk))
                a_start, a_end = int(starts[chunk_start]), int(starts[chunk_start + a_sents])
                if n_chunk == 1 or rng.random() < nsp_random_prob:
                    is_random = 1
                    target_b = target - (a_end - a_start)
                    other = doc
                    for _ in range(10):
                        other = int(rng.integers(0, n_docs))
                        if other != doc:
                            break
                    o_first, o_last = int(doc_starts[other]), int(doc_starts[other + 1])
                    j = int(rng.integers(o_first, o_last))
                    b_start = int(starts[j])
                    while j < o_last and int(starts[j]) - b_start < target_b:
                        j += 1
                    b_end = int(starts[j]) if int(starts[j]) > b_start else int(starts[j + 1])
                    # the sentences of the chunk that B did not use go back for the next chunk
                    i -= n_chunk - a_sents
                else:
                    is_random = 0
                    b_start, b_end = a_end, int(starts[i + 1])
                a_front, a_back, b_front, b_back = _truncate_pair(a_end - a_start, b_end - b_start, max_num_tokens, rng)
                rows.append((a_start + a_front, a_end - a_back, b_start + b_front, b_end - b_back, is_random))
                chunk_start, length = i + 1, 0
                target = draw_target()
            i += 1
    return np.asarray(rows, dtype=np.int64).reshape(-1, 5)


# ----------------------------------------------------------------------------- masking


@dataclass
class MaskingConfig:
    """How MLM positions are chosen and replaced (BERT's defaults)."""

    mlm_prob: float = 0.15  # share of non-special tokens that are predicted
    mask_prob: float = 0.8  # of those: replaced by [MASK]
    random_prob: float = 0.1  # of those: replaced by a random non-special token (the rest stay unchanged)
    whole_word: bool = False  # mask all pieces of a word together (tokenizer.word_start_mask says where words start)

    def validate(self) -> None:
        if not 0.0 < self.mlm_prob < 1.0:
            raise ValueError(f"mlm_prob must be in (0, 1), got {self.mlm_prob}")
        if self.mask_prob < 0 or self.random_prob < 0 or self.mask_prob + self.random_prob > 1:
            raise ValueError(f"mask_prob + random_prob must be within [0, 1], got {self.mask_prob} + {self.random_prob}")


def mask_tokens(
    input_ids: np.ndarray,
    special: np.ndarray,
    rng: np.random.Generator,
    config: MaskingConfig,
    mask_token_id: int,
    random_ids: np.ndarray,
    word_start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask one row. ``input_ids`` (n,), ``special`` (n,) bool: positions never masked (specials, pads).

    As in BERT, exactly ``max(1, round(mlm_prob * candidates))`` tokens are predicted (with whole-word
    masking: whole words are added while they fit). Each predicted position becomes ``[MASK]`` with
    ``mask_prob``, a token drawn from ``random_ids`` with ``random_prob``, else stays. ``word_start``
    (vocab,) bool marks pieces that begin a word. Returns (masked ids (n,), labels (n,) with -100 at
    positions that are not predicted).
    """
    candidates = np.flatnonzero(~special)
    labels = np.full(input_ids.shape, -100, dtype=np.int64)
    if candidates.size == 0:
        return input_ids.copy(), labels
    n_predict = max(1, int(round(candidates.size * config.mlm_prob)))
    if config.whole_word and word_start is not None:
        starts_word = word_start[input_ids[candidates]]
        # a candidate that follows a gap (a special token) starts a new word as well
        starts_word[0] = True
        starts_word[1:] |= np.diff(candidates) > 1
        word_bounds = np.concatenate([np.flatnonzero(starts_word), [candidates.size]])
        chosen: list[int] = []
        for w in rng.permutation(len(word_bounds) - 1):
            size = int(word_bounds[w + 1] - word_bounds[w])
            if len(chosen) + size > n_predict:
                continue
            chosen.extend(candidates[word_bounds[w]:word_bounds[w + 1]])
            if len(chosen) == n_predict:
                break
        positions = np.sort(np.asarray(chosen, dtype=np.int64))
    else:
        positions = np.sort(rng.choice(candidates, size=n_predict, replace=False))
    labels[positions] = input_ids[positions]
    masked = input_ids.copy()
    draw = rng.random(positions.size)
    to_mask = positions[draw < config.mask_prob]
    to_random = positions[(draw >= config.mask_prob) & (draw < config.mask_prob + config.random_prob)]
    masked[to_mask] = mask_token_id
    masked[to_random] = rng.choice(random_ids, size=to_random.size)
    return masked, labels


# ----------------------------------------------------------------------------- batches


class PretrainingBatches:
    """MLM + NSP examples of a :class:`ShardedCorpus`, as fixed-length rows; epoch-indexed.

    ``num_examples(epoch)`` and ``collate(epoch, indices)`` are what the step-indexed batcher
    (:class:`fnet.data.collate.StepBatches`) needs. Instances of an epoch are built on first use
    with the generator ``(seed, epoch)``; masks with ``(seed, epoch, index)``.
    """

    def __init__(
        self,
        corpus: ShardedCorpus,
        tokenizer: Tokenizer,
        seq_len: int = 128,
        seed: int = 0,
        short_seq_prob: float = 0.1,
        masking: MaskingConfig | None = None,
        nsp_random_prob: float = 0.5,
    ):
        if seq_len < 5:
            raise ValueError(f"seq_len must be >= 5 ([CLS] A [SEP] B [SEP]), got {seq_len}")
        if not 0.0 <= short_seq_prob <= 1.0:
            raise ValueError(f"short_seq_prob must be in [0, 1], got {short_seq_prob}")
        if nsp_random_prob > 0 and corpus.num_documents < 2:
            raise ValueError(
                f"the text of {', '.join(corpus.meta.get('files', [])) or 'the corpus'} is a single document (documents are separated "
                "by blank lines, and there are none): next-sentence prediction draws its random segments from other "
                "documents, so put a blank line between documents")
        self.corpus, self.seq_len, self.seed = corpus, seq_len, seed
        self.short_seq_prob, self.nsp_random_prob = short_seq_prob, nsp_random_prob
        self.masking = masking or MaskingConfig()
        self.masking.validate()
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.pad_id, self.mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
        vocab = len(tokenizer)
        specials = np.zeros(vocab, dtype=bool)
        specials[[i for i in tokenizer.all_special_ids if i < vocab]] = True
        self.special_ids = specials  # (vocab,) bool
        self.random_ids = np.flatnonzero(~specials)  # replacement tokens: every non-special id
        self.word_start = None
        if self.masking.whole_word:
            self.word_start = np.asarray(tokenizer.word_start_mask(), dtype=bool)  # (vocab,)
        self._instances: dict[int, np.ndarray] = {}

    def instances(self, epoch: int) -> np.ndarray:
        if epoch not in self._instances:
            rng = np.random.default_rng([self.seed, epoch])
            self._instances = {epoch: create_instances(self.corpus, self.seq_len - 3, rng, self.short_seq_prob,
                                                       self.nsp_random_prob)}
            if len(self._instances[epoch]) == 0:
                raise ValueError("the corpus produced no segment pairs")
        return self._instances[epoch]

    def num_examples(self, epoch: int) -> int:
        return len(self.instances(epoch))

    def example(self, epoch: int, index: int) -> dict[str, np.ndarray]:
        """One unmasked-then-masked row: (n,) arrays input_ids, token_type_ids, attention_mask, labels."""
        a_start, a_end, b_start, b_end, is_random = (int(x) for x in self.instances(epoch)[index])
        a, b = self.corpus.tokens(a_start, a_end), self.corpus.tokens(b_start, b_end)
        n = self.seq_len
        ids = np.full(n, self.pad_id, dtype=np.int64)
        row = np.concatenate([[self.cls_id], a, [self.sep_id], b, [self.sep_id]])
        ids[:row.size] = row
        types = np.zeros(n, dtype=np.int64)
        types[a.size + 2:row.size] = 1
        attention = np.zeros(n, dtype=np.int64)
        attention[:row.size] = 1
        special = attention == 0
        special[[0, a.size + 1, row.size - 1]] = True
        rng = np.random.default_rng([self.seed, epoch, index, 1])
        masked, labels = mask_tokens(ids, special, rng, self.masking, self.mask_id, self.random_ids, self.word_start)
        return {"input_ids": masked, "token_type_ids": types, "attention_mask": attention, "labels": labels,
                "next_sentence_label": np.int64(is_random)}

    def collate(self, epoch: int, indices: Iterable[int]) -> dict[str, torch.Tensor]:
        """A batch: (b, n) long tensors plus ``next_sentence_label`` (b,)."""
        rows = [self.example(epoch, int(i)) for i in indices]
        return {key: torch.from_numpy(np.stack([r[key] for r in rows])) for key in rows[0]}
