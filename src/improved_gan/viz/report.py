"""A self-contained ``report.html`` per run (inline CSS, no scripts, no external resources; figures are
the PNG/GIF files of the run directory, referenced by relative path), and Markdown tables."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.6em;border-bottom:2px solid #444;padding-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #bbb;padding:.3em .6em;
text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em;vertical-align:top}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555;text-align:center}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
"""


@dataclasses.dataclass
class Section:
    title: str
    text: str = ""
    figures: Sequence[str] = ()  # file names relative to the report
    rows: Sequence[dict[str, Any]] = ()  # a table, one dict per row
    columns: Sequence[str] | None = None
    code: str = ""  # preformatted text (a command, a JSON blob)


def format_value(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (dicts), columns in the given or first-seen order."""
    columns = list(columns or _columns(rows))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c, ""), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None) -> str:
    columns = list(columns or _columns(rows))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(path: str | Path, title: str, sections: Sequence[Section], config: dict | None = None) -> Path:
    """Write the HTML page; figures missing on disk raise, so a report never shows a broken image."""
    path = Path(path)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.rows:
            parts.append(_html_table(s.rows, s.columns))
        for fig in s.figures:
            if not (path.parent / fig).is_file():
                raise FileNotFoundError(f"report figure {fig} is missing from {path.parent}")
            name = html.escape(fig)
            parts.append(f"<figure><img src='{name}' alt='{name}'><figcaption>{name}</figcaption></figure>")
        if s.code:
            parts.append(f"<pre>{html.escape(s.code)}</pre>")
        parts.append("</section>")
    if config is not None:
        parts.append("<section><h2>Options</h2><pre>" + html.escape(json.dumps(config, indent=2)) + "</pre></section>")
    parts.append("</body></html>\n")
    path.write_text("".join(parts))
    return path
