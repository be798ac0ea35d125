"""The shared WordPiece tokenizer: special-token ids, determinism, vocab.txt loading, save/load."""

from __future__ import annotations

import pytest

from pmd.errors import UserError
from pmd.loaders import SPECIAL_TOKENS, load_tokenizer, save_tokenizer, train_wordpiece

TEXTS = [
    "A cat sits on the mat.",
    "Two dogs play in the park; the dogs are happy!",
    "Über café naïve — accents are stripped by BERT's normaliser.",
    "Flamingo samples 256 tokens and five images from interleaved documents.",
] * 3


def test_special_tokens_have_fixed_ids():
    tok = train_wordpiece(TEXTS, vocab_size=150)
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4, 5, 6]
    assert SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<image>", "<EOC>")
    enc = tok.encode("The cat <image> sits <EOC>")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert "<image>" in enc.tokens and "<EOC>" in enc.tokens
    assert tok.encode("CAFÉ").tokens == tok.encode("cafe").tokens  # BERT normaliser: lower-case, no accents


def test_training_is_deterministic_and_respects_vocab_size():
    a = train_wordpiece(TEXTS, vocab_size=120)
    assert a.to_str() == train_wordpiece(TEXTS, vocab_size=120).to_str()
    assert a.get_vocab_size() == 120
    assert train_wordpiece(TEXTS, vocab_size=100_000).get_vocab_size() < 1000  # stops when no pair is left
    # no pair occurs 1000 times: the vocabulary is the specials plus the whole alphabet (always kept)
    alphabet_only = train_wordpiece(TEXTS, vocab_size=500, min_frequency=1000).get_vocab()
    assert all(len(t.removeprefix("##")) == 1 for t in alphabet_only if t not in SPECIAL_TOKENS)
    assert "c" in alphabet_only and "##t" in alphabet_only
    with pytest.raises(UserError, match="vocab_size"):
        train_wordpiece(TEXTS, vocab_size=5)


def test_frequent_words_become_single_tokens():
    tok = train_wordpiece(TEXTS, vocab_size=400)
    assert tok.encode("the dogs", add_special_tokens=False).tokens == ["the", "dogs"]


def test_save_and_load_round_trip(tmp_path):
    tok = train_wordpiece(TEXTS, vocab_size=150)
    path = save_tokenizer(tok, tmp_path / "sub" / "tokenizer.json")
    assert load_tokenizer(path).to_str() == tok.to_str()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["tokenizer.json"]


def test_load_bert_vocab_txt_adds_image_and_eoc(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "##s", "dog"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = load_tokenizer(tmp_path / "vocab.txt")
    assert tok.encode("The cats sat", add_special_tokens=False).tokens == ["the", "cat", "##s", "sat"]
    assert tok.encode("the bird").ids == [2, 5, 1, 3]
    assert tok.token_to_id("<image>") == 10 and tok.token_to_id("<EOC>") == 11
    (tmp_path / "bad.txt").write_text("the\ncat\n")
    with pytest.raises(UserError, match=r"lacks \[PAD\], \[UNK\], \[CLS\], \[SEP\]"):
        load_tokenizer(tmp_path / "bad.txt")
    with pytest.raises(UserError, match="not found"):
        load_tokenizer(tmp_path / "nope.json")
