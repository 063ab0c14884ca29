"""Pretraining data: reading, shards, BERT segment pairs, NSP balance, dynamic (whole-word) masking."""

from __future__ import annotations

import numpy as np
import pytest

from fnet.data.collate import StepBatches
from fnet.data.pretraining import (
    LONG_LINE_CHARS, MaskingConfig, PretrainingBatches, ShardedCorpus, build_shards, create_instances,
    iter_documents, mask_tokens, split_sentences,
)

from pretraining_helpers import one_thread, train_tokenizer, write_corpus  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretraining_data")
    corpus = write_corpus(root / "corpus.txt", n_docs=60, one_line_docs=3)
    tokenizer = train_tokenizer(corpus, root / "tok")
    shards = build_shards([corpus], tokenizer, root / "cache", shard_tokens=2000)
    return root, corpus, tokenizer, ShardedCorpus(shards)


# ----------------------------------------------------------------------------- reading


def test_split_sentences_only_long_lines():
    short = "Mr. Smith went. He came back."
    assert split_sentences(short) == [short]
    long = " ".join(f"Sentence number {i} is here." for i in range(40))
    assert len(long) > LONG_LINE_CHARS
    parts = split_sentences(long)
    assert parts == [f"Sentence number {i} is here." for i in range(40)]


def test_documents_are_separated_by_blank_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffFirst line.\nSecond line.\n\n\n  \nOther doc.\n\n".encode())
    assert list(iter_documents(path)) == [["First line.", "Second line."], ["Other doc."]]


