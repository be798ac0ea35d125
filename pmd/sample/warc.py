"""The sample's web crawl: ``warc/sample.warc.gz`` (one gzip member per record, warcio) and
``warc/damaged.warc.gz`` (its last gzip member cut in half).

About 50 HTML pages over a few sites: articles whose paragraphs truthfully describe the images
between them (rendered scenes served from ``images/web/``), plus tiny logos and icons, a wide
banner, single-colour images, non-English pages, a page crawled twice, near-duplicate mirrors, a
paragraph repeated by every page of one site, a latin-1 page declared only in a meta tag, a PNG
response record and a revisit record. ``expected["warc"]`` says what each page should yield.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

from PIL import Image

from pmd.sample import scenes as sc
from pmd.sample.context import SampleContext
from pmd.sample.warc_html import VARIANTS, Block, Page, Site, WebImage

WARC_PATH = "warc/sample.warc.gz"
DAMAGED_PATH = "warc/damaged.warc.gz"
WEB = "images/web"
CRAWL_START = datetime(2021, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

EN_FILLER = [
    "Simple shapes are a good way to learn how colours and positions are described in words.",
    "We drew it by hand first and then made a clean digital version for this post.",
    "Readers often ask how we choose the colours, and the honest answer is that we roll a die.",
    "Each picture in this series uses at most three shapes so that nothing is hidden.",
    "The background is kept plain on purpose, which makes the shapes easy to spot.",
    "Children in our workshop liked this one more than any other picture this month.",
    "Try to describe the picture to a friend without showing it and see if they can draw it.",
    "Geometry teachers have used pictures like this for more than a century.",
    "Our archive now holds several hundred of these drawings, sorted by colour.",
    "Next week we will look at pictures with more than three shapes in them.",
    "Look closely at the edges, where the colour of each shape meets the background.",
    "Some readers print these pictures and hang them on the wall of a classroom.",
]
FR_FILLER = [
    "Les formes simples sont un bon moyen d'apprendre à décrire les couleurs et les positions.",
    "Nous avons dessiné cette image à la main avant d'en faire une version numérique.",
    "Chaque image de cette série contient au plus trois formes, pour que rien ne soit caché.",
    "Le fond reste uni exprès, ce qui rend les formes faciles à repérer.",
]
DE_FILLER = [
    "Einfache Formen sind ein guter Weg, um Farben und Positionen in Worten zu beschreiben.",
    "Wir haben das Bild zuerst von Hand gezeichnet und dann eine digitale Fassung erstellt.",
    "Jedes Bild dieser Reihe enthält höchstens drei Formen, damit nichts verborgen bleibt.",
    "Der Hintergrund ist absichtlich schlicht gehalten, damit man die Formen leicht erkennt.",
]
LATIN1_TEXT = ("Welcome to the Café des Formes, where every naïve drawing is served with a crème brûlée. "
               "Today's special is {rel}.")


def _record_id(ctx: SampleContext, *parts: object) -> str:
    digest = hashlib.blake2b("\x1f".join(map(str, (ctx.seed, *parts))).encode(), digest_size=16).digest()
    return f"<urn:uuid:{uuid.UUID(bytes=digest, version=4)}>"


def _warc_date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Pages:
    """Builds the pages and writes every image they reference."""

    def __init__(self, ctx: SampleContext) -> None:
        self.ctx, self.rng = ctx, ctx.rng("warc")
        self.n_images = 0
        self.used_fillers: set[str] = set()
        self.variant_i = 0
        self.share_icon = self._png(f"{WEB}/icons/share-24.png", (24, 24), (60, 90, 200))
        self.flat = [self._flat(c) for c in ("green", "purple")]
        self.banners = [self._banner(i) for i in range(2)]
        self.ad = ctx.serve(f"{WEB}/ads/ad-300x250.jpg", sc.jpeg_bytes(Image.new("RGB", (300, 250), (250, 200, 0))))

    def _png(self, rel: str, size: tuple[int, int], colour: tuple[int, int, int]) -> str:
        img = Image.new("RGB", size, (255, 255, 255))
        img.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), colour), (size[0] // 4, size[1] // 4))
        return self.ctx.serve(rel, sc.png_bytes(img))

    def _flat(self, colour: str) -> str:
        return self.ctx.serve(f"{WEB}/flat/flat-{colour}-320.jpg",
                              sc.jpeg_bytes(Image.new("RGB", (320, 320), sc.COLORS[colour])))

    def _banner(self, i: int) -> str:
        scene = sc.Scene((sc.Shape("star", "yellow", "small", 0, 1), sc.Shape("star", "red", "small", 2, 1)),
                         "pale blue", 960, 200, "pair_h")
        return self.ctx.serve(f"{WEB}/banners/banner-{i}-960x200.jpg", sc.jpeg_bytes(sc.render(scene)))

    def filler(self, k: int, pool: list[str] = EN_FILLER) -> str:
        """``k`` filler sentences joined, never the same combination twice (so no accidental repeats)."""
        for attempt in range(10_000):
            text = " ".join(self.rng.sample(pool, min(len(pool), k + attempt // 50)))
            if text not in self.used_fillers:
                self.used_fillers.add(text)
                return text
        raise RuntimeError("ran out of distinct filler paragraphs")

    def logo(self, key: str) -> str:
        return self._png(f"{WEB}/logos/{key}-32.png", (32, 32), (200, 40, 40))

    def scene_image(self, base_href: str | None, variant: str | None = None) -> tuple[sc.Scene, WebImage]:
        """A rendered scene in the next markup variant (``relative`` only where a base href exists)."""
        ctx, rng = self.ctx, self.rng
        scene = sc.random_scene(rng, min_side=400, max_side=640)
        k = self.n_images
        self.n_images += 1
        if variant is None:
            usable = [v for v in VARIANTS if v != "relative" or base_href]
            variant = usable[self.variant_i % len(usable)]
            self.variant_i += 1
        rel = f"{WEB}/scene-{k:03d}.jpg"
        url = ctx.serve_scene(rel, scene)
        small = None
        candidates = [url]
        if variant in ("srcset", "picture", "data-srcset"):
            h320 = round(scene.height * 320 / scene.width)
            small = ctx.serve_scene(f"{WEB}/scene-{k:03d}-320w.jpg", scene, 320, h320)
            candidates = [small, url]
        relative = None
        if variant == "relative":
            assert base_href is not None
            relative = f"scene-{k:03d}.jpg"
            url = base_href + relative
            candidates = [url]
        alt = sc.sentence(sc.relation(scene))[:-1]
        return scene, WebImage(variant, url, candidates, alt, scene.width, scene.height, small, relative)

    def special(self, kind: str, k: int) -> WebImage:
        if kind == "too_small":
            return WebImage("src", self.share_icon, [self.share_icon], "share this picture", 24, 24,
                            filter="too_small")
        if kind == "aspect_ratio":
            url = self.banners[k % 2]
            return WebImage("src", url, [url], "Shapes banner with two stars", 960, 200, filter="aspect_ratio")
        url = self.flat[k % 2]
        return WebImage("src", url, [url], "a plain square of colour", 320, 320, filter="single_colour")


def _en_article(pages: _Pages, n_images: int, base_href: str | None, special: list[str]) -> tuple[str, list[Block]]:
    rng, filler = pages.rng, pages.filler
    blocks = [Block("paragraph", filler(2))]
    title_scene = None
    for i in range(n_images):
        scene, image = pages.scene_image(base_href, "relative" if base_href and i == 0 else None)
        title_scene = title_scene or scene
        if i > 0 and rng.random() < 0.7:
            blocks.append(Block("heading", sc.sentence(f"picture {i + 1}: {sc.listing(scene)}")[:-1]))
        blocks.append(Block("paragraph", f"The picture below shows {sc.relation(scene)} "
                                         f"{sc.on_background(scene)}. {rng.choice(EN_FILLER)}"))
        caption = sc.sentence(sc.listing(scene)) if rng.random() < 0.3 else ""
        blocks.append(Block("image", caption, image))
        if i < len(special):
            blocks.append(Block("paragraph", filler(2)))
            blocks.append(Block("image", "", pages.special(special[i], pages.n_images)))
    blocks.append(Block("paragraph", filler(2)))
    title = sc.sentence(f"{sc.count_word(title_scene)} on a {title_scene.background} background")[:-1]
    return title, blocks


def _foreign_article(pages: _Pages, lang: str) -> tuple[str, list[Block]]:
    rng = pages.rng
    filler = FR_FILLER if lang == "fr" else DE_FILLER
    blocks = [Block("paragraph", pages.filler(2, filler))]
    for _ in range(2):
        scene, image = pages.scene_image(None, "src")
        image.alt = sc.translated(scene, lang)[:-1]
        blocks.append(Block("paragraph", f"{sc.translated(scene, lang)} {rng.choice(filler)}"))
        blocks.append(Block("image", "", image))
    blocks.append(Block("paragraph", pages.filler(2, filler)))
    title = "Formes et couleurs du jour" if lang == "fr" else "Formen und Farben des Tages"
    return title, blocks


def build_pages(ctx: SampleContext) -> tuple[list[Page], dict[str, Any]]:
    pages = _Pages(ctx)
    rng = pages.rng
    base_href = f"{ctx.base_url}/{WEB}/"
    daily = Site("Shapes Daily", "https://www.shapes-daily.example", "en", pages.logo("daily"), pages.ad,
                 promo="Subscribe to Shapes Daily to get a new picture of coloured shapes in your inbox every morning.")
    mirror = Site("Shapes Daily", "https://mirror.shapes-daily.example", "en", daily.logo_url, pages.ad)
    notes = Site("Geometry Notes", "https://blog.geometry-notes.example", "en", pages.logo("notes"), pages.ad)
    gallery = Site("Colour Forms Gallery", "https://gallery.colour-forms.example", "en", pages.logo("gallery"),
                   pages.ad)
    formes = Site("Formes du jour", "https://fr.formes-du-jour.example", "fr", pages.logo("formes"), pages.ad)
    formen = Site("Formen heute", "https://www.formen-heute.example", "de", pages.logo("formen"), pages.ad)
    cafe = Site("Café des Formes", "http://www.cafe-des-formes.example", "en", pages.logo("cafe"), pages.ad)

    out: list[Page] = []
    when = iter(CRAWL_START + timedelta(minutes=37 * i) for i in range(1000))
    n_daily, n_notes, n_gallery = ctx.n(14, 3), ctx.n(12, 3), ctx.n(10, 3)
    specials = {0: ["too_small"], 2: ["aspect_ratio"], 4: ["single_colour"], 6: ["too_small", "aspect_ratio"]}
    for i in range(n_daily):
        title, blocks = _en_article(pages, rng.choice((2, 3)), None, specials.get(i, []))
        out.append(Page(daily, f"/{2021}/03/{i + 1:02d}/shapes-{i + 1}.html", title, blocks, _warc_date(next(when))))
    for i in range(n_notes):
        title, blocks = _en_article(pages, rng.choice((2, 3, 3)), base_href, specials.get(i + 1, []))
        out.append(Page(notes, f"/posts/notes-{i + 1}/", title, blocks, _warc_date(next(when)),
                        charset_in="http-equiv", base_href=base_href))
    for i in range(n_gallery):
        title, blocks = _en_article(pages, 3, None, specials.get(i + 2, []))
        out.append(Page(gallery, f"/gallery/{i + 1}", title, blocks, _warc_date(next(when))))
    for i, (site, lang) in enumerate([(formes, "fr"), (formes, "fr"), (formen, "de"), (formen, "de")]):
        title, blocks = _foreign_article(pages, lang)
        out.append(Page(site, f"/article/{i + 1}", f"{title} {i + 1}", blocks, _warc_date(next(when)),
                        charset_in="header", lang=lang))
    # latin-1 page, charset declared only in a meta http-equiv tag (the HTTP header has none)
    scene, image = pages.scene_image(None, "src")
    cafe_blocks = [Block("paragraph", LATIN1_TEXT.format(rel=sc.relation(scene))), Block("image", "", image),
                   Block("paragraph", "Every plate on the menu is a drawing, à la carte, and every drawing "
                                      "is free to look at.")]
    out.append(Page(cafe, "/menu.html", "Le menu du café", cafe_blocks, _warc_date(next(when)),
                    charset="iso-8859-1", charset_in="http-equiv"))
    # near-duplicates: the first three Shapes Daily articles republished on a mirror with one sentence changed
    for i, orig in enumerate(out[:3]):
        blocks = list(orig.blocks)
        blocks[-1] = Block("paragraph", blocks[-1].text + " This article first appeared on Shapes Daily.")
        out.append(Page(mirror, orig.path, orig.title, blocks, _warc_date(next(when)),
                        extra={"near_duplicate_of": orig.url}))
    return out, {"when": when}


def _http_headers(ctype: str, body: bytes, date: str):
    from warcio.statusandheaders import StatusAndHeaders

    dt = datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return StatusAndHeaders("200 OK", [("Date", format_datetime(dt, usegmt=True)), ("Server", "nginx"),
                                       ("Content-Type", ctype), ("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")


class _WarcOut:
    """A WARC in memory that remembers each record's offset."""

    def __init__(self, ctx: SampleContext, filename: str) -> None:
        from warcio.warcwriter import WARCWriter

        self.ctx, self.buf = ctx, io.BytesIO()
        self.writer = WARCWriter(self.buf, gzip=True, warc_version="1.1")
        self.offsets: list[int] = []
        payload = (f"software: pmd-sample\r\nformat: WARC File Format 1.1\r\n"
                   f"description: embedded sample crawl (seed {ctx.seed})\r\n").encode()
        self._write(self.writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(payload), length=len(payload),
            warc_headers_dict={"WARC-Record-ID": _record_id(ctx, filename, "warcinfo"),
                               "WARC-Date": _warc_date(CRAWL_START), "WARC-Filename": filename.split("/")[-1]}))

    def _write(self, record) -> int:
        offset = self.buf.tell()
        self.offsets.append(offset)
        self.writer.write_record(record)
        return offset

    def exchange(self, url: str, date: str, ctype: str, body: bytes, tag: str = "") -> dict[str, Any]:
        from warcio.statusandheaders import StatusAndHeaders

        resp_id = _record_id(self.ctx, url, date, "response", tag)
        host, _, path = url.split("://", 1)[1].partition("/")
        req = self.writer.create_warc_record(
            url, "request", http_headers=StatusAndHeaders(
                f"GET /{path} HTTP/1.1", [("Host", host), ("User-Agent", "pmd-sample-crawler/1.0"),
                                          ("Accept", "text/html,*/*")], is_http_request=True),
            warc_headers_dict={"WARC-Record-ID": _record_id(self.ctx, url, date, "request", tag), "WARC-Date": date,
                               "WARC-Concurrent-To": resp_id})
        resp = self.writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body),
            http_headers=_http_headers(ctype, body, date),
            warc_headers_dict={"WARC-Record-ID": resp_id, "WARC-Date": date})
        self._write(req)
        offset = self._write(resp)
        return {"record_id": resp_id, "warc_date": date, "offset": offset,
                "payload_digest": resp.rec_headers.get_header("WARC-Payload-Digest")}

    def revisit(self, url: str, date: str, original: dict[str, Any], ctype: str, body: bytes) -> dict[str, Any]:
        rid = _record_id(self.ctx, url, date, "revisit")
        rec = self.writer.create_revisit_record(
            url, original["payload_digest"], url, original["warc_date"],
            http_headers=_http_headers(ctype, body, date),
            warc_headers_dict={"WARC-Record-ID": rid, "WARC-Date": date, "WARC-Refers-To": original["record_id"]})
        offset = self._write(rec)
        return {"url": url, "record_id": rid, "warc_date": date, "offset": offset,
                "refers_to": original["record_id"], "refers_to_date": original["warc_date"]}


