"""Loading the compiled walk (``pmd/interleaved/_walk.c``) and checking it against the Python reference.

The C walk reads selectolax's lexbor structs by pointer, so it is only used for a selectolax release
whose layout it was verified against (``VERIFIED_SELECTOLAX``) and after a probe document reads and
extracts the same through both at import. Otherwise ``pmd.interleaved.extract`` uses the Python walk
and logs a WARNING once (extraction is then about 2x slower, with the same output).
"""

from __future__ import annotations

import logging
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from pmd.interleaved.assemble import assemble
from pmd.interleaved.budgets import OverBudget
from pmd.interleaved.image_src import _PLACEHOLDER_PARTS, IMG_SRCSET_ATTRS, IMG_URL_ATTRS
from pmd.interleaved.select import (
    _BOILERPLATE_LINE, _PARA_TAGS, _REGION_TAGS, CLIMB_BRANCHES, CLIMB_CANDIDATES, CLIMB_COVER, CLIMB_FRAC,
    CLIMB_LEVELS, COMMENT_HEADING, COMMENT_HEADING_MAX, COMMENT_HEADING_TAGS, LINK_DENSITY_MAX, NESTED_BOX_PARAS,
    SIBLING_BOX_MAX, TAG_BONUS, WIDER_MIN_CHARS, WIDER_MIN_PARAS, WIDER_TAGS,
)
from pmd.interleaved.walk import (
    _NEVER_NEGATIVE, _TOKEN_CACHE, BLOCK_SEP, GALLERY_WEIGHT, KIND, THREAD_WEIGHT, _Block, _fix_nul, _hints_of, _Image,
    _image_fields_of, _img_item, _is_hidden, _picture_item, _walk_py,
)

log = logging.getLogger(__name__)

# selectolax releases whose lexbor struct layouts pmd/interleaved/_walk.c was checked against (lexbor
# 3.1.0 in selectolax 1.0.2). Any other version uses the Python walk.
VERIFIED_SELECTOLAX = frozenset({"1.0.2"})
_PROBE_HTML = (
    "<!DOCTYPE html><html><head><title>t</title></head><body class='b'><!-- c --><div id='m' class=\"x  y\" "
    "hidden data-x>\u00a0<p>Caf\u00e9 <b>a</b><br>b<a href='/l'> link \u2003</a>\v</p><amp-img src='a.jpg' "
    "width=3></amp-img><my-el Foo='1' xlink:href='h' style='display: NONE'>x</my-el><picture><source "
    "srcset='s.webp 2x'><!-- n --><img src='i.jpg' alt=''></picture><svg><path d='M0'/></svg>"
    "<table><tr><td>c\u3000d</td></tr></table><fb:like aria-hidden=true>f</fb:like></div>\ud83d\ude00"
    "<img srcset='' src=''><section style='visibility:hidden'>h</section><ul class='menu share'><li>l</li>"
    "</ul></body></html>"
)


def _check_layout(mod: Any) -> str | None:
    """Compare what the C side reads from every node of a probe document with selectolax's own API
    (tag id, links, text, attributes, names) and both walks' results; the problem, or None."""
    tree = LexborHTMLParser(_PROBE_HTML)
    root = tree.root
    if root is None or tree.body is None:
        return "probe document has no root"
    nodes = [root, *root.traverse(include_text=True)]
    for n in nodes:
        tid, _type, nxt, parent, child, text, attrs, name = mod.probe(n.mem_id)
        want_text = n.text_content.encode("utf-8") if n.text_content is not None else None
        want = (n.tag_id, n.next.mem_id if n.next else 0, n.parent.mem_id if n.parent else 0,
                n.first_child.mem_id if n.first_child else 0, want_text, n.tag)
        got = (tid, nxt, parent, child, text, name)
        if got != want:
            return f"node {n.tag!r}: C read {got!r}, selectolax says {want!r}"
        if attrs is not None and attrs != n.attributes:
            return f"node {n.tag!r}: C attributes {attrs!r}, selectolax says {n.attributes!r}"
    for body in (tree.body, root):
        a = _walk_py(body, "https://example.org/a/")
        b = mod.walk(body.mem_id, body.tag, "https://example.org/a/")
        if walk_key(a) != walk_key(b):
            return "walk results differ on the probe document"
        for mc in (True, False):
            if assemble(_walk_py(body, "https://example.org/a/"), mc) != mod.extract(body.mem_id, body.tag, "https://example.org/a/", mc):
                return "documents differ on the probe document"
    return None


