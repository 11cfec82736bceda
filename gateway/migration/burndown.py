"""The migration page's burn-down: deprecated calls per day, one line per group, as inline SVG
(pure; no I/O). Every text in it is escaped; it loads nothing and runs nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

# Distinguishable on white, and for the common colour-blindnesses (Okabe-Ito, darkened).
PALETTE = ("#0a6fb3", "#c7581a", "#12805c", "#b0388a", "#6b5a00", "#3b4cc0", "#8a3b12", "#444")
WIDTH, HEIGHT = 600, 250
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 30  # plot margins
FONT = 14


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _nice_max(value: int) -> int:
    """The y axis's top: 1, or 2, 4, 6 or 10 times a power of ten, at least ``value``: its
    half is then a whole number too."""
    if value <= 1:
        return 1
    base = 1
    while True:
        for multiple in (2, 4, 6, 10):
            if base * multiple >= value:
                return base * multiple
        base *= 10


def _label(day: float) -> str:
    return datetime.fromtimestamp(day, UTC).strftime("%b %d")


def svg(days: Sequence[float], lines: Mapping[str, Sequence[int]]) -> str:
    """An SVG line chart of ``lines`` (group -> calls per day of ``days``, oldest first)."""
    count = len(days)
    peak = max((max(values) for values in lines.values() if values), default=0)
    top = _nice_max(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-labelledby="burndown-title" xmlns="http://www.w3.org/2000/svg">',
        '<title id="burndown-title">Deprecated calls per day over the last '
        f"{count} days, one line per group</title>",
    ]
    for fraction in (0, 0.5, 1) if top > 1 else (0, 1):
        level = top * fraction
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y(level) + 5:.1f}" text-anchor="end" '
            f'font-size="{FONT}" fill="#4a5363">{level:g}</text>'
        )
    for index in sorted({0, count // 2, count - 1}) if count else ():
        anchor = "start" if index == 0 else "end" if index == count - 1 else "middle"
        parts.append(
            f'<text x="{x(index):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" '
            f'font-size="{FONT}" fill="#4a5363">{escape(_label(days[index]))}</text>'
        )
    for number, (group, values) in enumerate(lines.items()):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        stroke = colour(number)
        parts.append(
            f'<g class="series" data-group="{escape(group)}">'
            f'<polyline fill="none" stroke="{stroke}" stroke-width="2.5" '
            f'stroke-linejoin="round" points="{points}"/>'
        )
        for i, value in enumerate(values):
            if value:
                parts.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{stroke}">'
                    f"<title>{escape(group)}: {value} on {escape(_label(days[i]))}</title>"
                    "</circle>"
                )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
