"""Deterministic generator of YFCC100M-format metadata rows (the 25-column ``yfcc100m_dataset`` TSV).

The mix imitates the real file (see /work/shared/data/sources/yfcc100m): many empty descriptions
and camera-style titles (``IMG_0520``), URL-form-encoded text (``+`` and ``%XX``, UTF-8 accents),
HTML links and tags, entities, about 30% non-English text, ~5% videos (marker 1), and a few
malformed lines (wrong column count). Same ``n`` and ``seed`` give byte-identical output.

    from bench.yfcc_rows import write_rows, generate_rows
    path = write_rows("/tmp/yfcc.tsv", 1_000_000, seed=0)
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path
from typing import Iterator
from urllib.parse import quote_plus

EN = ("the old pier at sunset taken from the beach with my new camera on a cold winter morning in the "
      "city park family trip to see mountains river bridge church house street market festival "
      "wedding party friends dog cat garden flowers summer holiday museum castle lake boat train "
      "station night lights view from our hotel window last day of school graduation ceremony "
      "concert stage band playing live music birthday cake kids playing in snow").split()
LANGS = {
    "fr": ("le la les une des du de et est dans sur avec pour nous vacances plage soleil maison "
           "famille chien chat jardin fleurs montagne rivière église marché ville nuit été hiver "
           "très belle journée avec mes amis au bord de la mer").split(),
    "de": ("der die das und ist ein eine mit auf im am für wir urlaub strand sonne haus familie "
           "hund katze garten blumen berge fluss kirche markt stadt nacht sommer winter sehr schöner "
           "tag mit meinen freunden am meer").split(),
    "es": ("el la los las un una y es en con para nosotros vacaciones playa sol casa familia perro "
           "gato jardín flores montaña río iglesia mercado ciudad noche verano invierno muy bonito "
           "día con mis amigos junto al mar").split(),
    "it": ("il la gli le un una e è nel con per noi vacanze spiaggia sole casa famiglia cane gatto "
           "giardino fiori montagna fiume chiesa mercato città notte estate inverno molto bella "
           "giornata con i miei amici al mare").split(),
    "pt": ("o a os as um uma e é no na com para nós férias praia sol casa família cão gato jardim "
           "flores montanha rio igreja mercado cidade noite verão inverno muito bonito dia com os "
           "meus amigos perto do mar").split(),
    "nl": ("de het een en is met op in voor wij vakantie strand zon huis familie hond kat tuin "
           "bloemen bergen rivier kerk markt stad nacht zomer winter heel mooie dag met mijn "
           "vrienden aan zee").split(),
    "ja": "東京 の 夜景 は とても きれい です 京都 で 桜 を 見ました 家族 と 旅行 海 山 写真".split(),
}
NON_EN = tuple(LANGS)
CAMERAS = ("Canon+EOS+DIGITAL+REBEL+XSi", "NIKON+D90", "Canon+PowerShot+S100", "Apple+iPhone+4", "")


def _words(rng: random.Random, vocab: list[str], lo: int, hi: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi)))


def _text(rng: random.Random, kind: str) -> str:
    """Raw (decoded) text of one field: ``en``, ``xx`` (another language), ``short`` or ``empty``."""
    if kind == "empty":
        return ""
    if kind == "short":
        return rng.choice(("IMG_%04d" % rng.randint(0, 9999), "DSC%05d" % rng.randint(0, 99999),
                           "P%07d" % rng.randint(0, 9999999), "untitled", "2010 06 12"))
    if kind == "en":
        t = _words(rng, EN, 3, 18)
        t = t[0].upper() + t[1:]
    else:
        lang = rng.choice(NON_EN)
        t = _words(rng, LANGS[lang], 3, 16)
    r = rng.random()
    if r < 0.12:
        t = f'{t} <a href="http://www.flickr.com/photos/{rng.randint(1, 99999)}/" rel="nofollow">more photos</a>'
    elif r < 0.18:
        t = f"<b>{t}</b>"
    elif r < 0.22:
        t = t.replace(" and ", " &amp; ") + " &quot;ok&quot;"
    elif r < 0.26:
        t = t + "\n" + _words(rng, EN, 2, 6)
    return t


def _field(rng: random.Random) -> tuple[str, str]:
    """(description, title) raw texts with realistic frequencies (~30% non-English text)."""
    rd = rng.random()
    desc = "empty" if rd < 0.45 else "en" if rd < 0.70 else "xx" if rd < 0.92 else "short"
    rt = rng.random()
    title = "short" if rt < 0.35 else "en" if rt < 0.62 else "xx" if rt < 0.85 else "empty"
    return _text(rng, desc), _text(rng, title)


def generate_rows(n: int, seed: int = 0, video_rate: float = 0.05, malformed_rate: float = 0.0005) -> Iterator[str]:
    """``n`` lines (without newline) of the 25-column YFCC100M TSV."""
    rng = random.Random(seed)
    for i in range(n):
        photo_id = 1_000_000_000 + i * 7919 % 9_000_000_000
        server, farm = rng.randint(1000, 9999), rng.randint(1, 9)
        secret = "%010x" % rng.getrandbits(40)
        desc, title = _field(rng)
        marker = "1" if rng.random() < video_rate else "0"
        cols = [
            str(i), str(photo_id), "%032x" % rng.getrandbits(128), f"{rng.randint(1, 99999999)}@N0{rng.randint(0, 8)}",
            quote_plus("user%d" % rng.randint(0, 99999)), "2012-02-16 09:56:37.0", str(1_200_000_000 + i),
            rng.choice(CAMERAS), quote_plus(title), quote_plus(desc),
            "beach,pier,sunset" if rng.random() < 0.4 else "", "",
            "-118.496" if rng.random() < 0.3 else "", "34.008" if rng.random() < 0.3 else "", "16",
            f"http://www.flickr.com/photos/{rng.randint(1, 99999)}@N00/{photo_id}/",
            f"http://farm{farm}.staticflickr.com/{server}/{photo_id}_{secret}.jpg",
            "Attribution-NonCommercial-ShareAlike License", "http://creativecommons.org/licenses/by-nc-sa/2.0/",
            str(server), str(farm), secret, "%010x" % rng.getrandbits(40), "jpg" if marker == "0" else "mp4", marker,
        ]
        if rng.random() < malformed_rate:
            cols = cols[:20]  # a truncated line: wrong column count
        yield "\t".join(cols)


def write_rows(path: str | os.PathLike[str], n: int, seed: int = 0) -> Path:
    """Write ``n`` rows to ``path`` (temp + rename); reuse the file when it already holds them."""
    path = Path(path)
    stamp = path.with_name(path.name + f".n{n}.s{seed}.done")
    if path.exists() and stamp.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        buf: list[str] = []
        for line in generate_rows(n, seed):
            buf.append(line)
            if len(buf) >= 10000:
                f.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            f.write("\n".join(buf) + "\n")
    os.replace(tmp, path)
    stamp.write_text("ok\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(write_rows(a.out, a.n, a.seed))


if __name__ == "__main__":
    main()
