"""Synthetic scenes for the embedded sample: 1-3 coloured shapes on a plain background.

Every image is rendered from a :class:`Scene`, and every caption is derived from the same
scene, so captions are true of their images ("a red circle to the left of a blue square").
That gives a small model something real to learn and lets tests check crops and captions.
Shapes sit in the cells of a 3x3 grid, so left/right/above/below relations are unambiguous.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

KINDS = ("circle", "square", "triangle", "star", "diamond", "hexagon")
COLORS = {
    "red": (214, 39, 40), "blue": (31, 90, 220), "green": (44, 160, 44), "yellow": (240, 208, 30),
    "orange": (255, 127, 14), "purple": (128, 60, 170), "pink": (240, 120, 190), "brown": (140, 86, 45),
}
# name -> (top colour, bottom colour); equal colours give a solid background
BACKGROUNDS = {
    "white": ((250, 250, 250), (250, 250, 250)), "light grey": ((205, 205, 205), (205, 205, 205)),
    "beige": ((236, 224, 198), (226, 212, 182)), "pale blue": ((170, 205, 240), (225, 238, 250)),
    "dark grey": ((70, 70, 72), (50, 50, 52)), "black": ((12, 12, 12), (12, 12, 12)),
}
LAYOUTS = ("single", "pair_h", "pair_v", "triple")


@dataclass(frozen=True)
class Shape:
    """One shape: its kind, colour, size class and grid cell (col, row in 0..2) with a small jitter."""

    kind: str
    color: str
    size: str  # "small" | "large"
    col: int
    row: int
    dx: float = 0.0
    dy: float = 0.0

    def phrase(self, article: bool = True, size: bool = False) -> str:
        """'a small red circle' / 'red circle'."""
        words = ([self.size] if size else []) + [self.color, self.kind]
        text = " ".join(words)
        return f"{'an' if text[0] in 'aeiou' else 'a'} {text}" if article else text


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]
    background: str
    width: int
    height: int
    layout: str

    def with_size(self, width: int, height: int) -> "Scene":
        return Scene(self.shapes, self.background, width, height, self.layout)

    def box(self, shape: Shape, width: int | None = None, height: int | None = None) -> tuple[int, int, int, int]:
        """The shape's bounding box ``(x, y, w, h)`` in pixels at the given (default: native) size."""
        w, h = width or self.width, height or self.height
        cw, ch = w / 3, h / 3
        side = min(cw, ch) * (0.8 if shape.size == "large" else 0.45)
        cx = cw * (shape.col + 0.5 + shape.dx)
        cy = ch * (shape.row + 0.5 + shape.dy)
        x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
        return x0, y0, min(int(side), w - x0), min(int(side), h - y0)

    def region(self, shapes: tuple[Shape, ...], pad: int = 4) -> tuple[int, int, int, int]:
        """The union box of ``shapes`` with ``pad`` pixels of margin, clipped to the image."""
        boxes = [self.box(s) for s in shapes]
        x0 = max(0, min(b[0] for b in boxes) - pad)
        y0 = max(0, min(b[1] for b in boxes) - pad)
        x1 = min(self.width, max(b[0] + b[2] for b in boxes) + pad)
        y1 = min(self.height, max(b[1] + b[3] for b in boxes) + pad)
        return x0, y0, x1 - x0, y1 - y0


def random_scene(rng: random.Random, min_side: int = 300, max_side: int = 640) -> Scene:
    layout = rng.choice(LAYOUTS)
    colors = rng.sample(sorted(COLORS), 3)
    if layout == "single":
        cells = [(rng.randrange(3), rng.randrange(3))]
    elif layout == "pair_h":
        row = rng.randrange(3)
        cells = [(c, row) for c in sorted(rng.sample(range(3), 2))]
    elif layout == "pair_v":
        col = rng.randrange(3)
        cells = [(col, r) for r in sorted(rng.sample(range(3), 2))]
    else:
        row = rng.randrange(3)
        cells = [(c, row) for c in range(3)]
    shapes = tuple(
        Shape(rng.choice(KINDS), colors[i], rng.choice(("small", "large")), c, r,
              round(rng.uniform(-0.08, 0.08), 3), round(rng.uniform(-0.08, 0.08), 3))
        for i, (c, r) in enumerate(cells)
    )
    width = rng.randrange(min_side, max_side + 1, 4)
    height = rng.randrange(min_side, max_side + 1, 4)
    return Scene(shapes, rng.choice(sorted(BACKGROUNDS)), width, height, layout)


