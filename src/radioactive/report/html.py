"""The report of a results directory: tables, figures, overlays, leaderboard, one HTML file.

``build_report(results_dir, out_dir)`` reads only the store (and the predictions it points to),
writes every table (Markdown, CSV, LaTeX), figure (PNG, SVG) and overlay, and ties them together
in ``report.html``: a self-contained page (images embedded as data URIs, no script, no network).
"""

from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from radioactive import __version__
from radioactive.metrics.meta import display_scale
from radioactive.report.figure_kit import short_spec

log = logging.getLogger(__name__)

REPORT_VERSION = "1"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:72rem;color:#1d1d1f;line-height:1.45;padding:0 1rem}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f4f6}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}.meta{font-size:.85rem;color:#555}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto;font-size:.8rem}
.note{color:#555;font-size:.9rem}.wide{overflow-x:auto}
"""


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    html: Path
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    overlays: list[Path] = field(default_factory=list)
    leaderboard: list[Path] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return [self.html, *self.tables, *self.figures, *self.overlays, *self.leaderboard]


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(df: pd.DataFrame, digits: int = 1) -> str:
    """``df`` as an HTML table: a named index becomes columns, a plain row number is dropped."""
    named = any(name is not None for name in df.index.names)
    shown = df.reset_index() if named else df.reset_index(drop=True)
    shown.columns = [str(c) for c in shown.columns]
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "–" if pd.isna(v) else f"{v:.{digits}f}")
        elif col in _SPEC_COLUMNS:
            shown[col] = shown[col].map(lambda v: short_spec(v) if isinstance(v, str) else v)
    table = shown.to_html(index=False, border=0, escape=True, na_rep="–")
    return f'<div class="wide">{table}</div>'


#: the columns that hold prompter or user specs, shown short (the CSV files keep them whole)
_SPEC_COLUMNS = frozenset(
    f"{kind}{suffix}" for kind in ("prompter", "user") for suffix in ("", "_a", "_b")
)


def build_report(results_dir: str | Path, out_dir: str | Path | None = None) -> Report:
    """Write the report of ``results_dir`` into ``out_dir`` (default: ``<results>/report``).

    The store is read once into a :class:`~radioactive.report.view.ResultsView`; tables,
    figures, leaderboard, overlays and this page all read that view, so every number appears
    with one value.
    """
    from radioactive.report.leaderboard import leaderboard, paired_comparisons
    from radioactive.report.overlap import overlap_table
    from radioactive.report.overlays import make_overlays
    from radioactive.report.plots import make_figures
    from radioactive.report.stability import RANK_METRIC
    from radioactive.report.tables import build_tables, write_tables
    from radioactive.report.view import ResultsView

    results = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    view = ResultsView.from_store(results)
    runs = view.runs
    tables = build_tables(view)
    table_files = write_tables(tables, out / "tables")
    figures = make_figures(view, out / "figures")
    overlays = make_overlays(view, None, out / "overlays")
    board = leaderboard(view, level="overall")
    by_time = leaderboard(view, metric=RANK_METRIC, level="overall")
    per_dataset = leaderboard(view, level="dataset")
    pairs = paired_comparisons(view)
    overlaps = overlap_table(view)
    lb_dir = out / "leaderboard"
    lb_dir.mkdir(parents=True, exist_ok=True)
    lb_files = []
    outputs = (("overall", board), ("overall_time", by_time), ("per_dataset", per_dataset),
               ("paired", pairs), ("overlap", overlaps))  # fmt: skip
    for name, df in outputs:
        path = lb_dir / f"{name}.csv"
        df.to_csv(path, index=False)
        lb_files.append(path)

    counts = view.unit_counts()
    manifest = runs.iloc[-1].to_dict() if len(runs) else {}
    sections = [
        f"<h1>radioactive report — {html.escape(results.name)}</h1>",
        f'<p class="meta">{len(runs)} run(s), {sum(counts.values())} units '
        f"({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}), "
        f"{len(view.steps)} steps, {len(view.finals)} scored trajectories on "
        f"{len(view.datasets)} dataset(s). "
        f"Generated by radioactive {html.escape(__version__)} (report v{REPORT_VERSION}).</p>",
        '<p class="note">Prompters and users are named by the parameters that differ from '
        "their defaults (<code>radioactive ls prompters</code> lists the defaults); the CSV "
        "files hold their full specs.</p>",
        "<h2>Leaderboard</h2>",
        '<p class="note">Final-step Dice (×100) per model × prompter × user: per dataset the mean '
        "over cases of each case's mean over its targets (the lesion-wise mean), then the "
        "unweighted mean over datasets, with 95 % bootstrap confidence intervals over cases. "
        "The rank interval is the 95 % interval of the entry's rank when cases and the user's "
        "noise (one seed per target) are redrawn; an entry that is not <em>rank_stable</em> "
        "could be placed differently. "
        "The tables below average over targets instead of cases; both weight every dataset "
        "equally. <em>overlap</em>: whether the model's weights saw the evaluation data "
        "(see Training-data overlap).</p>",
        _table(_display(board, "dice")),
        "<h2>Dice per dataset</h2>",
        '<p class="note">Mean over the targets (and seeds) of each dataset at the final step; '
        "<em>mean (datasets)</em> is the unweighted mean over datasets, given only for entries "
        f"with results in every dataset. {_MARK_NOTE}</p>",
        _table(_flagged(tables["dice"], overlaps)),
        "<h2>NSD per dataset</h2>",
        _table(_flagged(tables["nsd"], overlaps)),
        "<h2>MRI vs CT, pathology vs organ</h2>",
        '<p class="note">A dataset whose dataset.json states no modality or category is grouped '
        "as <em>unknown</em>.</p>",
        _table(tables["groups"]),
        "<h2>Effort</h2>",
        '<p class="note">Degrees of freedom (interactions) and estimated human seconds of the '
        "prompts actually placed: the mean over an entry's scored trajectories of their "
        "totals.</p>",
        _table(tables["effort"]),
    ]
    if len(tables["time"]):
        sections += [
            "<h2>Time to result</h2>",
            '<p class="note">What the user has after so many seconds: time to result is the '
            "estimated human seconds of the prompts plus the model's time (encoder + decoder) of "
            "every step so far; before the first result Dice counts as 0. Dice and NSD at 30, "
            "60 and 120 s, the mean Dice over the first 120 s (AUC), the seconds and degrees of "
            "freedom to reach Dice 0.8 and 0.9 (over the units that reach it) and the share of "
            "units that never do (and to a dataset's inter-rater Dice where the experiment "
            "states one); means over datasets "
            "as in the Dice table.</p>",
            _table(tables["time"]),
            "<h3>Leaderboard by time to result</h3>",
            '<p class="note">Entries ranked by the mean Dice a user sees over the first 120 s '
            "of time to result (Dice AUC ×100; per dataset the mean over cases, as the "
            "leaderboard above). The rank interval also redraws every effort constant over its "
            "range: an entry that is not <em>rank_stable</em> could be placed differently under "
            "another plausible cost of human actions.</p>",
            _table(_display(by_time, "dice")),
        ]
    if len(tables["stability"]):
        sections += [
            "<h2>Ranking stability</h2>",
            '<p class="note">How sure is the ranking of models by the mean Dice a user sees over '
            "the first 120 s, within each protocol (same prompter and user)? 200 times, the "
            "cases of every dataset are redrawn with replacement, every effort constant is drawn "
            "uniformly from its published or assumed range (docs/prompts.md) and the human "
            "seconds of every step recomputed, and one seed per target (the simulated user's "
            "noise) is drawn for all models alike. A rank is <em>stable</em> when its 95 % "
            "interval over the draws is that rank alone.</p>",
            _table(tables["stability"]),
            '<p class="note">Every pair of models of a protocol: how often the one behind '
            "comes out ahead.</p>",
            _table(tables["stability_pairs"]),
            "<p class=\"note\">Kendall's τ between each draw's ranking and the nominal one, and "
            "how often the whole ranking is the same.</p>",
            _table(tables["stability_tau"], digits=2),
        ]
    if len(tables["refinement"]):
        sections += [
            "<h2>Refinement</h2>",
            '<p class="note">Mean Dice per interaction step, over datasets as in the Dice table '
            "(the data of the refinement figure).</p>",
            _table(tables["refinement"]),
        ]
    if "propagation" in tables:
        sections += [
            "<h2>Propagation diagnostics</h2>",
            '<p class="note">Units whose final prediction was propagated from the prompted '
            "slices (a propagating prompter or a video model). Over-propagation: predicted "
            "slices beyond the target's first and last slice (mean count, share of units with "
            "any, and their thickness in mm). Dice d=…: the mean 2D Dice of the slices at that "
            "distance (in slices) from the nearest slice the user prompted, where the target or "
            "the prediction is non-empty (a predicted slice without target scores 0); the slope "
            "is Dice (×100) per slice of distance. Means over a dataset's units, then over "
            "datasets; the figure <em>dice vs distance</em> draws the curve "
            "(docs/metrics.md).</p>",
            _table(tables["propagation"], digits=2),
        ]
    sections.append("<h2>Figures</h2>")
    sections += [_img(p, p.stem.replace("_", " ")) for p in figures if p.suffix == ".png"]
    if overlays:
        sections.append("<h2>Cases</h2>")
        sections.append(
            '<p class="note">Key axial slices: target contour in green, prediction in magenta, '
            "prompts drawn (+ positive, × negative, rectangles for boxes).</p>"
        )
        sections += [_img(p, p.stem) for p in overlays]
    if len(pairs):
        sections += [
            "<h2>Paired comparisons</h2>",
            '<p class="note">Mean paired difference of Dice over shared cases; entries are '
            "distinguishable when the 95 % interval excludes 0.</p>",
            _table(_display(pairs, "dice"), digits=2),
        ]
    if len(tables["skipped"]):
        sections += [
            "<h2>Skipped</h2>",
            '<p class="note">Units that did not run, with why: a model that does not take a '
            "prompter's prompts, an empty or undeclared target. They are not scored and not in "
            "any mean.</p>",
            _table(tables["skipped"]),
        ]
    if len(view.errors):
        sections += [
            "<h2>Failed units</h2>",
            '<p class="note">Units that stopped with an error; <code>radioactive run ... '
            "--retry-errors</code> runs them again.</p>",
            _table(view.errors.drop(columns="unit_id").replace("", "–")),
        ]
    sections += _overlap_section(overlaps)
    contracts = _contracts(runs)
    if len(contracts):
        sections += [
            "<h2>Input contracts</h2>",
            '<p class="note">What each model was fed, per dataset: the contract of its authors\' '
            "preprocessing for the dataset's modality, or the preset named in its options "
            "(<code>radioactive models info NAME</code> describes each contract and its "
            "source).</p>",
            _table(contracts),
        ]
    sections += [
        "<h2>Run manifest</h2>",
        "<pre>" + html.escape(json.dumps(_jsonable(manifest), indent=2, default=str)) + "</pre>",
        "<h2>Accounting versions</h2>",
        '<p class="note">The rules behind the effort, time and stability numbers of this page '
        "(each unit also records the effort model and accounting version it ran with).</p>",
        _table(_versions()),
    ]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>radioactive report — {html.escape(results.name)}</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )
    index = out / "report.html"
    index.write_text(page, encoding="utf-8")
    return Report(index, table_files, figures, overlays, lb_files)


def _versions() -> pd.DataFrame:
    from radioactive.metrics.timing import TIMING_VERSION
    from radioactive.prompts.cost import COST_VERSION, EFFORT_RANGES
    from radioactive.report.leaderboard import LEADERBOARD_VERSION
    from radioactive.report.stability import STABILITY_VERSION

    ranges = ", ".join(f"{k} {r.low:g}–{r.typical:g}–{r.high:g} s"
                       for k, r in EFFORT_RANGES.items())  # fmt: skip
    return pd.DataFrame([
        ("effort accounting", COST_VERSION, f"constants (low–typical–high): {ranges}"),
        ("time to result", TIMING_VERSION, "human seconds + encoder and decoder time per step"),
        ("ranking stability", STABILITY_VERSION, "cases, effort constants and seeds redrawn"),
        ("leaderboard", LEADERBOARD_VERSION, "case-level means, percentile bootstrap"),
    ], columns=["rules", "version", "what"])  # fmt: skip


#: the leaderboard and paired-comparison columns that hold values of the ranked metric
_VALUE_COLUMNS = ("mean", "ci_low", "ci_high", "mean_diff")


def _display(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The value columns of a leaderboard of ``metric`` in display units (its meta's scale)."""
    scale = display_scale(metric)
    out = df.copy()
    for col in _VALUE_COLUMNS:
        if col in out.columns:
            out[col] = out[col].astype(float) * scale
    if "overlap" in out.columns and "mean" in out.columns:  # the flag next to the number
        rest = [c for c in out.columns if c != "overlap"]
        at = rest.index("mean") + 1
        out = out[[*rest[:at], "overlap", *rest[at:]]]
    return out


#: the mark a value gets for its model's training-data overlap with the dataset
_MARKS = {"known": " ‡", "possible": " †", "unknown": " ?", "none": ""}
_MARK_NOTE = (
    "Marks: ‡ the model was trained on this dataset's images, † it may have been (its training "
    "data are only partly published), ? unknown (the dataset's sources are not declared); see "
    "Training-data overlap."
)


def _flagged(df: pd.DataFrame, overlaps: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """A per-dataset table (entries × datasets) as text, each value marked with its model's
    overlap on that dataset (a mean over datasets with the most serious of them)."""
    from radioactive.models.training_data import worst

    if df.empty or "model" not in df.index.names:
        return df
    status = {(m, d): s for m, d, s in overlaps[["model", "dataset", "overlap"]].itertuples(
        index=False)}  # fmt: skip
    datasets = [c for c in df.columns if c in set(overlaps["dataset"])]
    out = df.astype(object)
    for i, model in enumerate(df.index.get_level_values("model")):
        for j, col in enumerate(df.columns):
            value = df.iat[i, j]
            if not isinstance(value, float):
                continue
            over = [col] if col in datasets else datasets
            mark = _MARKS[worst(status.get((model, d), "unknown") for d in over)]
            out.iat[i, j] = "–" if pd.isna(value) else f"{value:.{digits}f}{mark}"
    return out


def _overlap_section(overlaps: pd.DataFrame) -> list[str]:
    """The page's list of model × dataset pairs whose overlap is not ``none``."""
    shown = overlaps[overlaps["overlap"] != "none"]
    head = [
        "<h2>Training-data overlap</h2>",
        '<p class="note">Whether each model\'s weights saw the evaluation data '
        "(<code>radioactive.models.training_data</code>): <em>known</em> a training set is or "
        "contains the dataset's source collection; <em>possible</em> no match, but the model's "
        "training data are only partly published; <em>unknown</em> the dataset's source "
        "collections are not declared; <em>none</em> a complete published list without a "
        "match, or a weight-free method. Numbers are unchanged; read flagged ones with care.</p>",
    ]
    if shown.empty:
        return [*head, '<p class="note">No pair is flagged.</p>']
    return [*head, _table(shown.reset_index(drop=True))]


def _contracts(runs: pd.DataFrame) -> pd.DataFrame:
    """model × dataset → the input contract, from the runs' manifests (the latest run wins)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if "input_contracts" in runs.columns:
        for text in runs["input_contracts"].dropna():
            try:
                data = json.loads(text) if isinstance(text, str) else text
            except ValueError:
                continue
            for model, per in (data or {}).items():
                for dataset, c in (per or {}).items():
                    c = c or {}
                    rows[(model, dataset)] = {
                        "model": model, "dataset": dataset,
                        "contract": c.get("contract") or "not stated",
                        "intensity": c.get("intensity") or "", "modality": c.get("modality") or "",
                    }  # fmt: skip
    return pd.DataFrame(list(rows.values()))


def _jsonable(manifest: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in manifest.items():
        if isinstance(v, str) and v[:1] in "{[":
            try:
                out[k] = json.loads(v)
                continue
            except ValueError:
                pass
        out[k] = v
    return out
