"""The report's structure without a browser (issue 14 item 12): every figure present and
labelled, classes grouped the same way in the bars and the confusion matrix, series colours
apart from the group colours, runs labelled from their own metadata, error bars from CIs and
seeds. Run folders are written by hand (no training): the report only reads files."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csvr.eval.plots import GROUP_COLORS, PNG_AXES_KEY
from csvr.eval.report import build_report

CLASSES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
GROUPS = {"Alpha": "context", "Bravo": "motion", "Charlie": "both", "Delta": "motion", "Echo": "context"}
GROUPED = ["Bravo", "Delta", "Alpha", "Echo", "Charlie"]  # motion, context, both (Fig. 4), then the manifest order


def _run(root: Path, name: str, *, init: str = "pretrained", pretrained: str | None = "pre.pt",
         arch_method: str | None = "csvr", seed: int = 0, diag=(2, 1, 2, 0, 1), extra: dict | None = None,
         curves: bool = False) -> Path:
    """A finetuning run folder as ``csvr finetune`` writes it: 2 test videos per class, ``diag[k]``
    of class k right (the rest predicted as the next class)."""
    d = root / name
    d.mkdir(parents=True)
    c = len(CLASSES)
    cm = np.zeros((c, c), int)
    for k, right in enumerate(diag):
        cm[k, k] = right
        cm[k, (k + 1) % c] = 2 - right
    model = {"feature": "fi", "init": init, "pretrained": pretrained}
    if arch_method:
        model["arch_method"] = arch_method
    results = {"kind": "finetune", "feature": "fi", "init": init, "pretrained": pretrained, "classes": CLASSES,
               "class_groups": GROUPS, "clip_top1": 0.5, "video_top1": float(np.trace(cm) / cm.sum()),
               "per_class": {cl: diag[k] / 2 for k, cl in enumerate(CLASSES)}, "confusion": cm.tolist(),
               "num_videos": int(cm.sum())}
    results.update(extra or {})
    (d / "results.json").write_text(json.dumps(results))
    import yaml

    (d / "config.yaml").write_text(yaml.safe_dump({"method": "supervised", "kind": "finetune", "model": model,
                                                    "train": {"seed": seed}}))
    if curves:
        rows = ["step,epoch,stage,total,ce,lr"] + [f"{s},{s // 4},main,{2 - 0.1 * s},{2 - 0.1 * s},0.01"
                                                   for s in range(1, 9)]
        (d / "metrics.csv").write_text("\n".join(rows) + "\n")
        (d / "epochs.csv").write_text("step,epoch,stage,total,val_top1\n4,0,main,1.8,0.3\n8,1,main,1.4,0.5\n")
    return d


class _Page(html.parser.HTMLParser):
    """Sections (h2 titles), their tables (rows of cell texts) and figures (img src, caption)."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._cur: dict | None = None
        self._tag: str | None = None
        self._text = ""
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h2", "td", "th", "figcaption"):
            self._tag, self._text = tag, ""
        elif tag == "tr":
            self._row = []
        elif tag == "table" and self._cur is not None:
            self._cur["tables"].append([])
        elif tag == "img" and self._cur is not None:
            self._cur["images"].append({"src": a["src"], "alt": a.get("alt", "")})

    def handle_data(self, data):
        if self._tag:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "h2":
            self._cur = self.sections.setdefault(self._text.strip(), {"tables": [], "images": []})
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(self._text.strip())
        elif tag == "tr" and self._cur is not None and self._row is not None:
            self._cur["tables"][-1].append(self._row)
            self._row = None
        if tag == self._tag:
            self._tag = None


def _axes(src: str) -> dict:
    m = re.match(r"data:image/png;base64,(.+)", src)
    assert m, src[:40]
    im = Image.open(io.BytesIO(base64.b64decode(m.group(1))))
    assert im.format == "PNG"
    return json.loads(im.text[PNG_AXES_KEY])


