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
) -> str:
    """Paired bars, ours beside the raw library, one pair per label."""
    fig, ax = figure(title)
    positions = range(len(labels))
    width = 0.38
    ax.bar([p - width / 2 for p in positions], ours, width, label="ours", color=OURS)
    ax.bar([p + width / 2 for p in positions], raw, width, label="raw library", color=RAW)
    ax.set_xticks(list(positions), labels, fontsize=9)
    ax.set_ylabel(unit)
    ax.legend(frameon=False, fontsize=9)
    return save(fig, name)
