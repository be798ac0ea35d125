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


def _wrapped(inner: str, depth: int) -> str:
    """``inner`` inside ``depth`` nested plain divs (the wrapper chains of card and section layouts)."""
    return "<div>" * depth + inner + "</div>" * depth


def test_article_split_into_wrapped_sections_is_kept_whole(walker):
    """An article cut into sections (a review's chapters, a how-to's steps), each in its own chain of
    wrapper divs deeper than the score reaches, keeps every section; a teaser box beside it does not."""
    sections = "".join(_wrapped(f"<h3>Section {i}</h3><p>Section {i} text. {PARA}</p><p>More of section {i}. {PARA}</p>", 4)
                       for i in range(5))
    teasers = "".join(f"<li><a href='/t{i}'>Teaser headline number {i} about something else</a></li>" for i in range(8))
    html = (f"<html><body><div class='page'><div class='body'>{sections}</div>"
            f"<div class='rail'><ul>{teasers}</ul></div></div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Section {i} text." in text and f"More of section {i}." in text for i in range(5))
    assert "Teaser headline" not in text


def test_one_section_and_one_box_do_not_move_the_article(walker):
    """Two strong containers under an ancestor are an article and something beside it (a bio, an
    excerpt), not sections of one article: the selection stays on the article."""
    article = "".join(f"<p>Article paragraph {i}. {PARA}</p>" for i in range(6))
    other = "".join(f"<p>Excerpt of another post {i}. {PARA}</p>" for i in range(2))
    html = (f"<html><body><div class='wrap'>{_wrapped(article, 3)}{_wrapped(other, 3)}</div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert "Article paragraph 5." in text and "Excerpt of another post" not in text


def test_a_long_comment_thread_does_not_elect_itself_the_article(walker):
    """Readers' comments (a container named comments) with more prose than the article: the article is
    chosen and the thread dropped."""
    article = "".join(f"<p>Article paragraph {i}. {PARA}</p>" for i in range(3))
    comments = "".join(f"<li><p>Reader comment {i}: {PARA} {PARA}</p></li>" for i in range(12))
    html = (f"<html><body><div id='main'><div class='post'>{article}</div>"
            f"<div id='comments'><ol>{comments}</ol></div></div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Article paragraph {i}." in text for i in range(3))
    assert "Reader comment" not in text


def test_prose_with_inline_links_stays_and_link_lists_go(walker):
    """A paragraph where half the words are links (a deals post, a citation-heavy docs page) is content;
    a block that is nearly all link text (a menu, a related-links line) is not."""
    linked = ("We compared <a href='/a'>the first tablet on sale this week</a> with "
              "<a href='/b'>the older model from last spring</a>, and the results were close.")
    menu = " ".join(f"<a href='/m{i}'>Menu entry {i}</a>" for i in range(8))
    html = (f"<html><body><article><p>{PARA}</p><p>{linked}</p><p>{PARA} Again.</p><div>{menu}</div>"
            f"<p>{PARA} Last.</p></article></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert "the older model from last spring" in text and "Last." in text
    assert "Menu entry" not in text


def test_a_long_gallery_box_inside_the_article_text_does_not_elect_itself(walker):
    """A boilerplate box nested between the article's paragraphs (a gallery of captioned slides, a
    related-stories strip) with more caption prose than the article: the article is chosen, the box
    dropped (it used to become the region, and the article around it was lost)."""
    slides = "".join(f"<li><p>Slide {i} caption: {PARA}</p></li>" for i in range(20))
    paras = [f"<p>Article paragraph {i}. {PARA}</p>" for i in range(4)]
    html = (f"<html><body><div class='story'><div class='text'>{paras[0]}{paras[1]}"
            f"<div class='widget type-gallery'><ul>{slides}</ul></div>{paras[2]}{paras[3]}</div></div>"
            f"</body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Article paragraph {i}." in text for i in range(4))
    assert "Slide 3 caption" not in text


def test_an_index_of_teasers_in_several_lists_is_kept_whole(walker):
    """An index page of equal short teaser cards in several lists (a section front): the climb goes to
    the ancestor that holds most of the cards, not to the first list that has three of them."""
    def section(s: int) -> str:
        cards = "".join(f"<li><article><h2>Story {s}.{i}</h2><p>Teaser {s}.{i}: what happened, and why.</p>"
                        f"</article></li>" for i in range(4))
        return f"<section><h2>Section {s}</h2><ol>{cards}</ol></section>"

    rail = "".join(f"<li><a href='/r{i}'>Most read headline number {i} of the day</a></li>" for i in range(8))
    html = (f"<html><body><div class='page'><div class='fronts'>{''.join(section(s) for s in range(4))}</div>"
            f"<div class='rail'><ul>{rail}</ul></div></div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Teaser {s}.{i}:" in text for s in range(4) for i in range(4))
    assert "Most read headline" not in text


def test_comments_after_a_comments_heading_are_dropped(walker):
    """A blog engine that prints readers' comments as plain paragraphs in the article's own container after
    a "Comments" heading (no comment class to mark them; here the heading sits in a wrapper of its own):
    the heading and everything after it in that container go, the text after the container stays."""
    article = "".join(f"<p>Article paragraph {i}. {PARA}</p>" for i in range(3))
    comments = "".join(f"<div id='c{i}'><p>Reader comment {i}: {PARA}</p></div><p class='posted'>Posted by: "
                       f"Reader {i} at July 26, 2012 9:0{i} AM</p>" for i in range(8))
    html = (f"<html><body><div id='center'><div class='content'><h3>A post</h3>{article}"
            f"<p class='posted'>Posted by the author at July 26, 2012 8:00 AM</p>"
            f"<div class='commentform'><h2 id='comments'>Comments</h2></div>{comments}"
            f"<h2>Post a comment</h2><p>Comments are moderated and appear after review by the editors.</p></div>"
            f"<p>Closing paragraph outside the post. {PARA}</p></div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Article paragraph {i}." in text for i in range(3)) and "Posted by the author" in text
    assert "Reader comment" not in text and "Posted by: Reader" not in text and "moderated" not in text
    assert "Closing paragraph outside the post." in text


def test_a_lone_comment_heading_cuts_nothing(walker):
    """"Comment" alone is a newspaper's opinion section, not a comment thread: the text after it stays."""
    paras = "".join(f"<p>Opinion paragraph {i}. {PARA}</p>" for i in range(4))
    html = f"<html><body><article><h2>Comment</h2>{paras}</article></body></html>"
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Opinion paragraph {i}." in text for i in range(4))


def test_gallery_captions_are_dropped_and_its_images_kept_in_order(walker):
    """A slideshow in the article (class names with gallery, slideshow or carousel, also glued as in
    "cnnGalleryContainer"): its slides' captions are not the article's text, its images stay in page
    order; a figure outside it keeps its caption."""
    slides = "".join(f"<div class='slide'><img src='/s{i}.jpg'><p>Slide {i} caption: {PARA}</p></div>"
                     for i in range(12))
    html = (f"<html><body><div class='story'><p>Article paragraph 0. {PARA}</p><p>Article paragraph 1. {PARA}</p>"
            f"<div class='cnnGalleryContainer'>{slides}</div><p>Article paragraph 2. {PARA}</p>"
            f"<figure><img src='/f.jpg'><figcaption>The plain figure's caption</figcaption></figure>"
            f"<p>Article paragraph 3. {PARA}</p></div></body></html>")
    doc = extract_document(html, "https://x.org/")
    text = _text(doc)
    assert all(f"Article paragraph {i}." in text for i in range(4))
    assert "Slide 3 caption" not in text and "The plain figure's caption" in text
    assert [i for i in doc.images if i] == [f"https://x.org/s{i}.jpg" for i in range(12)] + ["https://x.org/f.jpg"]


def test_a_big_unscored_box_after_the_article_does_not_join_it(walker):
    """A column of teasers after the article body, its text deeper than the score reaches (a list of
    cards in a wrapper): it does not join the region by its own text; the date box before the body does."""
    article = "".join(f"<p>Article paragraph {i}. {PARA}</p>" for i in range(4))
    cards = "".join(f"<li><h3>Other story {i}</h3><p class='text'>What happened next in the other story "
                    f"number {i}, and why it matters. <a href='/s{i}'>Read more</a></p></li>" for i in range(6))
    html = (f"<html><body><div id='block'><div class='date'>July 26, 2012</div>"
            f"<div id='primary'>{article}</div><div id='secondary'><div class='inner'><ul>{cards}</ul></div></div>"
            f"</div></body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Article paragraph {i}." in text for i in range(4)) and "July 26, 2012" in text
    assert "Other story" not in text and "other story number" not in text


def test_glued_widget_names_and_author_bios_are_boilerplate(walker):
    """Class names glued from a widget's role ("jp-relatedposts", "sidebar2") and an author's bio box
    are dropped like their plain forms."""
    article = "".join(f"<p>Article paragraph {i}. {PARA}</p>" for i in range(4))
    related = "".join(f"<div class='jp-relatedposts-post'><p>Related excerpt {i}: {PARA}</p></div>"
                      for i in range(3))
    html = (f"<html><body><div class='entry-content'>{article}<div id='jp-relatedposts'>{related}</div>"
            f"<div class='author-bio'><p>The author writes about city politics. {PARA}</p></div></div>"
            f"</body></html>")
    text = _text(extract_document(html, "https://x.org/"))
    assert all(f"Article paragraph {i}." in text for i in range(4))
    assert "Related excerpt" not in text and "city politics" not in text
