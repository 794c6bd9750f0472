"""Charts for docs/BENCHMARKS.md: one small PNG per figure group, in docs/bench/.

    line = charts.ours_vs_raw("models", "Click to trained", ["10", "2,000"], ours, raw, "s")
    report += [line]  # a Markdown image link to docs/bench/models.png

For other shapes, draw on `figure()` and pass it to `save`.
"""

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from bench.common import REPORT

CHARTS = REPORT.parent / "bench"
OURS, RAW = "#3b6fd4", "#9aa3ad"


def figure(title: str) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def save(fig: Figure, name: str) -> str:
    """Write docs/bench/<name>.png; the Markdown line that shows it in the report."""
    CHARTS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(CHARTS / f"{name}.png")
    title = fig.axes[0].get_title() if fig.axes else name
    plt.close(fig)
    return f"![{title}](bench/{name}.png)"


def ours_vs_raw(
    name: str,
    title: str,
    labels: Sequence[str],
    ours: Sequence[float],
    raw: Sequence[float],
    unit: str,
    log: bool = False,
) -> str:
    """Paired bars, ours beside the raw library, one pair per label; `log` for figures
    that differ by orders of magnitude."""
    fig, ax = figure(title)
    positions = range(len(labels))
    width = 0.38
    ax.bar([p - width / 2 for p in positions], ours, width, label="ours", color=OURS)
    ax.bar([p + width / 2 for p in positions], raw, width, label="raw library", color=RAW)
    ax.set_xticks(list(positions), labels, fontsize=9)
    ax.set_ylabel(unit)
    if log:  # bar heights are hard to compare on a log scale: print each value on its bar
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        for bars in ax.containers:
            ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.legend(frameon=False, fontsize=9)
    return save(fig, name)


def relative(name: str, title: str, labels: Sequence[str], ratios: Sequence[float]) -> str:
    """Our time as a multiple of the raw library's, one bar per figure; a line at 1."""
    fig, ax = figure(title)
    ax.barh(list(labels), ratios, color=OURS)
    ax.axvline(1, color=RAW, linestyle="--", linewidth=1)
    ax.invert_yaxis()
    ax.set_xlabel("ours / raw library (time; 1 = as fast as raw)")
    for y, ratio in enumerate(ratios):
        ax.annotate(
            f"{ratio:.1f}×",
            (ratio, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    return save(fig, name)


def bars(name: str, title: str, labels: Sequence[str], values: Sequence[float], unit: str) -> str:
    """One bar per label, for figures with no raw counterpart."""
    fig, ax = figure(title)
    ax.bar(list(labels), values, color=OURS)
    ax.set_ylabel(unit)
    return save(fig, name)