# ---------------------------------------------------------------------------------------- rendering

def _background(name: str, width: int, height: int) -> Image.Image:
    top, bottom = BACKGROUNDS[name]
    if top == bottom:
        return Image.new("RGB", (width, height), top)
    steps = 64  # a 1-pixel-wide vertical ramp, stretched: far cheaper than colourising a full image
    column = Image.new("RGB", (1, steps))
    column.putdata([tuple(round(t + (b - t) * i / (steps - 1)) for t, b in zip(top, bottom)) for i in range(steps)])
    return column.resize((width, height), Image.Resampling.BILINEAR)


def _points(kind: str, x: int, y: int, w: int, h: int) -> list[tuple[float, float]]:
    cx, cy, r = x + w / 2, y + h / 2, min(w, h) / 2
    if kind == "triangle":
        return [(cx, y), (x + w, y + h), (x, y + h)]
    if kind == "diamond":
        return [(cx, y), (x + w, cy), (cx, y + h), (x, cy)]
    if kind == "hexagon":
        return [(cx + r * math.cos(math.pi / 3 * i), cy + r * math.sin(math.pi / 3 * i)) for i in range(6)]
    if kind == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            ang = -math.pi / 2 + math.pi / 5 * i
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        return pts
    raise ValueError(f"unknown shape kind {kind!r}")


def render(scene: Scene, width: int | None = None, height: int | None = None) -> Image.Image:
    """Draw ``scene`` (optionally at another size: positions are relative, so captions stay true)."""
    w, h = width or scene.width, height or scene.height
    img = _background(scene.background, w, h)
    draw = ImageDraw.Draw(img)
    for shape in scene.shapes:
        x, y, bw, bh = scene.box(shape, w, h)
        fill = COLORS[shape.color]
        if shape.kind == "circle":
            draw.ellipse((x, y, x + bw - 1, y + bh - 1), fill=fill)
        elif shape.kind == "square":
            draw.rectangle((x, y, x + bw - 1, y + bh - 1), fill=fill)
        else:
            draw.polygon(_points(shape.kind, x, y, bw - 1, bh - 1), fill=fill)
    return img


