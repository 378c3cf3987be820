"""A dataset's per-language mAP matrix as a small SVG (an artifact trackers show as an image).

No plotting library: the matrix is a grid of coloured squares with their numbers, the same colour
scale as the app's heatmap (:func:`cell_colour`).
"""

from __future__ import annotations

from html import escape


def cell_colour(value: float, lo: float, hi: float, diverging: bool = False) -> tuple[int, int, int]:
    """Background colour of a value in [lo, hi]: light to dark blue, or red–white–green around 0."""
    if diverging:
        span = max(abs(lo), abs(hi), 1e-9)
        t = max(-1.0, min(1.0, value / span))
        return (int(255 - 155 * t), 255, int(255 - 155 * t)) if t >= 0 else (255, int(255 + 155 * t), int(255 + 155 * t))
    t = 0.0 if hi <= lo else (value - lo) / (hi - lo)
    return int(250 - 210 * t), int(250 - 120 * t), int(250 - 40 * t)


def readable_on(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return "black" if (0.299 * r + 0.587 * g + 0.114 * b) > 140 else "white"


def language_matrix(report: dict, metric: str = "map") -> tuple[list[str], list[list[float | None]]] | None:
    """Languages and the query × corpus matrix of ``metric`` from a report's mono and cross cells."""
    cells = {(c["query_lang"], c["corpus_lang"]): c["metrics"][metric] for c in report["cells"]
             if c["setting"] in ("mono", "cross") and metric in c["metrics"]}
    if not cells:
        return None
    langs = sorted({lang for pair in cells for lang in pair})
    return langs, [[cells.get((q, c)) for c in langs] for q in langs]


def heatmap_svg(report: dict, metric: str = "map", cell: int = 56) -> str | None:
    """The SVG text, or None if the report has no per-language cells of ``metric``."""
    matrix = language_matrix(report, metric)
    if matrix is None:
        return None
    langs, values = matrix
    flat = [v for row in values for v in row if v is not None]
    lo, hi = min(flat), max(flat)
    left, top = 40, 48
    width, height = left + cell * len(langs) + 8, top + cell * len(langs) + 8
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
           f'<text x="4" y="16">{escape(report["dataset"])}: {escape(metric)} (query language ↓, corpus language →)</text>']
    for j, lang in enumerate(langs):
        out.append(f'<text x="{left + j * cell + cell // 2}" y="{top - 8}" text-anchor="middle">{escape(lang)}</text>')
    for i, (lang, row) in enumerate(zip(langs, values)):
        y = top + i * cell
        out.append(f'<text x="{left - 6}" y="{y + cell // 2 + 4}" text-anchor="end">{escape(lang)}</text>')
        for j, value in enumerate(row):
            x = left + j * cell
            if value is None:
                out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#eeeeee"/>')
                continue
            rgb = cell_colour(value, lo, hi)
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb{rgb}"/>')
            out.append(f'<text x="{x + cell // 2}" y="{y + cell // 2 + 4}" text-anchor="middle" fill="{readable_on(rgb)}">'
                       f'{value:.3f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