def test_invalid_utf8_names_file_line_and_byte(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good line\nsecond \xff line\n")
    with pytest.raises(ValueError) as err:
        list(iter_documents(path))
    message = str(err.value)
    assert str(path) in message and "line 2" in message and "byte offset 17" in message, message


@pytest.mark.parametrize("content", [b"", b"\n\n   \n"])
def test_empty_input_names_file_and_line(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"empty\.txt: line \d+: the file has no text"):
        list(iter_documents(path))


# ----------------------------------------------------------------------------- shards


def test_shard_round_trip(setup):
    root, corpus_file, tokenizer, corpus = setup
    assert len(corpus.shards) > 1, "shard_tokens=2000 must give several shards"
    assert corpus.shards[0].dtype == np.uint16
    documents = list(iter_documents(corpus_file))
    assert corpus.num_documents == len(documents)
    for d, document in enumerate(documents):
        first, last = corpus.doc_starts[d], corpus.doc_starts[d + 1]
        assert last - first == len(document)
        for s, sentence in enumerate(document):
            start, end = corpus.sentence_starts[first + s], corpus.sentence_starts[first + s + 1]
            expected = tokenizer(sentence, add_special_tokens=False)["input_ids"]
            assert corpus.tokens(int(start), int(end)).tolist() == expected, f"doc {d} sentence {s}"


def test_shard_cache_is_reused_and_keyed_on_the_files(setup, tmp_path):
    root, corpus_file, tokenizer, corpus = setup
    again = build_shards([corpus_file], tokenizer, root / "cache", shard_tokens=2000)
    assert again == corpus.directory
    other = write_corpus(tmp_path / "other.txt", n_docs=5, seed=1)
    assert build_shards([other], tokenizer, root / "cache") != corpus.directory


# ----------------------------------------------------------------------------- pairs


def test_pairs_fit_and_nsp_is_balanced(setup):
    _, _, _, corpus = setup
    max_num_tokens = 61
    labels, true_next_contiguous = [], 0
    for epoch in range(4):
        rows = create_instances(corpus, max_num_tokens, np.random.default_rng([0, epoch]))
        a_len, b_len = rows[:, 1] - rows[:, 0], rows[:, 3] - rows[:, 2]
        assert (a_len >= 1).all() and (b_len >= 1).all()
        assert (a_len + b_len <= max_num_tokens).all(), (a_len + b_len).max()
        true = rows[rows[:, 4] == 0]
        true_next_contiguous += int((true[:, 2] >= true[:, 1]).all())
        labels.append(rows[:, 4])
    labels = np.concatenate(labels)
    assert abs(labels.mean() - 0.5) < 0.06, f"random-next share {labels.mean():.3f} over {labels.size} pairs"
    assert true_next_contiguous == 4


def test_random_next_comes_from_another_document(setup):
    _, _, _, corpus = setup
    rows = create_instances(corpus, 61, np.random.default_rng(3))
    doc_of = lambda pos: np.searchsorted(corpus.sentence_starts, pos, side="right") - 1  # noqa: E731
    docs_a = np.searchsorted(corpus.doc_starts, doc_of(rows[:, 0]), side="right") - 1
    docs_b = np.searchsorted(corpus.doc_starts, doc_of(rows[:, 2]), side="right") - 1
    random_next = rows[:, 4] == 1
    assert (docs_a[~random_next] == docs_b[~random_next]).all()
    assert (docs_a[random_next] != docs_b[random_next]).mean() > 0.97


def test_unused_segments_are_put_back(setup):
    """Every sentence start of the corpus lands in segment A or a true-next B (BERT re-uses the
    sentences a random B displaced); only truncation may drop a few tokens."""
    _, _, _, corpus = setup
    rows = create_instances(corpus, 200, np.random.default_rng(0), short_seq_prob=0.0)
    covered = np.zeros(corpus.num_tokens, dtype=bool)
    for a0, a1, b0, b1, is_random in rows:
        covered[a0:a1] = True
        if not is_random:
            covered[b0:b1] = True
    assert covered.mean() > 0.97, covered.mean()


def test_short_sequence_probability(setup):
    _, _, _, corpus = setup

    def lengths(p):
        rows = create_instances(corpus, 61, np.random.default_rng(1), short_seq_prob=p)
        return (rows[:, 1] - rows[:, 0]) + (rows[:, 3] - rows[:, 2])

    full, short = lengths(0.0), lengths(1.0)
    # without short targets most pairs fill max_num_tokens (the rest end a document)
    assert (full == 61).mean() > 0.6 and (short == 61).mean() < 0.5 * (full == 61).mean()
    assert short.mean() < 0.75 * full.mean(), (short.mean(), full.mean())


# ----------------------------------------------------------------------------- masking


def test_mask_statistics_over_many_draws():
    rng = np.random.default_rng(0)
    vocab = 500
    special_ids = np.arange(7)
    random_ids = np.arange(7, vocab)
    config = MaskingConfig()
    masked_share, kinds = [], {"mask": 0, "random": 0, "same": 0}
    for _ in range(2000):
        ids = rng.integers(7, vocab, size=64)
        special = np.zeros(64, dtype=bool)
        ids[0], ids[20], ids[50:] = 4, 5, 3  # [CLS] ... [SEP] ... pads
        special[[0, 20]] = True
        special[50:] = True
        out, labels = mask_tokens(ids, special, rng, config, 6, random_ids)
        chosen = labels != -100
        assert not chosen[special].any(), "a special token or pad was masked"
        assert (out[special] == ids[special]).all()
        assert (labels[chosen] == ids[chosen]).all()
        assert (out[~chosen] == ids[~chosen]).all()
        masked_share.append(chosen.sum() / (~special).sum())
        kinds["mask"] += int((out[chosen] == 6).sum())
        replaced = out[chosen] != ids[chosen]
        kinds["random"] += int((replaced & (out[chosen] != 6)).sum())
        kinds["same"] += int((~replaced).sum())
        assert not np.isin(out[chosen & (out != 6)], special_ids).any(), "random replacement drew a special id"
    total = sum(kinds.values())
    assert abs(np.mean(masked_share) - 0.15) < 0.005, np.mean(masked_share)
    assert abs(kinds["mask"] / total - 0.8) < 0.015, kinds
    # a random draw equals the original token with probability 1/493: counted as "same"
    assert abs(kinds["random"] / total - 0.1) < 0.01, kinds
    assert abs(kinds["same"] / total - 0.1) < 0.01, kinds


def test_batches_mask_dynamically_and_reproducibly(setup):
    _, _, tokenizer, corpus = setup
    data = PretrainingBatches(corpus, tokenizer, seq_len=64, seed=0)
    first = data.collate(0, range(32))
    again = PretrainingBatches(corpus, tokenizer, seq_len=64, seed=0).collate(0, range(32))
    for key in first:
        assert (first[key] == again[key]).all(), key
    assert (data.collate(0, [5])["labels"][0] == first["labels"][5]).all(), "masks depend on batching"
    next_epoch = data.collate(1, range(32))
    assert (next_epoch["labels"] != first["labels"]).any(), "masks are not re-drawn each epoch"

    specials = set(tokenizer.all_special_ids)
    shares, nsp = [], []
    for epoch in range(3):
        batch = data.collate(epoch, range(data.num_examples(epoch)))
        ids, labels, types, attention = (batch[k].numpy() for k in ("input_ids", "labels", "token_type_ids", "attention_mask"))
        nsp.extend(batch["next_sentence_label"].tolist())
        for row in range(ids.shape[0]):
            n = int(attention[row].sum())
            seps = np.flatnonzero(ids[row, :n] == tokenizer.sep_token_id)
            original = np.where(labels[row] != -100, labels[row], ids[row])
            assert original[0] == tokenizer.cls_token_id and original[n - 1] == tokenizer.sep_token_id
            assert (ids[row, n:] == tokenizer.pad_token_id).all() and (labels[row, n:] == -100).all()
            first_sep = np.flatnonzero(original[:n] == tokenizer.sep_token_id)[0]
            assert (types[row, :first_sep + 1] == 0).all() and (types[row, first_sep + 1:n] == 1).all()
            assert (types[row, n:] == 0).all()
            assert not any(int(original[p]) in specials for p in np.flatnonzero(labels[row] != -100))
            assert seps.size >= 1
            shares.append((labels[row] != -100).sum() / (n - 3))
    assert abs(np.mean(shares) - 0.15) < 0.01
    assert abs(np.mean(nsp) - 0.5) < 0.06


def test_whole_word_masking_masks_whole_words(setup):
    _, _, tokenizer, corpus = setup
    data = PretrainingBatches(corpus, tokenizer, seq_len=64, seed=0, masking=MaskingConfig(whole_word=True))
    batch = data.collate(0, range(data.num_examples(0)))
    pieces_per_word = []
    for ids, labels, attention in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        n = int(attention.sum())
        original = np.where(labels.numpy() != -100, labels.numpy(), ids.numpy())[:n]
        tokens = tokenizer.convert_ids_to_tokens(original.tolist())
        chosen = (labels.numpy() != -100)[:n]
        # split into words: a word starts at a "▁" piece or a special token
        starts = [i for i, t in enumerate(tokens) if t.startswith("\u2581") or original[i] in tokenizer.all_special_ids
                  or (i > 0 and original[i - 1] in tokenizer.all_special_ids)]
        bounds = starts + [n]
        for s, e in zip(bounds[:-1], bounds[1:]):
            word = chosen[s:e]
            assert word.all() or not word.any(), f"partly masked word {tokens[s:e]} -> {word.tolist()}"
            if word.all():
                pieces_per_word.append(e - s)
    assert max(pieces_per_word) > 1, "no multi-piece word was masked: the test corpus is too simple"
    share = (batch["labels"] != -100).sum().item() / (batch["attention_mask"].sum().item() - 3 * len(batch["labels"]))
    assert 0.12 < share <= 0.155, share


# ----------------------------------------------------------------------------- step batches


def test_ranks_take_disjoint_parts_of_the_global_batch(setup):
    _, _, tokenizer, corpus = setup
    data = PretrainingBatches(corpus, tokenizer, seq_len=64, seed=0)
    single = StepBatches(data, micro_batch_size=4, grad_accum=2, seed=5)
    ranks = [StepBatches(data, micro_batch_size=4, grad_accum=1, rank=r, world_size=2, seed=5) for r in range(2)]
    steps = single.steps_in_epoch(0) + 3  # crosses into epoch 1
    for step in range(steps - 6, steps):
        whole = np.concatenate(single.indices(step))
        parts = [np.concatenate(r.indices(step)) for r in ranks]
        assert np.array_equal(np.concatenate(parts), whole)
        assert not set(parts[0]) & set(parts[1])
    assert single.locate(steps - 1) == (1, 2)