def jpeg_bytes(img: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------- captions

_WHERE = {(0, 0): "in the top left corner", (1, 0): "at the top", (2, 0): "in the top right corner",
          (0, 1): "on the left", (1, 1): "in the center", (2, 1): "on the right",
          (0, 2): "in the bottom left corner", (1, 2): "at the bottom", (2, 2): "in the bottom right corner"}
_SIDE = {(0, 0): "top left", (1, 0): "top", (2, 0): "top right", (0, 1): "left", (1, 1): "middle",
         (2, 1): "right", (0, 2): "bottom left", (1, 2): "bottom", (2, 2): "bottom right"}


def where(shape: Shape) -> str:
    return _WHERE[(shape.col, shape.row)]


def relation(scene: Scene, size: bool = False) -> str:
    """The core true statement about the scene, e.g. 'a red circle to the left of a blue square'."""
    s = scene.shapes
    if scene.layout == "single":
        return f"{s[0].phrase(size=size)} {where(s[0])}"
    if scene.layout == "pair_h":
        return f"{s[0].phrase(size=size)} to the left of {s[1].phrase(size=size)}"
    if scene.layout == "pair_v":
        return f"{s[0].phrase(size=size)} above {s[1].phrase(size=size)}"
    return f"{s[0].phrase(size=size)}, {s[1].phrase(size=size)} and {s[2].phrase(size=size)} in a row"


def listing(scene: Scene) -> str:
    """'a red circle and a blue square' (no positions)."""
    parts = [s.phrase() for s in scene.shapes]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def on_background(scene: Scene) -> str:
    return f"on a {scene.background} background"


def count_word(scene: Scene) -> str:
    return {1: "one shape", 2: "two shapes", 3: "three shapes"}[len(scene.shapes)]


def sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def coco_captions(scene: Scene, rng: random.Random, n: int = 5) -> list[str]:
    """Five different COCO-style sentences (capitalised, some with the trailing space real COCO has)."""
    s = scene.shapes
    options = [
        sentence(f"{relation(scene)} {on_background(scene)}"),
        sentence(f"{relation(scene, size=True)}"),
        sentence(f"{count_word(scene)} {on_background(scene)}: {listing(scene)}"),
        sentence(f"an image of {listing(scene)} {on_background(scene)}"),
        sentence(f"there is {s[0].phrase()} {where(s[0])} of the picture"),
        sentence(f"a simple drawing with {listing(scene)}"),
        sentence(f"a {scene.background} background with {relation(scene)}"),
    ]
    picked = rng.sample(options, n)
    return [c + " " if rng.random() < 0.2 else c for c in picked]


def coco_tokens(caption: str) -> list[str]:
    """Karpathy's tokens: lower-case words without punctuation."""
    return "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in caption.lower()).split()


def narrative(scene: Scene, rng: random.Random) -> str:
    """A Localized-Narratives-style spoken description: several sentences, each ending in '.'."""
    opener = rng.choice(["In this image we can see", "In this picture I can see", "This image consists of"])
    s = scene.shapes
    parts = [f"{opener} {s[0].phrase()} {where(s[0])}."]
    for shape in s[1:]:
        parts.append(sentence(f"{where(shape)} there is {shape.phrase(size=True)}"))
    parts.append(rng.choice([f"In the background it is {scene.background}.",
                             f"The background is {scene.background} in color."]))
    return " ".join(parts)


def region_phrases(scene: Scene, rng: random.Random) -> list[tuple[str, tuple[Shape, ...]]]:
    """Visual-Genome-style short phrases, each with the shapes its region must contain."""
    out: list[tuple[str, tuple[Shape, ...]]] = []
    for shape in scene.shapes:
        out.append((rng.choice([shape.phrase(article=False), f"the {shape.kind} is {shape.color}",
                                f"{shape.phrase(size=True)}", f"{shape.color} {shape.kind} {where(shape)}"]),
                    (shape,)))
    if len(scene.shapes) >= 2:
        a, b = scene.shapes[0], scene.shapes[1]
        rel = "left of" if scene.layout in ("pair_h", "triple") else "above"
        out.append((f"{a.color} {a.kind} {rel} {b.color} {b.kind}", (a, b)))
    return out


def lower_alt(scene: Scene, rng: random.Random) -> str:
    """CC3M style: lower-case, hypernymised alt-text without final period."""
    return rng.choice([f"{relation(scene)} {on_background(scene)}", f"{listing(scene)} {on_background(scene)}",
                       f"illustration of {relation(scene)}", f"{count_word(scene)} {on_background(scene)}"]
                      ) if len(scene.shapes) > 1 else rng.choice(
        [f"{relation(scene)} {on_background(scene)}", f"illustration of {relation(scene)}",
         f"{scene.shapes[0].phrase()} {on_background(scene)}"])


def web_caption(scene: Scene, rng: random.Random) -> str:
    """CC12M / SBU style: mixed case, sometimes product-like or personal."""
    rel = relation(scene)
    return rng.choice([sentence(rel)[:-1], f"Illustration of {rel} {on_background(scene)}",
                       f"I drew {rel}", f"Vector art: {listing(scene)} {on_background(scene)} - Image 1 of 4",
                       f"<PERSON> painted {rel}", f"{sentence(listing(scene))[:-1]} {on_background(scene)}"])


def redcaps_raw(scene: Scene, rng: random.Random) -> str:
    rel = relation(scene)
    return rng.choice([f"ITAP of {rel} [OC]", f"{sentence(rel)[:-1]} [{scene.width}x{scene.height}]",
                       f"My {listing(scene)[2:] if listing(scene).startswith('a ') else listing(scene)} "
                       f"{on_background(scene)} [OC]", f"ITAP of {listing(scene)}"])


def redcaps_clean(raw: str) -> str:
    """RedCaps' `caption`: brackets removed, lower-cased, 'itap' expanded."""
    out, depth = [], 0
    for ch in raw:
        depth += ch == "["
        if depth == 0:
            out.append(ch)
        depth -= ch == "]" and depth > 0
    text = " ".join("".join(out).split()).lower()
    return text.replace("itap of", "i took a picture of")


# ---------------------------------------------------------------------------------------- other languages

_FR_SHAPE = {"circle": ("cercle", "m"), "square": ("carré", "m"), "triangle": ("triangle", "m"),
             "star": ("étoile", "f"), "diamond": ("losange", "m"), "hexagon": ("hexagone", "m")}
_FR_COLOR = {"red": ("rouge", "rouge"), "blue": ("bleu", "bleue"), "green": ("vert", "verte"),
             "yellow": ("jaune", "jaune"), "orange": ("orange", "orange"), "purple": ("violet", "violette"),
             "pink": ("rose", "rose"), "brown": ("marron", "marron")}
_FR_BG = {"white": "blanc", "light grey": "gris clair", "beige": "beige", "pale blue": "bleu pâle",
          "dark grey": "gris foncé", "black": "noir"}
_DE_SHAPE = {"circle": ("Kreis", "einem"), "square": ("Quadrat", "einem"), "triangle": ("Dreieck", "einem"),
             "star": ("Stern", "einem"), "diamond": ("Raute", "einer"), "hexagon": ("Sechseck", "einem")}
_DE_COLOR = {"red": "roten", "blue": "blauen", "green": "grünen", "yellow": "gelben", "orange": "orangen",
             "purple": "violetten", "pink": "rosafarbenen", "brown": "braunen"}
_DE_BG = {"white": "weißem", "light grey": "hellgrauem", "beige": "beigem", "pale blue": "hellblauem",
          "dark grey": "dunkelgrauem", "black": "schwarzem"}
_ES_SHAPE = {"circle": ("círculo", "m"), "square": ("cuadrado", "m"), "triangle": ("triángulo", "m"),
             "star": ("estrella", "f"), "diamond": ("rombo", "m"), "hexagon": ("hexágono", "m")}
_ES_COLOR = {"red": ("rojo", "roja"), "blue": ("azul", "azul"), "green": ("verde", "verde"),
             "yellow": ("amarillo", "amarilla"), "orange": ("naranja", "naranja"), "purple": ("morado", "morada"),
             "pink": ("rosa", "rosa"), "brown": ("marrón", "marrón")}
_ES_BG = {"white": "blanco", "light grey": "gris claro", "beige": "beige", "pale blue": "azul claro",
          "dark grey": "gris oscuro", "black": "negro"}


def _fr(s: Shape) -> str:
    noun, g = _FR_SHAPE[s.kind]
    return f"{'une' if g == 'f' else 'un'} {noun} {_FR_COLOR[s.color][g == 'f']}"


def _es(s: Shape) -> str:
    noun, g = _ES_SHAPE[s.kind]
    return f"{'una' if g == 'f' else 'un'} {noun} {_ES_COLOR[s.color][g == 'f']}"


def _join(parts: list[str], word: str) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def translated(scene: Scene, lang: str) -> str:
    """The scene's shapes described in French, German or Spanish (long enough for language ID)."""
    if lang == "fr":
        return sentence(f"sur cette image on voit {_join([_fr(s) for s in scene.shapes], 'et')} "
                        f"sur un fond {_FR_BG[scene.background]}")
    if lang == "de":
        objs = [f"{_DE_SHAPE[s.kind][1]} {_DE_COLOR[s.color]} {_DE_SHAPE[s.kind][0]}" for s in scene.shapes]
        return sentence(f"auf diesem Bild sieht man eine Zeichnung mit {_join(objs, 'und')} "
                        f"auf {_DE_BG[scene.background]} Hintergrund")
    if lang == "es":
        return sentence(f"en esta imagen se ve {_join([_es(s) for s in scene.shapes], 'y')} "
                        f"sobre un fondo {_ES_BG[scene.background]}")
    raise ValueError(f"no translation for {lang!r}")
