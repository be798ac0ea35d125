"""Small helpers that keep the stats notebooks thin: open the named build, show figures and tables.

Figures are shown as PNG images (``IPython.display.Image``) and saved under the plots
directory, so the notebooks work the same with the Agg backend under nbclient as in Jupyter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pmd.errors import UserError
from pmd.stats.load import MAKE_HINT, Build, load_build, resolve_build_dir


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def open_build(build_dir: str | Path, kind: str) -> Build:
    """Load ``build_dir``; if it is missing or of another kind, say how to make it and stop."""
    from IPython.display import Markdown

    try:
        build = load_build(resolve_build_dir(build_dir))
    except UserError as e:
        _display(Markdown(f"**Cannot open `{build_dir}`.** {e}\n\n{MAKE_HINT}"))
        raise
    if build.kind != kind:
        msg = f"{build.root} is a {build.kind} build; this notebook reads {kind} builds."
        _display(Markdown(f"**Wrong build kind.** {msg}"))
        raise UserError(msg)
    return build


def header(build: Build) -> str:
    """Markdown lines naming the build: path, kind, shards, samples, creation time, versions."""
    m = build.manifest
    versions = ", ".join(f"{k} {v}" for k, v in sorted((m.get("versions") or {}).items()))
    return (f"**Build** `{build.root}`  \n**kind** `{build.kind}` · **shards** {len(m.get('shards', []))} · "
            f"**samples** {m.get('total_samples', '?')} · **created** {m.get('created', '?')}  \n"
            f"**versions** {versions or 'not recorded'}")


def plots_dir(build: Build, override: str | Path | None = None) -> Path:
    out = Path(override) if override else build.root / "stats" / "plots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def show(fig: Any, name: str, out_dir: str | Path) -> None:
    """Save ``fig`` as ``out_dir/name.png`` and display it (returns nothing, so no path is echoed)."""
    from IPython.display import Image

    path = Path(out_dir) / f"{name}.png"
    fig.savefig(path, format="png", dpi=100)
    _display(Image(filename=str(path)))


def show_html(html: str) -> None:
    from IPython.display import HTML

    _display(HTML(html))
