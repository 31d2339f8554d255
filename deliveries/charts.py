"""Small SVG charts drawn on the server: no JavaScript, no CDN, readable without a network."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from .services.health import OUTCOMES, DayOutcomes

COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "http_error": "#c62828",
    "timeout": "#ef6c00",
    "connection": "#6a1b9a",
    "other": "#6d4c41",
}


def _n(value: float) -> str:
    return f"{value:.1f}"


def day_bars(days: Sequence[DayOutcomes], width: int = 70, height: int = 22) -> SafeString:
    """One stacked bar per day (successes green over failures red), scaled to the busiest day."""
    peak = max((d.succeeded + d.failed for d in days), default=0) or 1
    slot = width / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        x = i * slot + 1
        fail_h = height * day.failed / peak
        ok_h = height * day.succeeded / peak
        title = f"{day.day.isoformat()}: {day.succeeded} ok, {day.failed} failed"
        bars.append(
            format_html(
                '<g><title>{}</title><rect x="{}" y="{}" width="{}" height="{}" '
                'fill="{}"/><rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                '<rect x="{}" y="{}" width="{}" height="1" fill="#ccc"/></g>',
                title,
                _n(x),
                _n(height - fail_h),
                _n(slot - 2),
                _n(fail_h),
                COLOURS["failed"],
                _n(x),
                _n(height - fail_h - ok_h),
                _n(slot - 2),
                _n(ok_h),
                COLOURS["succeeded"],
                _n(x),
                height - 1,
                _n(slot - 2),
            )
        )
    return format_html(
        '<svg class="webhooks-days" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        width,
        height,
        width,
        height,
        "outcomes of the last days",
        mark_safe("".join(bars)),
    )


def minute_chart(
    minutes: Sequence[tuple[dt.datetime, dict[str, int]]], width: int = 720, height: int = 180
) -> SafeString:
    """Attempts per minute, stacked by outcome, with a legend and the peak on the axis."""
    top, bottom, left = 10, 20, 34
    plot_h, plot_w = height - top - bottom, width - left - 4
    peak = max((sum(c.values()) for _, c in minutes), default=0) or 1
    slot = plot_w / max(len(minutes), 1)
    parts = [
        format_html(
            '<text x="0" y="{}" font-size="10">{}</text><text x="0" y="{}" font-size="10">0</text>'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>',
            top + 8,
            peak,
            top + plot_h,
            left,
            top + plot_h,
            width,
            top + plot_h,
        )
    ]
    for i, (minute, counts) in enumerate(minutes):
        x = left + i * slot
        y: float = top + plot_h
        title = f"{minute:%H:%M} " + ", ".join(f"{k}: {v}" for k, v in counts.items() if v)
        rects = []
        for outcome in OUTCOMES:
            h = plot_h * counts.get(outcome, 0) / peak
            if h <= 0:
                continue
            y -= h
            rects.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                    _n(x),
                    _n(y),
                    _n(max(slot - 1, 1)),
                    _n(h),
                    COLOURS[outcome],
                )
            )
        if rects:
            parts.append(
                format_html("<g><title>{}</title>{}</g>", title, mark_safe("".join(rects)))
            )
        if i % 10 == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10">{}</text>',
                    _n(x),
                    height - 4,
                    f"{minute:%H:%M}",
                )
            )
    legend = format_html_join(
        "",
        '<span style="margin-right:1em"><span style="display:inline-block;width:10px;'
        'height:10px;background:{}"></span> {}</span>',
        ((COLOURS[o], o.replace("_", " ")) for o in OUTCOMES),
    )
    return format_html(
        '<svg id="webhooks-minutes" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg><div>{}</div>',
        width,
        height,
        width,
        height,
        escape("attempts per minute by outcome"),
        mark_safe("".join(parts)),
        legend,
    )


def success_rate_html(succeeded: int, attempts: int) -> str:
    """The share of 2xx attempts as a coloured percentage ("-" without attempts): green from
    99%, orange from 90%, red below; the counts in its title."""
    if not attempts:
        return "-"
    rate = succeeded / attempts
    colour = "#2e7d32" if rate >= 0.99 else "#ef6c00" if rate >= 0.9 else "#c62828"
    return format_html(
        '<span style="color:{}" title="{} of {} attempts">{}%</span>',
        colour,
        succeeded,
        attempts,
        f"{rate * 100:.1f}",
    )


def p95_text(p95_ms: int | None, over: bool) -> str:
    """A p95 read from latency buckets: "≤ 250 ms", "> 30000 ms" beyond the last, "-"."""
    if p95_ms is None:
        return "-"
    return f"{'>' if over else '≤'} {p95_ms} ms"