def _lab(color: str) -> np.ndarray:
    """CIELAB coordinates of a colour (perceptual: distances ~ visible differences)."""
    from matplotlib.colors import to_rgb

    rgb2lab = pytest.importorskip("skimage.color").rgb2lab
    return rgb2lab(np.array([[to_rgb(color)]]))[0, 0]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-structure")
    runs = [
        _run(root, "ft-csvr", curves=True, extra={"video_top1_ci": [0.4, 0.8],
                                                  "per_class_ci": {c: [0.0, 1.0] for c in CLASSES}}),
        _run(root, "ft-csvr-seed1", seed=1, diag=(2, 2, 2, 1, 1)),
        _run(root, "ft-scratch", init="scratch", diag=(1, 0, 1, 0, 0), curves=True),
        _run(root, "ft-sup", arch_method="supervised", diag=(2, 2, 2, 2, 1)),
    ]
    out = root / "out"
    build_report(runs, out, retrieval_examples=False)
    page = _Page()
    page.feed((out / "report.html").read_text())
    return page


def test_every_figure_is_present_and_labelled(report):
    s = report.sections
    for title in ("Summary", "Top-1 accuracy per run", "Per-class accuracy", "Confusion matrices (rows: true class)",
                  "Training curves"):
        assert title in s, list(s)
    figures = {t: [_axes(im["src"]) for im in sec["images"]] for t, sec in s.items() if sec["images"]}
    assert [len(figures[t]) for t in ("Top-1 accuracy per run", "Per-class accuracy",
                                      "Confusion matrices (rows: true class)", "Training curves")] == [1, 1, 4, 2]
    for t, figs in figures.items():
        for fig in figs:
            plots = [a for a in fig["axes"] if not a["colorbar"]]
            assert plots, t
            for a in plots:
                assert a["title"] and a["xlabel"] and a["ylabel"], (t, a)
    # the curves: x is the step, y names the panel's quantity
    panel = next(a for a in figures["Training curves"][0]["axes"] if a["title"] == "ce")
    assert (panel["xlabel"], panel["ylabel"]) == ("step", "ce")


def test_classes_are_grouped_the_same_way_in_bars_tables_and_confusion(report):
    s = report.sections
    bars = _axes(s["Per-class accuracy"]["images"][0]["src"])["axes"][0]
    assert bars["xticklabels"] == GROUPED
    table = s["Per-class accuracy"]["tables"][0]
    assert [r[0] for r in table[1:]] == GROUPED and [r[1] for r in table[1:]] == [GROUPS[c] for c in GROUPED]
    for im in s["Confusion matrices (rows: true class)"]["images"]:
        cm = next(a for a in _axes(im["src"])["axes"] if not a["colorbar"])
        assert cm["yticklabels"] == GROUPED and cm["xticklabels"] == GROUPED
    # series colours are not group colours (the labels' and bands' colours): Delta E 1976 > 30
    # (matplotlib's default C0 / C1 bars were at 0 from the context / motion labels)
    series = [e["color"] for e in bars["legend"]]
    assert len(series) == 4 and len(set(series)) == 4
    for c in series:
        for g in GROUP_COLORS.values():
            assert np.linalg.norm(_lab(c) - _lab(g)) > 30, (c, g)


def test_runs_are_labelled_from_their_metadata_with_error_bars(report):
    s = report.sections
    head, *rows = s["Summary"]["tables"][0]
    method = {r[0]: r[head.index("method")] for r in rows}
    assert method == {"ft-csvr": "csvr", "ft-csvr-seed1": "csvr", "ft-scratch": "scratch", "ft-sup": "supervised"}
    ci = {r[0]: r[head.index("video top-1 95 % CI (%)")] for r in rows}
    assert ci["ft-csvr"] == "40.0-80.0"  # the run's own video_top1_ci
    # ft-scratch: 2 of 10 videos right; its interval is a bootstrap over the test videos
    lo, hi = map(float, ci["ft-scratch"].split("-"))
    assert lo <= 20.0 <= hi and lo >= 0.0 and hi <= 60.0
    top1 = _axes(s["Top-1 accuracy per run"]["images"][0]["src"])["axes"][0]
    # the two seeds of the csvr run are one bar (mean +- sd of 2 seeds), then scratch and supervised
    assert top1["xticklabels"] == ["csvr fi (2 seeds)", "ft-scratch (scratch)", "ft-sup (supervised)"]
    assert top1["errorbar_points"] == 3 and top1["ylabel"] == "video top-1 (%)"
    bars = _axes(s["Per-class accuracy"]["images"][0]["src"])["axes"][0]
    assert bars["errorbar_points"] == 5  # ft-csvr's per_class_ci, one per class
    curves = [_axes(im["src"]) for im in s["Training curves"]["images"]]
    assert [c["suptitle"] for c in curves] == ["ft-csvr (finetune, csvr)", "ft-scratch (finetune, scratch)"]