def walk_key(res: tuple) -> tuple:
    """A walk's result in comparable form (blocks and images as tuples)."""
    blocks, items, parent_of, tag_of, negative, weight = res
    conv = [(k, (it.text, it.el, it.link_chars, it.sep, it.tag) if k == "t" else
             (it.url, it.src, it.alt, it.width, it.height, it.el)) for k, it in items]
    return ([(b.text, b.el, b.link_chars, b.sep, b.tag) for b in blocks], conv, parent_of, tag_of, negative, weight)


def load_compiled() -> Any:
    """The compiled walk module, initialised and layout-checked; None (logged as a WARNING: extraction
    is then about 2x slower) when it is not built, the selectolax version is not a verified one, or the
    check fails."""
    try:
        import ctypes
        import importlib
        import os
        from importlib.metadata import version

        import selectolax.lexbor as lexbor_mod

        mod = importlib.import_module("pmd.interleaved._walk")
    except ImportError as e:
        log.warning("compiled interleaved walk not available (%s); using the Python walk (same output, "
                    "about 2x slower): build it with `python setup.py build_ext --inplace`", e)
        return None
    try:
        sv = version("selectolax")
        if sv not in VERIFIED_SELECTOLAX:
            log.warning("selectolax %s is not a version the compiled walk was verified with (%s); using the "
                        "Python walk (same output, about 2x slower)", sv, ", ".join(sorted(VERIFIED_SELECTOLAX)))
            return None
        # the loaded selectolax extension itself (RTLD_NOLOAD): its two qualified-name functions
        lib = ctypes.CDLL(lexbor_mod.__file__, mode=os.RTLD_NOLOAD | os.RTLD_LOCAL)
        attr_qname = ctypes.cast(lib.lxb_dom_attr_qualified_name, ctypes.c_void_p).value
        elem_qname = ctypes.cast(lib.lxb_dom_element_qualified_name, ctypes.c_void_p).value
        special = {tid: name for tid, name in lexbor_mod._TAG_TO_NAME.items()}
        mod.init(attr_qname, elem_qname, KIND, BLOCK_SEP, special, _NEVER_NEGATIVE, _TOKEN_CACHE, _hints_of,
                 _is_hidden, _img_item, _picture_item, _fix_nul, _Block, _Image, TAG_BONUS, _PARA_TAGS,
                 _REGION_TAGS, _BOILERPLATE_LINE.match)
        mod.set_budget_error(OverBudget)
        mod.set_wider(WIDER_MIN_CHARS, WIDER_MIN_PARAS, WIDER_TAGS)
        mod.set_select(LINK_DENSITY_MAX, CLIMB_FRAC, CLIMB_COVER, CLIMB_CANDIDATES, CLIMB_BRANCHES, CLIMB_LEVELS,
                       NESTED_BOX_PARAS, THREAD_WEIGHT, GALLERY_WEIGHT, SIBLING_BOX_MAX)
        mod.set_comment_heading(COMMENT_HEADING.match, COMMENT_HEADING_TAGS, COMMENT_HEADING_MAX)
        # its own <img> path: only with the same attribute and placeholder lists as here
        attrs, parts = mod.set_image_fields(_image_fields_of)
        if attrs != IMG_SRCSET_ATTRS + IMG_URL_ATTRS or parts != _PLACEHOLDER_PARTS:
            mod.set_image_fields(None)
            log.warning("compiled <img> path disabled: its attribute lists differ from image_src.py's")
        problem = _check_layout(mod)
    except Exception as e:  # noqa: BLE001 - any failure means: do not use it
        problem = f"{type(e).__name__}: {e}"
    if problem:
        log.warning("compiled interleaved walk disabled: %s; using the Python walk (same output, about 2x "
                    "slower)", problem)
        return None
    return mod
