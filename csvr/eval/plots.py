"""Pictures of evaluation results and of what a CSVR model generates (PNG bytes, no display).

Charts use matplotlib's object API on an Agg canvas (never ``pyplot``, so importing this module
changes no global backend and works without a display); picture grids use Pillow. Every
function returns PNG (or GIF) bytes; :func:`save_image` writes them atomically.

* :func:`top1_chart` - video top-1 per run, with error bars (a 95 % interval, or the spread of
  several seeds, whose values are drawn as dots).
* :func:`per_class_chart` - per-class accuracy of several runs side by side, classes grouped as in
  the paper's Fig. 4: motion-related (orange labels), context-related (blue), both (black); bars
  in :data:`SERIES_COLORS`, which none of the group colours resemble.
* :func:`confusion_chart` - a confusion matrix heatmap (rows = true class, row-normalised colours,
  counts written in the cells for up to 30 classes), classes in the bars' group order.
* :func:`study_chart` / :func:`study_gain_chart` - one measure of the replication study
  (:mod:`csvr.eval.study`) per row, grouped by budget, error bars = the CI, the random-init control
  as a black tick; the frozen measures' gains over that control with their CIs and a zero line.
* :func:`training_curves_chart` - losses and pretext metrics of a run's ``metrics.csv`` per step,
  with ``epochs.csv``'s per-epoch means as markers and the stages shaded; x: step, y: the panel's
  quantity.

Every chart's PNG carries :func:`describe_figure` (titles, axis and tick labels, legend, error
bars) in its :data:`PNG_AXES_KEY` text chunk.
* :func:`retrieval_examples_chart` - query videos and their top-k neighbours (middle frames),
  green border: same class as the query, red: another class.
* :func:`csvr_sample_pictures` - what a CSVR pretraining checkpoint generated
  (:func:`csvr.eval.samples.generate_csvr_samples` computes it): predicted vs real future poses
  (contact sheet PNG and an animated GIF) and reconstructed / predicted frames next to the real
  ones. This module only draws arrays it is given; it loads no model.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from csvr.data.index import load_manifest
from csvr.data.video import VideoReader
from csvr.errors import CsvrError
from csvr.eval.study import BUDGETS
from csvr.pose.viz import draw_pose
from csvr.utils.io import atomic_write

if TYPE_CHECKING:
    from csvr.eval.samples import CsvrSamples

log = logging.getLogger(__name__)

GROUP_ORDER = ("motion", "context", "both")
#: Fig. 4's label colours: orange = motion, blue = context, black = both. Used only for class
#: labels, group titles and the light background bands behind each group, never for data.
GROUP_COLORS = {"motion": "#e67e22", "context": "#1f77b4", "both": "#000000", None: "#666666"}
GROUP_TITLES = {"motion": "motion", "context": "context", "both": "motion + context", None: "other"}
#: Colours of data series (one per run in the per-class bars): purples, greens and pinks, at
#: least 37 CIELAB units (Delta E 1976) from every group colour, so that a bar's colour is never
#: read as its class's group (matplotlib's default C0 / C1 *are* the context / motion colours).
SERIES_COLORS = ("#7b3294", "#1a9850", "#d01c8b", "#c2a5cf", "#a6dba0", "#f1b6da", "#00441b")
#: PNG text chunk holding what each chart shows (titles, axis labels, tick labels, legend,
#: error bars), so that a test can check a report's figures without a browser.
PNG_AXES_KEY = "csvr:axes"


# ----------------------------------------------------------------------------- basics
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _handle_color(h):
    """A legend handle's colour: a patch's face, else a line's (or a line collection's first, as
    an error bar's legend handle is)."""
    if hasattr(h, "get_facecolor") and np.asarray(h.get_facecolor()).size:
        c = h.get_facecolor()
    else:
        c = h.get_color()  # a line's: a colour name or tuple; a collection's: an array of them
    return c[0] if isinstance(c, np.ndarray) and c.ndim == 2 else c


