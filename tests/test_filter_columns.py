"""The filter stage's column-wise path (a chain's `reasons` over each source's rows) gives exactly the verdicts of
running each chain record by record (`__call__`), across sources, chain order and failing rows."""

from __future__ import annotations

import random

from pmd.pairs.filtering import decide
from pmd.text.filters import CaptionLengthFilter, LanguageFilter


class RowOnly:
    """The same filter without its column-wise form: ``decide`` must go row by row."""

    def __init__(self, f) -> None:  # noqa: ANN001
        self.f, self.name = f, f.name

    def __call__(self, record):  # noqa: ANN001, ANN204
        return self.f(record)


class NoIdentifier:
    def predict_arrays(self, texts):  # noqa: ANN001, ANN201
        raise AssertionError("every row is labelled: nothing to predict")


def _rows(seed: int, n: int = 400):
    rng = random.Random(seed)
    words = ["a", "red", "circle", "\u00e9t\u00e9", "\u3000", "\t", "x\x1fy"]
    sources, texts, langs, scores = [], [], [], []
    for _ in range(n):
        sources.append(rng.choice(["coco", "yfcc100m", "wit", "nowhere"]))
        k = rng.random()
        texts.append(None if k < 0.05 else "" if k < 0.1 else "   " if k < 0.15 else
                     " ".join(rng.choice(words) for _ in range(rng.randint(1, 12))))
        langs.append(rng.choice(["en", "de", "fr", "en"]) if rng.random() > 0.02 else "unknown")
        scores.append(rng.choice([None, 0.0, 0.2, 0.5, 0.99]))
    return sources, texts, langs, scores


CHAINS = {
    "coco": [CaptionLengthFilter(3, 8)],
    "yfcc100m": [LanguageFilter(("en",), 0.3), CaptionLengthFilter(2, None)],
    "wit": [LanguageFilter(("en", "de"), 0.0), CaptionLengthFilter(0, 5)],
}


def test_column_wise_verdicts_equal_row_by_row():
    row_only = {s: [RowOnly(f) for f in chain] for s, chain in CHAINS.items()}
    for seed in range(5):
        cols = _rows(seed)
        fast = decide(*cols, CHAINS, NoIdentifier())
        slow = decide(*cols, row_only, NoIdentifier())
        assert fast == slow
        reasons = set(fast[3])
        assert {"too_few_words", "too_many_words", "empty_caption", "not_english", "wrong_language",
                "low_language_score", "source_not_configured", None} <= reasons


def test_a_raising_row_fails_alone_in_a_column_wise_chain():
    """A caption that is not a string makes ``reasons`` raise: the batch goes row by row, and only that row fails."""
    sources, texts, langs, scores = ["coco"] * 3, ["a red circle here", 7, "one"], ["en"] * 3, [0.9] * 3
    _, _, outcome, reason, message = decide(sources, texts, langs, scores, CHAINS, NoIdentifier())
    assert outcome == ["kept", "failed", "dropped"]
    assert reason == [None, "AttributeError", "too_few_words"] and "split" in message[1]


def test_unlabelled_rows_are_predicted_once_labelled_rows_keep_theirs():
    class Counting:
        seen: list = []

        def predict_arrays(self, texts):  # noqa: ANN001, ANN201
            self.seen.append(list(texts))
            return ["de"] * len(texts), [0.7] * len(texts)

    ident = Counting()
    langs, scores, outcome, reason, _ = decide(["wit"] * 3, ["ein roter Kreis", "a red circle", None],
                                               [None, "en", None], [None, 0.5, None], CHAINS, ident)
    assert ident.seen == [["ein roter Kreis", None]]
    assert langs == ["de", "en", "de"] and scores == [0.7, 0.5, 0.7]
    assert outcome == ["kept", "kept", "dropped"] and reason[2] == "empty_caption"
