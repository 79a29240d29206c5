"""Draws bench/run.py's chart: reads its medians as JSON on stdin, writes a
PNG to the path in argv[1]. Run with Debian's /usr/bin/python3, where
python3-matplotlib installs.

Left: each runtime's time as a ratio to the C baseline, one group per timed
figure that has one (log scale). Then the timed figures without a C baseline
(spawn_many_mt), in ns per operation. Right: idle_task_memory in bytes per
task.
"""

import json
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def label(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def grouped_bars(ax, groups, runtimes, value_of):
    """Bars for every (group, runtime) that has a value, labelled on top. A
    runtime keeps its colour on every panel; one without values takes no slot."""
    present = [r for r in runtimes if any(value_of(g, r) is not None for g in groups)]
    width = 0.8 / len(present)
    for i, runtime in enumerate(present):
        xs, ys = [], []
        for g, group in enumerate(groups):
            v = value_of(group, runtime)
            if v is not None:
                xs.append(g + (i - (len(present) - 1) / 2) * width)
                ys.append(v)
        bars = ax.bar(xs, ys, width, label=runtime, color=f"C{runtimes.index(runtime)}")
        ax.bar_label(bars, labels=[label(y) for y in ys], fontsize=6, rotation=90, padding=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=15, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.margins(y=0.25)


def main():
    data = json.load(sys.stdin)
    values, runtimes, baseline = data["values"], data["runtimes"], data["baselines"]
    timed = [w for w, unit in data["workloads"] if unit == "ns/op" and w in baseline]
    absolute = [w for w, unit in data["workloads"] if unit == "ns/op" and w not in baseline
                and values[w]]
    memory = [w for w, unit in data["workloads"] if unit == "bytes/task" and values[w]]
    panels = [p for p in (timed, absolute, memory) if p]
    if not panels:
        sys.exit("nothing to draw")
    fig, axes = plt.subplots(1, len(panels), figsize=(max(10, 3 + 2.5 * sum(map(len, panels))), 5),
                             squeeze=False, gridspec_kw={"width_ratios": [len(p) for p in panels]})
    axes = list(axes[0])
    if timed:
        ax = axes.pop(0)
        grouped_bars(ax, timed, runtimes,
                     lambda w, r: values[w][r] / baseline[w] if r in values[w] else None)
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.set_ylabel("time / C baseline (log)")
    if absolute:
        ax = axes.pop(0)
        grouped_bars(ax, absolute, runtimes, lambda w, r: values[w].get(r))
        ax.set_ylabel("ns per operation, no C baseline (log)")
    if memory:
        ax = axes.pop(0)
        grouped_bars(ax, memory, runtimes, lambda w, r: values[w].get(r))
        ax.set_ylabel("runtime bytes per parked task (log)")
    # One legend for every panel: a runtime may have bars in one panel only.
    handles = {}
    for ax in fig.axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(name, handle)
    names = [r for r in runtimes if r in handles]
    fig.axes[0].legend([handles[r] for r in names], names, fontsize=7, ncol=2)
    fig.suptitle(data["title"], fontsize=9)
    fig.text(0.5, 0.01, textwrap.fill(data["versions"], 170), ha="center", fontsize=7,
             color="dimgrey")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(sys.argv[1], dpi=120)


if __name__ == "__main__":
    main()