def describe_figure(fig) -> dict:
    """What a drawn Figure shows, axes by axes: title, axis labels, tick labels, legend entries
    (label, colour), the number of points with error bars, whether it is a colour bar."""
    from matplotlib.colors import to_hex

    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    axes = []
    for ax in fig.axes:
        title = next((ax.get_title(loc=w) for w in ("center", "left", "right") if ax.get_title(loc=w)), "")
        entry = {"title": title, "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                 "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
                 "yticklabels": [t.get_text() for t in ax.get_yticklabels()],
                 "colorbar": ax.get_label() == "<colorbar>",
                 "errorbar_points": sum(len(c.lines[2][0].get_segments()) for c in ax.containers
                                        if type(c).__name__ == "ErrorbarContainer" and c.lines[2])}
        leg = ax.get_legend()
        if leg is not None:
            handles = getattr(leg, "legend_handles", None) or getattr(leg, "legendHandles", [])
            entry["legend"] = [{"label": t.get_text(), "color": to_hex(_handle_color(h))}
                               for t, h in zip(leg.get_texts(), handles)]
        axes.append(entry)
    return {"suptitle": suptitle, "axes": axes}


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render a matplotlib Figure to PNG bytes (with :func:`describe_figure` in the
    :data:`PNG_AXES_KEY` text chunk)."""
    meta = json.dumps(describe_figure(fig), ensure_ascii=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={PNG_AXES_KEY: meta})
    return buf.getvalue()


def image_png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def save_image(data: bytes, path: str | os.PathLike) -> Path:
    """Write picture bytes atomically (temporary file + rename)."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def class_groups_for_manifest(manifest_path: str | os.PathLike | None) -> dict[str, str] | None:
    """``{class: "motion"|"context"|"both"}`` of a dataset that documents them: the built-in
    synthetic dataset's ``synth.json`` (next to the manifest, or in the manifest's root).
    None when the dataset does not say (UCF101, HMDB51, ...)."""
    if not manifest_path:
        return None
    p = Path(manifest_path)
    candidates = [p.parent / "synth.json"]
    try:
        candidates.append(load_manifest(p, check_paths=False).root / "synth.json")
    except CsvrError:
        pass
    for c in candidates:
        if c.is_file():
            try:
                data = json.loads(c.read_text())
                return {str(x["name"]): str(x["group"]) for x in data.get("classes", []) if "group" in x}
            except (ValueError, KeyError, TypeError):
                log.warning("csvr: %s does not list class groups; per-class charts are not grouped", c)
    return None


def _grouped_order(classes: Sequence[str], groups: Mapping[str, str] | None) -> list[tuple[str, str | None]]:
    groups = groups or {}
    out: list[tuple[str, str | None]] = []
    for g in GROUP_ORDER:
        out += [(c, g) for c in classes if groups.get(c) == g]
    out += [(c, None) for c in classes if groups.get(c) not in GROUP_ORDER]
    return out


