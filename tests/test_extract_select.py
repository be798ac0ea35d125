"""Main-content selection rules that keep the whole article on page kinds the first rules cut."""

from __future__ import annotations

import pytest

import pmd.interleaved.extract as E
from pmd.interleaved.extract import extract_document

WALKERS = ["python"] + (["compiled"] if E._cwalk is not None else [])
PARA = ("The committee met again on Thursday, and after a long discussion of the budget, the housing plan "
        "and the new school, it agreed to publish its findings before the end of the month.")


@pytest.fixture(params=WALKERS)
def walker(request):
    E.use_walker(request.param)
    yield request.param
    E.use_walker("auto")


def _text(doc) -> str:
    return "\n".join(t for t in doc.texts if t)


def test_article_continued_beside_the_chosen_block_is_kept(walker):
    """A chapter whose text sits in a container beside the one the score picks (a block of headings and
    summary under the same grandparent) keeps its paragraphs; a lone bio box and link lists there do not."""
    links = "".join(f"<li><a href='/s{i}'>Another story title number {i}</a></li>" for i in range(6))
    summary = "".join(f"<p>Summary paragraph {i}: {PARA}</p>" for i in range(4))
    chapter = "".join(f"<p>Chapter paragraph {i}. {PARA}</p>" for i in range(3))
    html = (f"<html><body><div id='outer'><div class='meta'><div class='summary'>{summary}</div></div>"
            f"<div class='chapter'><div class='text'>{chapter}</div></div>"
            f"<div class='about'><p>About the author: {PARA}</p></div>"
            f"<div class='more'><ul>{links}</ul></div></div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Summary paragraph {i}:" in text for i in range(4))
    assert all(f"Chapter paragraph {i}." in text for i in range(3))
    assert "About the author" not in text and "Another story" not in text


def test_heading_slug_ids_are_not_boilerplate_hints(walker):
    """Documentation sections get ids from their heading's words ("sharing-with-a-single-developer");
    a widget's id is a name ("share", "social-share") and still counts."""
    body = "".join(f"<p>Step {i}. {PARA}</p>" for i in range(4))
    html = (f"<html><body><div class='document'><div class='section' id='intro'>{body}</div>"
            f"<div class='section' id='sharing-with-a-single-developer'>{body.replace('Step', 'Part')}</div>"
            f"<div id='social-share'><p>{PARA} Share it.</p></div></div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert "Part 3." in text and "Step 0." in text
    assert "Share it." not in text


def test_figure_and_picture_images_stay_in_page_order(walker):
    html = (f"<html><body><article><p>{PARA} One.</p><figure><img src='/a.jpg'><figcaption>Cap A</figcaption>"
            f"</figure><p>{PARA} Two.</p><figure><picture><source srcset='/b.webp 2x'><img src='/b.jpg'></picture>"
            f"</figure><p>{PARA} Three.</p></article></body></html>")
    doc = extract_document(html, "https://x.org/")
    assert [i for i in doc.images if i] == ["https://x.org/a.jpg", "https://x.org/b.webp"]
    order = [("i" if i else "t") for i in doc.images]
    assert order[0] == "t" and order.count("i") == 2 and order[-1] == "t"
    assert doc.images.index("https://x.org/a.jpg") < doc.images.index("https://x.org/b.webp")
