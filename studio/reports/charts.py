"""Spend per day, split by model: the daily table's rows and the geometry of the stacked
bar chart that the template draws as inline SVG. No script and no style attributes (a
CSP without unsafe-inline is coming): colours come from CSS classes per series."""

import math

from jobs.models import Job

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 26
MAX_DAY_LABELS = 8


def series_for(rows):
    """The models to show, in a fixed order (so each keeps its colour); one the price
    list does not know yet still gets its own series."""
    labels = dict(Job.Model.choices)
    extra = sorted({row["model"] for row in rows} - labels.keys())
    keys = [*labels, *extra]
    return [{"model": key, "label": labels.get(key, key or "other"), "css": f"s{n}"} for n, key in enumerate(keys)]


def by_model(rows, series):
    """The by-model table: every series, with its spend (zero when none)."""
    found = {row["model"]: row for row in rows}
    table = []
    for s in series:
        row = found.get(s["model"], {"amount": 0, "jobs": 0})
        table.append({**s, "amount": row["amount"], "jobs": row["jobs"]})
    return table


def daily(period, rows, series):
    """Every day of the period with its spend per model (zeros included)."""
    cells = {(row["day"], row["model"]): row for row in rows}
    days = []
    for day in period.days:
        parts = [cells.get((day, s["model"]), {"amount": 0, "jobs": 0}) for s in series]
        days.append({
            "day": day,
            "parts": [{**s, "amount": p["amount"], "jobs": p["jobs"]} for s, p in zip(series, parts, strict=True)],
            "amount": sum(p["amount"] for p in parts),
            "jobs": sum(p["jobs"] for p in parts),
        })
    return days


def nice_scale(highest, ticks=4):
    """A top of the axis and a round step (1, 2 or 5 × 10ⁿ micro-dollars) that covers it."""
    if highest <= 0:
        return 100_000, 25_000
    rough = highest / ticks
    power = 10 ** max(math.floor(math.log10(rough)), 0)
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return step * math.ceil(highest / step), step


def stacked_bars(days):
    top, step = nice_scale(max((d["amount"] for d in days), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.72, 1)
    every = math.ceil(len(days) / MAX_DAY_LABELS) or 1

    def y_of(amount):
        return TOP + plot_h - plot_h * amount / top

    bars = []
    for n, day in enumerate(days):
        x = LEFT + n * slot + (slot - bar_w) / 2
        base, segments = 0, []
        for part in day["parts"]:
            if part["amount"]:
                y0, y1 = y_of(base), y_of(base + part["amount"])
                segments.append({**part, "y": _r(y1), "height": _r(y0 - y1)})
                base += part["amount"]
        bars.append({
            "day": day["day"], "x": _r(x), "width": _r(bar_w), "segments": segments,
            "label_x": _r(x + bar_w / 2) if n % every == 0 else None,
        })
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
        "top": TOP, "bottom": HEIGHT - BOTTOM, "tick_x": LEFT - 6, "label_y": HEIGHT - 8,
        "ticks": [{"amount": a, "y": _r(y_of(a))} for a in range(0, top + 1, step)],
        "bars": bars,
    }


def _r(value):
    return round(value, 2)
