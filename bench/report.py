"""The results: a table on stdout, ``latest.json``, and the ingress chart (``ingress.png``)."""

from __future__ import annotations

import json
import operator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.plan import GOALS, Plan
from bench.stats import Figure, Spread

_COMPARE = {">=": operator.ge, "<=": operator.le}


def met(figure: Figure) -> bool | None:
    if figure.key not in GOALS:
        return None
    sign, bound, side = GOALS[figure.key]
    return _COMPARE[sign]((figure.sides[side] if side else figure.value).median, bound)


def results(figures: list[Figure], plan: Plan, setup: dict[str, Any]) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "plan": asdict(plan),
        **setup,
        "goals": {key: f"{side + ' ' if side else ''}{sign} {bound}" for key, (sign, bound, side) in GOALS.items()},
        "figures": {f.key: {**f.to_dict(), "goal": _goal(f.key), "met": met(f)} for f in figures},
    }


def table(figures: list[Figure]) -> str:
    rows = [("", "figure", "median [min–max]", "goal", "met", "raw medians")]
    for f in figures:
        raw = " · ".join(f"{name} {_num(s.median)}" for name, s in f.sides.items())
        if f.key == "B5":
            keys = f.details["keys"]
            raw += f" · keys {keys['baseline']} → {keys['tracked']} → {keys['after']}"  # type: ignore[index]
        ok = met(f)
        verdict = "" if ok is None else ("yes" if ok else "NO")
        rows.append((f.key, f.title, _spread(f.value, f.unit), _goal(f.key) or "—", verdict, raw))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def write(out: Path, data: dict[str, Any], figures: list[Figure]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    chart(out / "ingress.png", {f.key: f for f in figures})


def chart(path: Path, figures: dict[str, Figure]) -> None:
    """Throughput (saturated) and p99 (same fixed rate), bare Flask against the ingress."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b1, b2 = figures["B1"], figures["B2"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, figure, suffix, ylabel in ((left, b1, "rps", "requests/s (saturated)"),
                                       (right, b2, "p99 ms", f"p99 ms at {b2.details['rate_rps']:.0f} requests/s")):
        spreads = [figure.sides[f"bare {suffix}"], figure.sides[f"ingress {suffix}"]]
        medians = [s.median for s in spreads]
        errors = [[m - s.min for m, s in zip(medians, spreads)], [s.max - m for m, s in zip(medians, spreads)]]
        ax.bar(["bare Flask", "ingress"], medians, yerr=errors, capsize=6, color=["#9aa5b1", "#2f6fb3"])
        ax.set_ylabel(ylabel)
        ax.set_title(f"{figure.key}: ratio {figure.value.median:.2f}")
        for x, m in enumerate(medians):
            ax.annotate(_num(m), (x, m), ha="center", va="bottom", xytext=(0, 3), textcoords="offset points")
    fig.suptitle("POST /webhooks/livechat: bare Flask vs the chathooks ingress (median, min–max bars)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _goal(key: str) -> str | None:
    if key not in GOALS:
        return None
    sign, bound, side = GOALS[key]
    return f"{side + ' ' if side else ''}{'≥' if sign == '>=' else '≤'} {bound:g}"


def _spread(s: Spread, unit: str) -> str:
    if s.min == s.max:
        return f"{_num(s.median)} {unit}" if unit != "ratio" else _num(s.median)
    text = f"{_num(s.median)} [{_num(s.min)}–{_num(s.max)}]"
    return text if unit == "ratio" else f"{text} {unit}"


def _num(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 10 else f"{x:,.0f}"
