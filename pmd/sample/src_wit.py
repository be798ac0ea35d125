"""WIT: ``wit_v1.train.all-00000-of-00010.tsv.gz`` (gzip TSV, header, 17 columns, quoted multi-line fields).

Rows exercise PMD's caption choice (reference -> English part of the attribution -> alt text, with
2/3-token minima, then ASCII-only) and the ``language == "en"`` filter. ``expected["wit"]`` lists,
per data row, the rule that should fire and the resulting text (None = dropped).
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

from pmd.sample import scenes as sc
from pmd.sample.archives import gzip_bytes
from pmd.sample.context import SampleContext

WIT_TSV = "wit/wit_v1.train.all-00000-of-00010.tsv.gz"
COLUMNS = ["language", "page_url", "image_url", "page_title", "section_title", "hierarchical_section_title",
           "caption_reference_description", "caption_attribution_description", "caption_alt_text_description",
           "mime_type", "original_height", "original_width", "is_main_image", "attribution_passes_lang_id",
           "page_changed_recently", "context_page_description", "context_section_description"]
# English rows cycle through these rules; "nonascii" is a reference caption with non-ASCII letters.
EN_RULES = ("reference", "reference", "attribution_first", "attribution_last", "alt_text", "nonascii",
            "reference", "none")
FOREIGN = ("fr", "de", "es")


def ascii_only(text: str) -> str:
    return "".join(c for c in text if ord(c) < 128)


def _captions(rule: str, scene: sc.Scene, rng) -> tuple[str, str, str, str | None]:
    """(reference, attribution, alt text, expected caption) for an English row."""
    eng = sc.sentence(sc.relation(scene) + " " + sc.on_background(scene))
    alt = sc.sentence(sc.listing(scene))
    if rule == "reference":
        return eng, rng.choice(["", "IMG_2041.JPG", f"Français : {sc.translated(scene, 'fr')}"]), alt, eng
    if rule == "nonascii":
        ref = eng[:-1] + ", naïve style (café poster)."
        return ref, "", alt, ascii_only(ref)
    if rule == "attribution_first":
        other = rng.choice([("Français : ", "fr"), ("Español: ", "es"), ("Deutsch: ", "de")])
        return "Shapes", f"English: {eng} {other[0]}{sc.translated(scene, other[1])}", "", eng
    if rule == "attribution_last":
        return "", f"Deutsch: {sc.translated(scene, 'de')} English: {eng}", alt, eng
    if rule == "alt_text":
        return "", f"Français : {sc.translated(scene, 'fr')}", alt, alt
    if rule == "none":
        return "Shapes", "IMG_0042.jpg", "Shapes", None
    raise ValueError(rule)


def write_wit(ctx: SampleContext) -> dict[str, Any]:
    rng = ctx.rng("wit")
    n = ctx.n(80, minimum=len(EN_RULES) + 3)
    plan, en_i = [], 0
    for i in range(n):
        if i % 4 == 3:
            plan.append((FOREIGN[i % 3], "not_english"))
        else:
            plan.append(("en", EN_RULES[en_i % len(EN_RULES)]))
            en_i += 1
    refs = [i for i, (_, rule) in enumerate(plan) if rule == "reference"]
    fault_rows = dict(zip(sorted(rng.sample(refs, 2)), ("404", "noai")))
    rows, expected = [], []
    for i, (lang, rule) in enumerate(plan):
        scene = ctx.scene(rng)
        if lang == "en":
            ref, attr, alt, text = _captions(rule, scene, rng)
        else:
            ref, attr, alt, text = sc.translated(scene, lang), "", "", None
        stem = "_and_".join(f"{s.color}_{s.kind}" for s in scene.shapes).capitalize()
        if i % 17 == 5:
            stem += "_étoile"  # a non-ASCII file name, percent-encoded in the URL like upload.wikimedia.org
        h = f"{rng.getrandbits(8):02x}"
        rel = f"images/wit/commons/{h[0]}/{h}/{stem}.jpg"
        if i in fault_rows:
            url = ctx.fault(fault_rows[i], rel, "wit", scene)
        else:
            ctx.serve_scene(rel, scene)
            url = ctx.url(f"images/wit/commons/{h[0]}/{h}/{quote(stem)}.jpg")
        title = stem.replace("_", " ")
        section = rng.choice(["", "Gallery", "Examples", "History"])
        context = f"{title} is a drawing.\n{sc.sentence(sc.listing(scene))}" if i % 5 == 0 else f"{title} is a drawing."
        rows.append({
            "language": lang, "page_url": f"https://{lang}.wikipedia.org/wiki/{quote(stem)}", "image_url": url,
            "page_title": title, "section_title": section,
            "hierarchical_section_title": f"{title} / {section}" if section else title,
            "caption_reference_description": ref, "caption_attribution_description": attr,
            "caption_alt_text_description": alt, "mime_type": "image/jpeg",
            "original_height": str(scene.height), "original_width": str(scene.width),
            "is_main_image": "true" if i % 3 == 0 else "false",
            "attribution_passes_lang_id": "true" if lang == "en" and "English" in attr else "false",
            "page_changed_recently": "false", "context_page_description": context,
            "context_section_description": context,
        })
        expected.append({"row": i, "language": lang, "rule": rule, "text": text})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    ctx.write_bytes(WIT_TSV, gzip_bytes(buf.getvalue().encode("utf-8")))
    ctx.expected["wit"] = expected
    ctx.counts("wit", rows=n, kept=sum(e["text"] is not None for e in expected))
    return {"paths": [WIT_TSV], "options": {}}