# ----------------------------------------------------------------------------- per-class accuracy
def per_class_chart(runs: Mapping[str, Mapping[str, float | None]], class_groups: Mapping[str, str] | None = None,
                    classes: Sequence[str] | None = None, title: str = "Per-class accuracy",
                    errors: Mapping[str, Mapping[str, Sequence[float]]] | None = None) -> bytes:
    """Bar chart of per-class (video-level) accuracy, one bar colour per run
    (:data:`SERIES_COLORS`), classes grouped as in Fig. 4 (group order motion, context, both,
    then ungrouped; group names over the bars, tick labels in the group's colour, a light band
    of it behind each group). ``None`` accuracies (no test video) draw no bar. ``errors``:
    ``{run: {class: (lo, hi)}}`` intervals (fractions) drawn as error bars."""
    if not runs:
        raise CsvrError("per-class chart: no runs")
    if classes is None:
        seen: dict[str, None] = {}
        for per in runs.values():
            for c in per:
                seen.setdefault(c, None)
        classes = list(seen)
    order = _grouped_order(list(classes), class_groups)
    n, r = len(order), len(runs)
    width = min(30.0, max(6.0, 0.28 * n * max(1.0, r / 2) + 2))
    fig = _figure(width, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(n)
    bw = 0.8 / r
    colors = [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(r)]
    ex, ey, elo, ehi = [], [], [], []
    for i, (name, per) in enumerate(runs.items()):
        vals = [per.get(c) for c, _ in order]
        xs = [x[j] - 0.4 + bw * (i + 0.5) for j, v in enumerate(vals) if v is not None]
        ys = [100.0 * float(v) for v in vals if v is not None]
        ax.bar(xs, ys, width=bw, color=colors[i], label=name, edgecolor="white", linewidth=0.3, zorder=2)
        ci = (errors or {}).get(name) or {}
        for j, (c, _) in enumerate(order):
            if vals[j] is not None and ci.get(c) is not None:
                lo, hi = (100.0 * float(v) for v in ci[c])
                y = 100.0 * float(vals[j])
                ex.append(x[j] - 0.4 + bw * (i + 0.5))
                ey.append(y)
                elo.append(max(0.0, y - lo))
                ehi.append(max(0.0, hi - y))
    if ex:
        ax.errorbar(ex, ey, yerr=[elo, ehi], fmt="none", ecolor="#222222", elinewidth=0.8, capsize=2, zorder=3,
                    label="_95 % interval")
    ax.set_xticks(x)
    ax.set_xticklabels([c for c, _ in order], rotation=90, fontsize=8)
    for lab, (_, g) in zip(ax.get_xticklabels(), order):
        lab.set_color(GROUP_COLORS[g])
    ax.set_ylim(0, 112)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("class" + (" (label colour: group)" if class_groups else ""))
    ax.set_xlim(-0.6, n - 0.4)
    if class_groups:
        start = 0
        for k in range(1, n + 1):
            if k == n or order[k][1] != order[start][1]:
                g = order[start][1]
                ax.axvspan(start - 0.5, k - 0.5, color=GROUP_COLORS[g], alpha=0.07, linewidth=0, zorder=0)
                if k < n:
                    ax.axvline(k - 0.5, color="#999999", linewidth=0.8, linestyle="--")
                ax.text((start + k - 1) / 2, 106, GROUP_TITLES[g], ha="center", va="center", fontsize=9,
                        color=GROUP_COLORS[g], fontweight="bold")
                start = k
    ax.legend(loc="upper right", fontsize=8, ncol=min(r, 4), bbox_to_anchor=(1.0, 1.16), frameon=False)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return figure_png(fig)


# ----------------------------------------------------------------------------- top-1 per run
def top1_chart(bars: Sequence[Mapping], title: str = "Video-level top-1 per run",
               ylabel: str = "video top-1 (%)") -> bytes:
    """One bar per run (or per group of seeds) with its error bar.

    ``bars``: mappings with ``label``, ``value`` (a fraction), optionally ``interval`` (lo, hi)
    drawn as an error bar, ``points`` (each seed's value, drawn as dots) and ``scratch`` (a run
    trained from random weights: hatched)."""
    if not bars:
        raise CsvrError("top-1 chart: no runs")
    fig = _figure(min(16.0, max(4.5, 1.1 * len(bars) + 2)), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(bars))
    for i, b in enumerate(bars):
        ax.bar(x[i], 100.0 * float(b["value"]), width=0.6, color=SERIES_COLORS[i % len(SERIES_COLORS)],
               hatch="//" if b.get("scratch") else None, edgecolor="white", zorder=2)
        pts = b.get("points") or []
        if pts:
            ax.plot([x[i]] * len(pts), [100.0 * float(p) for p in pts], "o", color="#000000", markersize=3, zorder=4)
    err = [(i, b) for i, b in enumerate(bars) if b.get("interval") is not None]
    if err:
        ys = [100.0 * float(b["value"]) for _, b in err]
        lo = [max(0.0, y - 100.0 * float(b["interval"][0])) for y, (_, b) in zip(ys, err)]
        hi = [max(0.0, 100.0 * float(b["interval"][1]) - y) for y, (_, b) in zip(ys, err)]
        ax.errorbar([x[i] for i, _ in err], ys, yerr=[lo, hi], fmt="none", ecolor="#222222", elinewidth=1.0,
                    capsize=3, zorder=3)
    ax.set_xticks(x)
    ax.set_xticklabels([str(b["label"]) for b in bars], rotation=20, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ax.set_ylim(0, 105)
    ax.set_xlabel("run")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    return figure_png(fig)


# ----------------------------------------------------------------------------- replication study
#: What a bar of a study chart shows when its row has not measured the quantity yet.
NOT_RUN = "not run yet"


def _study_axes(ax, bars: Sequence[Mapping], ylabel: str, title: str, gain: bool) -> None:
    """Bars of one measure for the study's rows, grouped by budget (one series colour per budget),
    each with its CI as an error bar and, where given, its random-init control as a black tick."""
    # the study's budgets in their order, each with its series colour in every chart
    budgets = list(dict.fromkeys(list(BUDGETS) + [str(b.get("budget")) for b in bars]))
    order = sorted(range(len(bars)), key=lambda i: budgets.index(str(bars[i].get("budget"))))
    xs, pos, labelled = {}, 0.0, set()
    for j, i in enumerate(order):
        if j and bars[i].get("budget") != bars[order[j - 1]].get("budget"):
            pos += 0.8  # a gap between budget groups
        xs[i] = pos
        pos += 1.0
    err_x, err_y, err_lo, err_hi, ctl_x, ctl_y = [], [], [], [], [], []
    for i in order:
        b, x = bars[i], xs[i]
        bud = str(b.get("budget"))
        color = SERIES_COLORS[budgets.index(bud) % len(SERIES_COLORS)]
        if b.get("value") is None:
            ax.text(x, 0.0, NOT_RUN, rotation=90, ha="center", va="bottom", fontsize=7, color="#666666")
            continue
        v = float(b["value"])
        ax.bar(x, v, width=0.7, color=color, edgecolor="white", zorder=2,
               label=f"budget {bud}" if bud not in labelled else None)
        labelled.add(bud)
        if b.get("ci") is not None:
            lo, hi = (float(c) for c in b["ci"])
            err_x.append(x)
            err_y.append(v)
            err_lo.append(max(0.0, v - lo))  # a percentile CI holds its mean; never a negative bar
            err_hi.append(max(0.0, hi - v))
        if b.get("control") is not None:
            ctl_x.append(x)
            ctl_y.append(float(b["control"]))
    if err_x:
        ax.errorbar(err_x, err_y, yerr=[err_lo, err_hi], fmt="none", ecolor="#222222", elinewidth=1.0, capsize=3,
                    zorder=3)
    if ctl_x:
        ax.plot(ctl_x, ctl_y, linestyle="none", marker="_", markersize=18, markeredgewidth=2.5, color="#000000",
                zorder=4, label="random-init control")
    if gain:
        ax.axhline(0.0, color="#000000", linewidth=0.8, zorder=1)
    else:
        ax.set_ylim(0, 105)
    ticks = [xs[i] for i in order]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(bars[i]["label"]) + ("" if bars[i].get("value") is not None else f" ({NOT_RUN})")
                        for i in order], rotation=25, ha="right", fontsize=8)
    if ticks:
        ax.set_xlim(min(ticks) - 0.7, max(ticks) + 0.7)
    ax.set_xlabel("row (grouped by pretraining budget)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    if labelled or ctl_x:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def study_chart(bars: Sequence[Mapping], title: str, ylabel: str) -> bytes:
    """One measure of the replication study: a bar per row (``label``, ``budget``, ``value`` in
    percent or None = not run yet, ``ci`` (lo, hi) in percent drawn as an error bar, ``control``
    the random-init control in percent, a black tick). Bars in :data:`SERIES_COLORS`, one per budget."""
    if not bars:
        raise CsvrError("study chart: no rows")
    fig = _figure(min(18.0, max(5.0, 0.55 * len(bars) + 3.5)), 4.0)
    _study_axes(fig.add_subplot(1, 1, 1), bars, ylabel, title, gain=False)
    return figure_png(fig)


def study_gain_chart(panels: Sequence[tuple[str, Sequence[Mapping]]], title: str) -> bytes:
    """Gains over the random-init control of the frozen measures, one panel per measure
    (``(measure label, bars)``; a bar's ``value`` is the gain in points, ``ci`` its CI), with a
    zero line: a CI that does not cross it is a difference the data decide."""
    if not panels:
        raise CsvrError("study gain chart: no measures")
    width = min(18.0, max(5.0, 0.55 * max(len(b) for _, b in panels) + 3.5))
    fig = _figure(width, 3.4 * len(panels))
    for k, (label, bars) in enumerate(panels):
        _study_axes(fig.add_subplot(len(panels), 1, k + 1), bars, f"{label}: gain (points)",
                    f"{label}: gain over the random-init control (95 % CI)", gain=True)
    fig.suptitle(title)
    fig.tight_layout()
    return figure_png(fig)


def study_growth_chart(lines: Sequence[Mapping], title: str, ylabel: str) -> bytes:
    """One gain of the replication study against the pretraining budget (issue 26): a line per row
    (``label``, ``points``: ``(seconds, value, (lo, hi) or None)``, values in points), each point
    with its 95 % CI as an error bar, the budget in seconds on a log axis, a zero line. Lines in
    :data:`SERIES_COLORS`, offset a little along x so that error bars do not hide each other."""
    if not lines:
        raise CsvrError("study growth chart: no rows")
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    n = len(lines)
    for k, ln in enumerate(lines):
        pts = sorted(ln["points"], key=lambda p: p[0])
        if not pts:
            continue
        shift = 1.0 + 0.03 * (k - (n - 1) / 2)  # multiplicative: the axis is logarithmic
        xs = [float(p[0]) * shift for p in pts]
        ys = [float(p[1]) for p in pts]
        lo = [max(0.0, y - float(p[2][0])) if p[2] else 0.0 for y, p in zip(ys, pts)]
        hi = [max(0.0, float(p[2][1]) - y) if p[2] else 0.0 for y, p in zip(ys, pts)]
        ax.errorbar(xs, ys, yerr=[lo, hi], color=SERIES_COLORS[k % len(SERIES_COLORS)], marker="o", markersize=4,
                    linewidth=1.5, capsize=3, label=str(ln["label"]))
    ax.axhline(0.0, color="#000000", linewidth=0.8, zorder=1)
    ax.set_xscale("log")
    budgets = sorted({float(p[0]) for ln in lines for p in ln["points"]})
    ax.set_xticks(budgets)
    ax.set_xticklabels([f"{b:.0f} s" for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("pretraining budget (wall-clock seconds, log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure_png(fig)


# ----------------------------------------------------------------------------- confusion matrix
def confusion_chart(confusion, classes: Sequence[str], class_groups: Mapping[str, str] | None = None,
                    title: str = "Confusion matrix") -> bytes:
    """Heatmap of a ``C x C`` count matrix (rows = true class), colour = row-normalised fraction.

    With ``class_groups``, rows and columns are ordered as the per-class bars (Fig. 4's groups,
    :func:`_grouped_order`) and the groups are separated by lines."""
    cm = np.asarray(confusion, dtype=np.float64)
    c = len(classes)
    if cm.shape != (c, c):
        raise CsvrError(f"confusion matrix is {cm.shape}, but there are {c} classes")
    order = _grouped_order(list(classes), class_groups)
    if class_groups:
        perm = [list(classes).index(name) for name, _ in order]
        cm = cm[np.ix_(perm, perm)]
        classes = [name for name, _ in order]
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = min(24.0, max(4.0, 0.32 * c + 2.5))
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fs = 8 if c <= 30 else 5
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(classes, rotation=90, fontsize=fs)
    ax.set_yticklabels(classes, fontsize=fs)
    groups = class_groups or {}
    for lab, name in zip(ax.get_xticklabels(), classes):
        lab.set_color(GROUP_COLORS[groups.get(name) if groups.get(name) in GROUP_ORDER else None])
    for lab, name in zip(ax.get_yticklabels(), classes):
        lab.set_color(GROUP_COLORS[groups.get(name) if groups.get(name) in GROUP_ORDER else None])
    if c <= 30:
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
    if class_groups:
        for k in range(1, c):
            if order[k][1] != order[k - 1][1]:
                ax.axhline(k - 0.5, color="#666666", linewidth=0.8)
                ax.axvline(k - 0.5, color="#666666", linewidth=0.8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, loc="left", fontsize=10)
    return figure_png(fig)


# ----------------------------------------------------------------------------- training curves
#: Panels in this order when present (loss terms first, then pretext metrics, then the rest).
CURVE_PRIORITY = ("total", "loss", "pose", "context", "video", "video_r", "video_p", "iic", "cvrl", "ce",
                  "context_top1", "pose_mse", "video_r_mse", "video_p_mse", "pair_top1", "top1", "clip_top1",
                  "video_top1", "train_top1", "val_top1", "val_clip_top1", "val_video_top1", "lr")
_CURVE_SKIP = ("step", "epoch", "stage", "samples_per_s", "data_wait_frac")


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _numeric(rows: list[dict[str, str]], key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for r in rows:
        try:
            x, y = float(r.get("step", "nan")), float(r.get(key) or "nan")
        except ValueError:
            continue
        if math.isfinite(x) and math.isfinite(y):
            xs.append(x)
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def _stage_segments(rows: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    segs: list[list[dict[str, str]]] = []
    for r in rows:
        if segs and segs[-1][-1].get("stage") == r.get("stage"):
            segs[-1].append(r)
        else:
            segs.append([r])
    return segs


def curve_columns(rows: list[dict[str, str]], max_panels: int = 12) -> list[str]:
    """The columns worth a panel: priority ones present, then other numeric columns (critic
    logits, GAN sub-terms and bookkeeping columns left out), at most ``max_panels``."""
    if not rows:
        return []
    cols = [c for c in rows[0] if c not in _CURVE_SKIP]
    have = [c for c in cols if len(_numeric(rows, c)[1]) >= 1]
    first = [c for c in CURVE_PRIORITY if c in have]
    noisy = ("_d_real", "_d_fake", "_adv_d", "_adv_g", "_gp", "_l2")
    rest = [c for c in have if c not in first and not c.endswith(noisy)]
    return (first + rest)[:max_panels]


def training_curves_chart(run_dir: str | os.PathLike, title: str | None = None, max_panels: int = 12) -> bytes | None:
    """Per-step curves of ``metrics.csv`` (and per-epoch means of ``epochs.csv`` as markers),
    one panel per loss / metric, stages shaded. None when the run has neither file."""
    run_dir = Path(run_dir)
    steps = read_csv_rows(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
    epochs = read_csv_rows(run_dir / "epochs.csv") if (run_dir / "epochs.csv").is_file() else []
    rows = steps or epochs
    if not rows:
        return None
    cols = curve_columns(rows, max_panels)
    if steps and epochs:  # a metric only logged per epoch still gets a panel
        cols = (cols + [c for c in curve_columns(epochs, max_panels) if c not in cols])[:max_panels]
    if not cols:
        return None
    ncol = min(4, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    fig = _figure(4.2 * ncol, 2.8 * nrow)
    # stage spans from the per-step log
    spans: list[tuple[str, float, float]] = []
    for r in rows:
        try:
            s = float(r["step"])
        except (KeyError, ValueError):
            continue
        st = r.get("stage") or ""
        if spans and spans[-1][0] == st:
            spans[-1] = (st, spans[-1][1], s)
        else:
            spans.append((st, s, s))
    for i, col in enumerate(cols):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        if len(spans) > 1:
            for k, (st, a, b) in enumerate(spans):
                lo = a - 0.5 if k == 0 else (spans[k - 1][2] + a) / 2
                hi = b + 0.5 if k == len(spans) - 1 else (b + spans[k + 1][1]) / 2
                ax.axvspan(lo, hi, color="#f0f0f0" if k % 2 else "#ffffff", zorder=0)
                if i < ncol:
                    ax.text((lo + hi) / 2, 1.02, st, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                            fontsize=7, color="#555555")
        if steps:
            # one line per stage segment: a term that a stage does not log leaves a gap, not a
            # straight line across the stages that skip it
            labelled = False
            for seg in _stage_segments(steps):
                x, y = _numeric(seg, col)
                if len(x):
                    ax.plot(x, y, "-", color="C0", linewidth=1.0, label=None if labelled else "per step",
                            marker="." if len(steps) < 40 else None)
                    labelled = True
        if epochs:
            x, y = _numeric(epochs, col)
            if len(x):
                ax.plot(x, y, "o", color="C3", markersize=4, label="epoch mean")
        ax.set_title(col, fontsize=9, pad=12 if (i < ncol and len(spans) > 1) else 4)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(col, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


# ----------------------------------------------------------------------------- picture grids
def _font(size: int = 11):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _tile(frame: np.ndarray, w: int, h: int):
    """A frame letter-boxed into a ``w x h`` black tile."""
    im = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    scale = min(w / im.width, h / im.height)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    tile = Image.new("RGB", (w, h), (0, 0, 0))
    tile.paste(im, ((w - im.width) // 2, (h - im.height) // 2))
    return tile


def _middle_frame(manifest, video_id: str) -> np.ndarray:
    rec = manifest.get(video_id)
    with VideoReader(manifest.video_path(rec)) as r:
        return r.read([max(0, r.num_frames // 2)])[0]


def pick_queries(query_labels: Sequence[int], num: int) -> list[int]:
    """Query rows to show: the first query of each class in turn, then the next ones."""
    labels = list(query_labels)
    picked: list[int] = []
    seen: set = set()
    for i, lab in enumerate(labels):
        if lab not in seen:
            seen.add(lab)
            picked.append(i)
        if len(picked) == num:
            return picked
    for i in range(len(labels)):
        if len(picked) == num:
            break
        if i not in picked:
            picked.append(i)
    return picked


def retrieval_examples_chart(retrieval: Mapping, manifest, num_queries: int = 6, k: int = 5,
                             tile: tuple[int, int] = (128, 96)) -> bytes:
    """Rows of ``query | neighbour 1 .. k`` middle frames from a ``retrieval.json`` dict; the
    border of a neighbour is green when its class is the query's, red otherwise; captions give
    the class and the cosine similarity. ``manifest``: the :class:`~csvr.data.index.Manifest`
    the ids refer to."""
    qids, gids = retrieval["query_ids"], retrieval["gallery_ids"]
    ql, gl = retrieval["query_labels"], retrieval["gallery_labels"]
    nbrs = retrieval["neighbors"]
    scores = retrieval.get("neighbor_scores")
    classes = retrieval.get("classes") or manifest.classes
    k = min(k, len(nbrs[0]) if nbrs else 0)
    rows = pick_queries(ql, min(num_queries, len(qids)))
    tw, th = tile
    pad, cap, border = 6, 28, 4
    font = _font(11)
    cw, ch = tw + 2 * border, th + 2 * border + cap
    head = 18
    sheet = Image.new("RGB", (pad + (k + 1) * (cw + pad), head + pad + len(rows) * (ch + pad)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    d.text((pad, 2), "query", fill=(0, 0, 0), font=font)
    for j in range(k):
        d.text((pad + (j + 1) * (cw + pad), 2), f"neighbour {j + 1}", fill=(0, 0, 0), font=font)
    cache: dict[str, np.ndarray] = {}

    def frame(vid: str) -> np.ndarray:
        if vid not in cache:
            cache[vid] = _middle_frame(manifest, vid)
        return cache[vid]

    def name(label: int) -> str:
        return classes[label] if 0 <= label < len(classes) else str(label)

    for r, qi in enumerate(rows):
        y = head + pad + r * (ch + pad)
        items = [(qids[qi], ql[qi], (40, 40, 40), name(ql[qi]))]
        for j in range(k):
            gi = nbrs[qi][j]
            same = gl[gi] == ql[qi]
            s = f" {scores[qi][j]:.2f}" if scores else ""
            items.append((gids[gi], gl[gi], (0, 170, 0) if same else (210, 0, 0), f"{name(gl[gi])}{s}"))
        for j, (vid, _, color, text) in enumerate(items):
            x = pad + j * (cw + pad)
            d.rectangle([x, y, x + cw - 1, y + th + 2 * border - 1], fill=color)
            sheet.paste(_tile(frame(vid), tw, th), (x + border, y + border))
            d.text((x, y + th + 2 * border + 2), text[:22], fill=(0, 0, 0), font=font)
            d.text((x, y + th + 2 * border + 14), vid.rsplit("/", 1)[-1][:22], fill=(110, 110, 110), font=_font(9))
    return image_png(sheet)


# ----------------------------------------------------------------------------- CSVR samples
def _label(img: Image.Image, text: str, font, color=(255, 255, 0)) -> Image.Image:
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, min(img.width - 1, 7 * len(text) + 4), 13], fill=(0, 0, 0))
    d.text((2, 0), text, fill=color, font=font)
    return img


def _grid(rows: list[tuple[str, list]], tile_w: int, tile_h: int, title: str = "") -> Image.Image:
    """Rows of PIL tiles with a row label column on the left."""
    font = _font(11)
    label_w, pad, head = 150, 3, 18 if title else 0
    ncols = max(len(t) for _, t in rows)
    width = max(label_w + ncols * (tile_w + pad), int(font.getlength(title)) + 8 if title else 0)
    sheet = Image.new("RGB", (width, head + len(rows) * (tile_h + pad)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    if title:
        d.text((4, 2), title, fill=(0, 0, 0), font=font)
    for r, (label, tiles) in enumerate(rows):
        y = head + r * (tile_h + pad)
        d.text((4, y + tile_h // 2 - 6), label, fill=(0, 0, 0), font=font)
        for c, t in enumerate(tiles):
            sheet.paste(t, (label_w + c * (tile_w + pad), y))
    return sheet


def _pose_tile(frame: np.ndarray, pose: np.ndarray | None, side: int, dim: bool = False) -> Image.Image:
    im = Image.fromarray(frame).resize((side, side), Image.BILINEAR)
    if dim:
        im = Image.blend(im, Image.new("RGB", im.size, (0, 0, 0)), 0.45)
    if pose is not None:
        draw_pose(im, pose, width=max(1, side // 48))
    return im


def csvr_sample_pictures(samples: CsvrSamples) -> dict[str, bytes]:
    """Pictures of what a CSVR pretraining checkpoint generated
    (:func:`csvr.eval.samples.generate_csvr_samples`):

    * ``csvr_poses.png``: per video, the input clip with its poses, the real future poses and
      the pose generator's prediction (drawn on the real future frames, dimmed);
    * ``csvr_poses.gif``: real (left) vs predicted (right) future poses, animated;
    * ``csvr_frames.png`` (when the samples hold generated frames): real current clip, its
      reconstruction by G_v^r, real future clip, the prediction by G_v^p."""
    side = max(96, min(128, samples.clip_size))
    tf = len(samples.videos[0].future)
    rows: list[tuple[str, list]] = []
    gif_frames: list[list] = [[] for _ in range(tf)]
    for v in samples.videos:
        name = v.class_name or str(v.label)
        rows.append((f"{name[:14]}: input", [_pose_tile(f, p, side) for f, p in zip(v.clip, v.poses)]))
        real_tiles = [_pose_tile(v.future[i], v.future_poses[i], side) for i in range(tf)]
        pred_tiles = [_pose_tile(v.future[i], v.predicted_poses[i], side, dim=True) for i in range(tf)]
        rows.append(("real future", real_tiles))
        rows.append(("predicted", pred_tiles))
        for i in range(tf):
            pair = Image.new("RGB", (2 * side + 4, side), (255, 255, 255))
            pair.paste(_label(real_tiles[i].copy(), "real", _font(10)), (0, 0))
            pair.paste(_label(pred_tiles[i].copy(), "predicted", _font(10), (255, 120, 120)), (side + 4, 0))
            gif_frames[i].append(pair)
    out = {"csvr_poses.png": image_png(_grid(rows, side, side, "future poses: real vs predicted by the pose "
                                                                "generator G_p (denormalised with the clip's "
                                                                "centre and scale)"))}
    frames_gif = []
    for pairs in gif_frames:
        canvas = Image.new("RGB", (pairs[0].width, len(pairs) * (side + 4)), (255, 255, 255))
        for j, p in enumerate(pairs):
            canvas.paste(p, (0, j * (side + 4)))
        frames_gif.append(canvas)
    buf = io.BytesIO()
    frames_gif[0].save(buf, format="GIF", save_all=True, append_images=frames_gif[1:], duration=250, loop=0)
    out["csvr_poses.gif"] = buf.getvalue()

    if samples.generated:
        vside = min(128, max(64, 2 * samples.video_size))
        vrows = []
        for b, v in enumerate(samples.videos):
            for k, (label, frames) in enumerate(samples.generated.items()):
                tiles = [Image.fromarray(f).resize((vside, vside), Image.BILINEAR) for f in frames[b]]
                vrows.append(((f"{(v.class_name or '')[:10]}: " if k == 0 else "") + label, tiles))
        out["csvr_frames.png"] = image_png(_grid(vrows, vside, vside, "video generating branch: real vs "
                                                                       "reconstructed (G_v^r) and predicted (G_v^p) "
                                                                       "frames from f_i"))
    return out


__all__ = ["GROUP_COLORS", "GROUP_ORDER", "PNG_AXES_KEY", "SERIES_COLORS", "class_groups_for_manifest",
           "confusion_chart", "csvr_sample_pictures", "curve_columns", "describe_figure", "figure_png",
           "per_class_chart", "pick_queries", "read_csv_rows", "retrieval_examples_chart", "save_image",
           "top1_chart", "training_curves_chart"]
