"""WordPiece tokenizer for the FLAVA trainer and the M3W sampler: train, load, save — deterministic.

BERT-style: ``BertNormalizer`` (lower-casing, accent stripping, CJK spacing), ``BertPreTokenizer``,
WordPiece with ``##`` continuations, and a ``[CLS] $A [SEP]`` post-processor. Special tokens, always
first and in this order: ``[PAD]``=0, ``[UNK]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4, ``<image>``=5,
``<EOC>``=6 (Flamingo's image placeholder and end-of-chunk). Training the same texts with the same
settings gives a byte-identical ``tokenizer.json``.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from pmd.errors import UserError

PAD, UNK, CLS, SEP, MASK, IMAGE, EOC = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<image>", "<EOC>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK, IMAGE, EOC)
_REQUIRED = (PAD, UNK, CLS, SEP)


def _bert_pipeline(tok: Tokenizer, *, lowercase: bool = True) -> Tokenizer:
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def _post_processor(tok: Tokenizer) -> None:
    cls_id, sep_id = tok.token_to_id(CLS), tok.token_to_id(SEP)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, cls_id), (SEP, sep_id)],
    )


def _word_counts(texts: Iterable[str], tok: Tokenizer) -> Counter[str]:
    counts: Counter[str] = Counter()
    normalize, pre_tokenize = tok.normalizer.normalize_str, tok.pre_tokenizer.pre_tokenize_str  # type: ignore[union-attr]
    for text in texts:
        counts.update(word for word, _ in pre_tokenize(normalize(text)))
    return counts


def _learn_vocab(words: Counter[str], vocab_size: int, min_frequency: int) -> list[str]:
    """WordPiece vocabulary by BPE-style merges, ties broken by the symbol strings (deterministic)."""
    symbols = [[w[0], *("##" + c for c in w[1:])] for w in words]
    freqs = list(words.values())
    vocab = sorted({s for word in symbols for s in word})
    known = set(vocab) | set(SPECIAL_TOKENS)
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, word in enumerate(symbols):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    budget = vocab_size - len(SPECIAL_TOKENS)
    while heap and len(vocab) < budget:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < min_frequency:
            break
        a, b = pair
        merged = a + b[2:]
        changed: set[tuple[str, str]] = set()
        for i in sorted(where.pop(pair, ())):
            word = symbols[i]
            for old in zip(word, word[1:]):
                pair_counts[old] -= freqs[i]
                changed.add(old)
            out, j = [], 0
            while j < len(word):
                if j + 1 < len(word) and word[j] == a and word[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            symbols[i] = out
            for new in zip(out, out[1:]):
                pair_counts[new] += freqs[i]
                where[new].add(i)
                changed.add(new)
        pair_counts.pop(pair, None)
        for p in changed:
            c = pair_counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            elif p in pair_counts:
                del pair_counts[p]
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return vocab


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8192, min_frequency: int = 1, *, lowercase: bool = True) -> Tokenizer:
    """Train a BERT-style WordPiece tokenizer on ``texts`` (one pass over the iterable).

    The vocabulary is learnt as the ``tokenizers`` WordPiece trainer does (character alphabet with ``##``
    continuations, then most-frequent-pair merges while the pair occurs at least ``min_frequency`` times),
    but in Python with ties broken by the symbols themselves: the Rust trainer numbers its alphabet in
    hash-map order, so two runs on the same texts can learn different vocabularies. Ids: specials, then
    the alphabet sorted, then merges in the order learnt. As in ``tokenizers``, the whole alphabet is
    always kept, so a tiny ``vocab_size`` can be exceeded by it.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    if min_frequency < 1:
        raise UserError(f"min_frequency must be >= 1, got {min_frequency}")
    probe = _bert_pipeline(Tokenizer(models.WordPiece({UNK: 0}, unk_token=UNK)), lowercase=lowercase)
    learnt = _learn_vocab(_word_counts(texts, probe), vocab_size, min_frequency)
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *learnt])}
    tok = _bert_pipeline(Tokenizer(models.WordPiece(vocab, unk_token=UNK, continuing_subword_prefix="##")), lowercase=lowercase)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    _post_processor(tok)
    return tok


def load_tokenizer(path_or_vocab_txt: str | Path, *, lowercase: bool = True) -> Tokenizer:
    """Load a ``tokenizer.json`` (as written by :func:`save`) or a BERT ``vocab.txt``.

    A ``vocab.txt`` gets the BERT pipeline above (``lowercase`` as for uncased BERT); ``<image>`` and
    ``<EOC>`` are added as special tokens if the vocabulary lacks them. ``[PAD]``, ``[UNK]``, ``[CLS]`` and
    ``[SEP]`` must be present; ``[PAD]`` is expected at id 0 (BERT vocabularies have it there).
    """
    path = Path(path_or_vocab_txt)
    if not path.is_file():
        raise UserError(f"tokenizer file not found: {path}")
    if path.suffix == ".json":
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise UserError(f"{path}: not a tokenizers JSON file ({exc})") from exc
    else:
        vocab = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
        missing = [t for t in _REQUIRED if t not in vocab]
        if missing:
            raise UserError(f"{path}: vocabulary lacks {', '.join(missing)}; a BERT vocab.txt has them")
        tok = _bert_pipeline(
            Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token=UNK, continuing_subword_prefix="##")),
            lowercase=lowercase,
        )
        tok.add_special_tokens([t for t in SPECIAL_TOKENS if t in vocab] + [t for t in (IMAGE, EOC) if t not in vocab])
        _post_processor(tok)
    missing = [t for t in _REQUIRED if tok.token_to_id(t) is None]
    if missing:
        raise UserError(f"{path}: tokenizer lacks {', '.join(missing)}")
    return tok


def save(tokenizer: Tokenizer, path: str | Path) -> Path:
    """Write ``tokenizer.json`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        tokenizer.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def special_id(tokenizer: Tokenizer, token: str) -> int:
    """The id of a special token; a clear error if the tokenizer lacks it."""
    i = tokenizer.token_to_id(token)
    if i is None:
        raise UserError(f"tokenizer has no {token} token; train it with pmd.loaders.tokenizer.train_wordpiece")
    return i