def _body(page: Page) -> tuple[str, bytes]:
    ctype = "text/html" if page.charset_in != "header" else f"text/html; charset={page.charset}"
    return ctype, page.html().encode(page.charset)


def write_warcs(ctx: SampleContext) -> list[str]:
    """Write both WARC files; record the planted facts in ``ctx.expected["warc"]``; return the good WARC's path."""
    pages, state = build_pages(ctx)
    when = state["when"]
    warc = _WarcOut(ctx, WARC_PATH)
    expected_pages, revisits = [], []
    first: dict[str, dict[str, Any]] = {}
    for page in pages:
        ctype, body = _body(page)
        info = warc.exchange(page.url, page.date, ctype, body)
        first[page.url] = info
        expected_pages.append({**page.expected(), **info, "crawl": 1})
    # the first Geometry Notes article is crawled again a day later with identical content
    notes = [p for p in pages if "geometry-notes" in p.url]
    again = notes[0]
    ctype, body = _body(again)
    later = _warc_date(datetime.strptime(again.date, "%Y-%m-%dT%H:%M:%SZ") + timedelta(days=1))
    info = warc.exchange(again.url, later, ctype, body, tag="recrawl")
    expected_pages.append({**again.expected(), **info, "crawl": 2, "same_payload_as": first[again.url]["record_id"]})
    # the second one is revisited (payload unchanged, so only a revisit record is stored)
    ctype, body = _body(notes[1])
    revisits.append(warc.revisit(notes[1].url, _warc_date(next(when)), first[notes[1].url], ctype, body))
    # a non-HTML response: the site logo as image/png
    logo_url = "https://www.shapes-daily.example/static/logo.png"
    logo = (ctx.out / pages[0].site.logo_url[len(ctx.base_url) + 1:]).read_bytes()
    png = warc.exchange(logo_url, _warc_date(next(when)), "image/png", logo)
    ctx.write_bytes(WARC_PATH, warc.buf.getvalue())

    damaged = _write_damaged(ctx, pages)
    ctx.expected["warc"] = {
        "path": WARC_PATH, "pages": expected_pages, "revisits": revisits,
        "non_html": [{"url": logo_url, "content_type": "image/png", **png}],
        "records": {"warcinfo": 1, "request": len(expected_pages) + 1, "response": len(expected_pages) + 1,
                    "revisit": 1},
        "html_responses": len(expected_pages), "distinct_page_urls": len({p["url"] for p in expected_pages}),
        "repeated_paragraphs": {"www.shapes-daily.example": pages[0].site.promo},
        "selection_rule": "image URL = largest width candidate of srcset/data-srcset/<source>, else data-src, "
                          "else src; data: URIs ignored; relative URLs resolved against <base href>",
        "damaged": damaged,
    }
    return [WARC_PATH]


def _write_damaged(ctx: SampleContext, pages: list[Page]) -> dict[str, Any]:
    """Three pages (warcinfo + 6 records), then the last gzip member cut in half."""
    warc = _WarcOut(ctx, DAMAGED_PATH)
    chosen = pages[-7:-4]
    for page in chosen:
        ctype, body = _body(page)
        warc.exchange(page.url, page.date, ctype, body, tag="damaged")
    data = warc.buf.getvalue()
    last = warc.offsets[-1]
    cut = last + (len(data) - last) // 2
    ctx.write_bytes(DAMAGED_PATH, data[:cut])
    return {"path": DAMAGED_PATH, "records_written": len(warc.offsets), "complete_records": len(warc.offsets) - 1,
            "truncated_at": cut, "last_member_offset": last, "truncated_record_uri": chosen[-1].url,
            "complete_page_urls": [p.url for p in chosen[:-1]]}
