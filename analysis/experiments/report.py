"""The RL-vs-SL comparison report: one self-contained HTML page and its markdown twin.

Each of the paper's claims (``shared/reference/paper.md`` section 6) gets a figure or table and a verdict computed
from the experiment's networks (:mod:`analysis.experiments.stats`): *reproduced*, *not reproduced* or
*inconclusive*, with the effect size, its bootstrap 95% confidence interval, the test and the number of networks.
The page never says more than its numbers; claims without data say so.

The report reads ``index.json`` and each cell's files (see :mod:`analysis.experiments.cell` for the result
schema), so it can be rebuilt at any time, also while an experiment is still running (``dmd experiment report``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

import numpy as np

from agents.files import write_json

from . import stats
from .runner import cell_dir, load_records
from .spec import Cell, ExperimentSpec

RULE_COLOURS = {"rl": "#d62728", "sl": "#1f77b4"}


def _get(record: dict, path: str, default: Any = np.nan) -> Any:
    cur: Any = record
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur if cur is not None else default


class _Data:
    """The finished networks of an experiment, grouped for the claims."""

    def __init__(self, spec: ExperimentSpec, out_dir: Path) -> None:
        self.spec, self.out = spec, out_dir
        self.records = load_records(spec, out_dir)
        self.done = [r for r in self.records if r["status"] == "done"]

    def values(self, path: str, *, rule: Optional[str] = None, level: Optional[int] = None,
               delta: Optional[float] = None) -> np.ndarray:
        out = []
        for r in self.done:
            c = r["cell"]
            if (rule and c["rule"] != rule) or (level and c["level"] != level) or (delta and c["delta"] != delta):
                continue
            v = _get(r, path)
            out.append(float(v) if isinstance(v, (int, float, bool, np.floating)) else np.nan)
        return np.asarray(out, dtype=float)

    def cells(self, rule: Optional[str] = None) -> list[dict]:
        return [r for r in self.done if rule is None or r["cell"]["rule"] == rule]


# ---------------------------------------------------------------------- figures
def _figure_to_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _finish_plot(fig: Any, ax: Any, drawn: bool, xlabel: str, ylabel: str, title: str,
                 legend_size: int = 8) -> Optional[bytes]:
    """Label a one-axes figure and render it; ``None`` (figure closed) when nothing was drawn."""
    if not drawn:
        import matplotlib.pyplot as plt

        plt.close(fig)
        return None
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    return _figure_to_png(fig)


def _fig_qp_by_coherence(d: _Data) -> Optional[bytes]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    any_data = False
    for rule in d.spec.rules:
        for delta in d.spec.deltas:
            curves = [r["dynamics"]["qp_fraction_by_coherence"] for r in d.cells(rule)
                      if r["cell"]["delta"] == delta and _get(r, "dynamics.qp_fraction_by_coherence", None)]
            if not curves:
                continue
            cohs = sorted({float(c) for cur in curves for c in cur})
            mean = [np.nanmean([cur.get(_key(c), np.nan) for cur in curves]) for c in cohs]
            ax.plot(cohs, mean, "o-", color=RULE_COLOURS[rule], alpha=0.4 + 0.6 * (delta / max(d.spec.deltas)),
                    label=f"{rule.upper()} delta={delta:g} (n={len(curves)})")
            any_data = True
    return _finish_plot(fig, ax, any_data, "|relevant coherence|", "fraction quasi-periodic",
                        "Quasi-periodic attractors across the stimulus space", legend_size=7)


def _key(c: float) -> str:
    return f"{c:g}"


def _fig_box(d: _Data, path: str, ylabel: str, title: str) -> Optional[bytes]:
    import matplotlib.pyplot as plt

    groups, labels, colours = [], [], []
    for rule in d.spec.rules:
        for delta in d.spec.deltas:
            v = d.values(path, rule=rule, delta=delta)
            v = v[np.isfinite(v)]
            if len(v):
                groups.append(v)
                labels.append(f"{rule.upper()}\n{delta:g}")
                colours.append(RULE_COLOURS[rule])
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(3.5, 0.8 * len(groups) + 1.5), 3.3))
    bp = ax.boxplot(groups, patch_artist=True, widths=0.6)
    for patch, c in zip(bp["boxes"], colours):
        patch.set_facecolor(c)
        patch.set_alpha(0.35)
    for i, g in enumerate(groups):
        ax.plot(np.full(len(g), i + 1) + np.linspace(-0.12, 0.12, len(g)), g, "k.", ms=4)
    ax.set_xticks(range(1, len(groups) + 1), labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title + "  (rule / delta)")
    return _figure_to_png(fig)


def _fig_curves(d: _Data, path: str, xlabel: str, ylabel: str, title: str) -> Optional[bytes]:
    """Mean curve per rule of a dict-valued result ``{x: y}``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.3))
    drawn = False
    for rule in d.spec.rules:
        curves = [_get(r, path, None) for r in d.cells(rule)]
        curves = [c for c in curves if isinstance(c, dict) and c]
        if not curves:
            continue
        xs = sorted({float(x) for c in curves for x in c})
        ys = np.array([[c.get(_key(x), np.nan) for x in xs] for c in curves], dtype=float)
        with warnings.catch_warnings():  # an x that no network reports gives an all-NaN column: plotted as a gap
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(ys, 0)
        ax.plot(xs, mean, "o-", color=RULE_COLOURS[rule], label=f"{rule.upper()} (n={len(curves)})")
        if len(curves) > 1:
            ax.fill_between(xs, np.nanmin(ys, 0), np.nanmax(ys, 0), color=RULE_COLOURS[rule], alpha=0.15)
        drawn = True
    return _finish_plot(fig, ax, drawn, xlabel, ylabel, title)


def _fig_sculpting(d: _Data) -> Optional[bytes]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    drawn = False
    for r in d.done:
        track = _get(r, "sculpting", None)
        if not isinstance(track, list) or not track:
            continue
        progress = np.array([t.get("progress", np.nan) for t in track], dtype=float)
        colour = RULE_COLOURS[r["cell"]["rule"]]
        axes[0].plot(progress, [t.get("accuracy", np.nan) for t in track], "-", color=colour, alpha=0.5)
        axes[1].plot(progress, [t.get("qp_fraction", np.nan) for t in track], "-", color=colour, alpha=0.5)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for ax, label in zip(axes, ("accuracy", "fraction quasi-periodic")):
        ax.set_xlabel("training progress (fraction of steps to criterion)")
        ax.set_ylabel(label)
    axes[0].set_title("Progressive sculpting: RL red, SL blue")
    return _figure_to_png(fig)


def _fig_qp_vs_performance(d: _Data) -> Optional[bytes]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.3))
    drawn = False
    for level in d.spec.levels:
        qp = d.values("dynamics.qp_fraction", rule="rl", level=level)
        perf = d.values("training.low_coherence_accuracy", rule="rl", level=level)
        ok = np.isfinite(qp) & np.isfinite(perf)
        if ok.any():
            ax.plot(qp[ok], perf[ok], "o", label=f"level {level}")
            drawn = True
    return _finish_plot(fig, ax, drawn, "fraction quasi-periodic (RL network)", "accuracy at the lowest coherence",
                        "Quasi-periodicity and performance")


def _fig_attractor_maps(d: _Data) -> Optional[bytes]:
    """Prevalence of quasi-periodic attractors over the (c1, c2) plane, per rule and context, averaged over nets."""
    import matplotlib.pyplot as plt

    maps: dict[str, list[np.ndarray]] = defaultdict(list)
    axes_vals = None
    for r in d.done:
        path = cell_dir(d.out, Cell(**r["cell"])) / "attractor_map.npz"
        if not path.exists():
            continue
        with np.load(path) as z:
            maps[r["cell"]["rule"]].append(z["qp_present"].astype(float))
            axes_vals = z["coherences"]
    if not maps or axes_vals is None:
        return None
    rules = [rule for rule in d.spec.rules if maps.get(rule)]
    n_ctx = maps[rules[0]][0].shape[0]
    fig, axes = plt.subplots(len(rules), n_ctx, figsize=(3.4 * n_ctx + 1, 3.0 * len(rules)), squeeze=False,
                             constrained_layout=True)
    ext = [axes_vals[0], axes_vals[-1], axes_vals[0], axes_vals[-1]]
    for i, rule in enumerate(rules):
        mean = np.mean(maps[rule], axis=0)
        for ctx in range(n_ctx):
            ax = axes[i, ctx]
            grid = mean[ctx]
            if grid.ndim == 1:  # one stream: a single row over its coherence axis
                im = ax.imshow(grid[None, :], extent=[ext[0], ext[1], 0, 1], vmin=0, vmax=1, cmap="magma",
                               aspect="auto")
                ax.set_yticks([])
            else:
                im = ax.imshow(grid.T, origin="lower", extent=ext, vmin=0, vmax=1, cmap="magma")
                if ctx == 0:
                    ax.set_ylabel("coherence stream 2")
            ax.set_title(f"{rule.upper()} context {ctx + 1} (n={len(maps[rule])})", fontsize=9)
            ax.set_xlabel("coherence stream 1")
    fig.colorbar(im, ax=axes, shrink=0.8, label="P(quasi-periodic attractor)")
    return _figure_to_png(fig)


# ---------------------------------------------------------------------- claims
def _claims(d: _Data) -> list[tuple[str, list[stats.Verdict], list[tuple[str, Optional[bytes]]], str]]:
    """(section title, verdicts, figures, commentary) for each claim of the paper."""
    rl, sl = "rl", "sl"
    both = set(d.spec.rules) >= {rl, sl}
    target = d.spec.target_accuracy
    sections = []

    v = []
    for rule in d.spec.rules:
        v.append(stats.bound(f"{rule.upper()} networks reach the {target:.0%} criterion",
                             d.values("training.final_accuracy", rule=rule), target, below=False, name=rule.upper()))
    if both:
        v.append(stats.equivalence("RL and SL reach similar accuracy (difference within 2 points)",
                                   d.values("training.final_accuracy", rule=rl),
                                   d.values("training.final_accuracy", rule=sl), margin=0.02))
    sections.append(("Both learning rules solve the task (R6)", v,
                     [("Accuracy by coherence", _fig_curves(d, "training.accuracy_by_coherence", "|coherence|",
                                                            "accuracy", "Final accuracy by coherence"))],
                     "Every network trains until the shared stopping rule fires (or its budget ends)."))

    v = []
    if both:
        v.append(stats.compare_groups("RL networks have more quasi-periodic attractors than SL networks",
                                      d.values("dynamics.qp_fraction", rule=rl), d.values("dynamics.qp_fraction", rule=sl)))
        v.append(stats.bound("SL converges (almost) exclusively to fixed points: QP fraction below 0.05",
                             d.values("dynamics.qp_fraction", rule=sl), 0.05, below=True, name="SL"))
    sections.append(("Hybrid dynamics under RL, fixed points under SL (R1, R2)", v,
                     [("Attractor types over the coherence plane", _fig_attractor_maps(d)),
                      ("Quasi-periodic fraction by rule and delta", _fig_box(d, "dynamics.qp_fraction",
                                                                             "fraction quasi-periodic", "Quasi-periodic attractors"))],
                     "Fraction of distinct stimulus-stage attractors that are quasi-periodic, over the coherence grid."))

    low_high = [(r.get("dynamics", {}).get("qp_fraction_low_coherence", np.nan),
                 r.get("dynamics", {}).get("qp_fraction_high_coherence", np.nan)) for r in d.cells(rl)]
    v = []
    if low_high:
        lo, hi = np.array(low_high, dtype=float).T
        v.append(stats.compare_groups("RL: quasi-periodic attractors concentrate at low |coherence|",
                                      lo, hi, names=("low |c|", "high |c|")))
    sections.append(("Quasi-periodicity at ambiguous stimuli (R3)", v,
                     [("Quasi-periodic fraction by |coherence|", _fig_qp_by_coherence(d))],
                     "Low and high |coherence|: the lower and upper half of the grid's relevant-coherence values."))

    v = []
    if len(d.spec.deltas) > 1 and rl in d.spec.rules:
        deltas = np.array([r["cell"]["delta"] for r in d.cells(rl)], dtype=float)
        v.append(stats.association("RL: broader initialisation (larger delta) gives more quasi-periodic attractors",
                                   deltas, d.values("dynamics.qp_fraction", rule=rl)))
    sections.append(("Initialisation width modulates the dynamics (R4)", v, [], ""))

    v = []
    for level in d.spec.levels:
        v.append(stats.association(f"Level {level}: RL networks with more quasi-periodic attractors perform better "
                                   f"at the lowest coherence",
                                   d.values("dynamics.qp_fraction", rule=rl, level=level),
                                   d.values("training.low_coherence_accuracy", rule=rl, level=level)))
    sections.append(("Quasi-periodicity and performance (R5)", v,
                     [("QP fraction against low-coherence accuracy", _fig_qp_vs_performance(d))],
                     "The paper reports the correlation grows with task complexity; compare the rho of each level."))

    v = []
    if both:
        v.append(stats.compare_groups("RL populations are more balanced than SL populations (balance index)",
                                      d.values("populations.balance_index", rule=rl),
                                      d.values("populations.balance_index", rule=sl)))
    sources = Counter(str(_get(r, "populations.decision_source", None) or "unrecorded")
                      for r in d.done if _get(r, "populations", None) is not None)
    source_note = ", ".join(f"{n} from {s}" for s, n in sorted(sources.items()))
    sections.append(("Balanced populations (R7)", v,
                     [("Balance index", _fig_box(d, "populations.balance_index", "balance index", "Population balance"))],
                     "Balance index 1 - ||G+| - |G-|| / (|G+| + |G-|): 1 is perfectly balanced. Decision states of "
                     f"the population assignment: {source_note or 'none'} (attractors = bounded delay-map attractors "
                     "of each choice; delay_end = the end-of-delay states of the trials, used where a choice has no "
                     "bounded attractor; set the spec's analysis.decision_states to read every network one way)."))

    v = []
    if both:
        v.append(stats.compare_groups("RL is more robust to input noise (accuracy averaged over noise x0.5..x4)",
                                      d.values("robustness.noise_mean_accuracy", rule=rl),
                                      d.values("robustness.noise_mean_accuracy", rule=sl)))
        v.append(stats.compare_groups("RL decisions survive hidden-state kicks more often (R9)",
                                      d.values("robustness.kick_mean_survival", rule=rl),
                                      d.values("robustness.kick_mean_survival", rule=sl)))
        v.append(stats.compare_groups("RL degrades less when units are silenced (mean accuracy over k)",
                                      d.values("robustness.ablation_mean_accuracy", rule=rl),
                                      d.values("robustness.ablation_mean_accuracy", rule=sl)))
    sections.append(("Robustness (R8, R9)", v,
                     [("Accuracy against input noise", _fig_curves(d, "robustness.noise_curve", "noise x training amplitude",
                                                                   "accuracy", "Input noise")),
                      ("Decision survival against kicks", _fig_curves(d, "robustness.kick_curve", "kick size",
                                                                      "P(decision kept)", "Delay-period kicks"))],
                     ""))

    v = []
    if both:
        v.append(stats.compare_groups("RL carries more stimulus information in the stimulus stage (R10)",
                                      d.values("information.coherence_mi_stimulus", rule=rl),
                                      d.values("information.coherence_mi_stimulus", rule=sl)))
    sections.append(("Information (R10)", v, [], "Mean mutual information (nats) between unit activity and the relevant coherence."))

    v = []
    for rule in d.spec.rules:
        v.append(stats.bound(f"{rule.upper()}: end-of-stimulus states fall into the basin of the correct decision (> 0.9)",
                             d.values("dynamics.decision_basin_match", rule=rule), 0.9, below=False, name=rule.upper()))
    sections.append(("Decision fixed points and basins (R12)", v, [], ""))

    v = []
    for rule in d.spec.rules:
        v.append(stats.bound(f"{rule.upper()}: the landscape changes during training (QP-fraction range over checkpoints > 0)",
                             d.values("sculpting_summary.qp_range", rule=rule), 0.0, below=False, name=rule.upper()))
        v.append(stats.bound(f"{rule.upper()}: population membership crystallises before training ends (R13)",
                             d.values("sculpting_summary.population_crystallized_progress", rule=rule), 1.0,
                             below=True, name=rule.upper()))
    sections.append(("Progressive sculpting (R11)", v, [("Accuracy and QP fraction over training", _fig_sculpting(d))], ""))

    v = []
    if both:
        v.append(stats.compare_groups("RL needs more environment steps than SL needs trials x steps (descriptive)",
                                      d.values("training.steps_to_criterion", rule=rl),
                                      d.values("training.steps_to_criterion", rule=sl)))
    sections.append(("Cost of learning", v,
                     [("Steps to criterion", _fig_box(d, "training.steps_to_criterion", "env steps", "Steps to criterion"))],
                     "Env steps (RL) and supervised time steps (SL) until the stopping rule fired."))
    return sections


# ---------------------------------------------------------------------- writers
def _table(d: _Data) -> list[list[str]]:
    rows = [["network", "status", "accuracy", "steps to criterion", "QP fraction", "balance"]]
    for r in d.records:
        c = Cell(**r["cell"])
        fmt = lambda p: ("" if not np.isfinite(_num(r, p)) else f"{_num(r, p):.3g}")  # noqa: E731
        rows.append([c.cell_id, r["status"], fmt("training.final_accuracy"), fmt("training.steps_to_criterion"),
                     fmt("dynamics.qp_fraction"), fmt("populations.balance_index")])
    return rows


def _num(r: dict, path: str) -> float:
    v = _get(r, path)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def write_report(out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (with ``report_figures/*.png``) into ``out_dir``.

    Returns:
        The paths written: ``{"html": ..., "markdown": ..., "verdicts": ...}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    spec_path = out / "spec.json"
    if not spec_path.exists():
        raise FileNotFoundError(f"{out} is not an experiment folder (no spec.json)")
    spec = ExperimentSpec.from_dict(json.loads(spec_path.read_text()))
    d = _Data(spec, out)
    sections = _claims(d)
    fig_dir = out / "report_figures"
    fig_dir.mkdir(exist_ok=True)

    counts = defaultdict(int)
    for r in d.records:
        counts[r["status"]] += 1
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    header = (f"Experiment **{spec.name}**: rules {', '.join(spec.rules)}; delta {', '.join(f'{x:g}' for x in spec.deltas)}; "
              f"{len(spec.seeds)} seeds; levels {', '.join(map(str, spec.levels))}; {spec.hidden_size} units; "
              f"criterion {spec.target_accuracy:.0%}. Networks: {status}.")

    md = ["# RL vs SL: how the learning rule shapes the dynamics", "", header, "",
          "Verdicts: *reproduced* (effect in the paper's direction, p < 0.05 and the 95% CI excludes 0), "
          "*not reproduced* (CI on the other side, or a negligible effect), *inconclusive* otherwise "
          "(see `analysis/experiments/stats.py`).", ""]
    parts = [f"<h1>RL vs SL: how the learning rule shapes the dynamics</h1><p>{_md_inline(header)}</p>",
             "<p>Verdicts: <i>reproduced</i> (effect in the paper's direction, p &lt; 0.05 and the 95% CI excludes 0), "
             "<i>not reproduced</i> (CI on the other side, or a negligible effect), <i>inconclusive</i> otherwise.</p>"]
    all_verdicts = []
    for i, (title, verdicts, figures, note) in enumerate(sections):
        md += [f"## {title}", ""]
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if note:
            md += [note, ""]
            parts.append(f"<p>{html.escape(note)}</p>")
        if verdicts:
            md += ["| claim | verdict | effect (95% CI) | test | n |", "|---|---|---|---|---|"]
            parts.append("<table><tr><th>claim</th><th>verdict</th><th>effect (95% CI)</th><th>test</th><th>n</th></tr>")
            for v in verdicts:
                all_verdicts.append(v.to_dict())
                eff = f"{v.effect_name} = {v.effect:.3g}" + (f" [{v.ci[0]:.3g}, {v.ci[1]:.3g}]" if np.all(np.isfinite(v.ci)) else "")
                test = v.test + (f", p = {v.p_value:.3g}" if np.isfinite(v.p_value) else "") + (f"; {v.note}" if v.note else "")
                ns = ", ".join(f"{k}: {n}" for k, n in v.n.items())
                md.append(f"| {v.claim} | **{v.verdict}** | {eff} | {test} | {ns} |")
                cls = v.verdict.replace(" ", "-")
                parts.append(f"<tr><td>{html.escape(v.claim)}</td><td class='{cls}'>{v.verdict}</td>"
                             f"<td>{html.escape(eff)}</td><td>{html.escape(test)}</td><td>{html.escape(ns)}</td></tr>")
            md.append("")
            parts.append("</table>")
        else:
            md += ["*No verdict: the experiment has no data for this claim (e.g. only one learning rule or one delta).*", ""]
            parts.append("<p><i>No verdict: the experiment has no data for this claim.</i></p>")
        for j, (caption, png) in enumerate(figures):
            if png is None:
                continue
            name = f"fig{i:02d}_{j}.png"
            (fig_dir / name).write_bytes(png)
            md += [f"![{caption}](report_figures/{name})", ""]
            b64 = base64.b64encode(png).decode()
            parts.append(f"<figure><img src='data:image/png;base64,{b64}'/><figcaption>{html.escape(caption)}</figcaption></figure>")

    table = _table(d)
    md += ["## Networks", "", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    md += ["| " + " | ".join(row) + " |" for row in table[1:]]
    parts.append("<h2>Networks</h2><table>" + "".join(
        "<tr>" + "".join(f"<{'th' if k == 0 else 'td'}>{html.escape(x)}</{'th' if k == 0 else 'td'}>" for x in row) + "</tr>"
        for k, row in enumerate(table)) + "</table>")
    md += ["", f"TensorBoard logs of every run: `tensorboard --logdir {out / 'cells'}`", ""]
    parts.append(f"<p>TensorBoard logs of every run: <code>tensorboard --logdir {html.escape(str(out / 'cells'))}</code></p>")

    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:90%}"
             ".reproduced{background:#d8f5d0}.not-reproduced{background:#f8d4d4}.inconclusive{background:#f3f0d0}"
             "figure{display:inline-block;margin:0.5em}img{max-width:520px}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.name)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    paths = {"html": out / "report.html", "markdown": out / "report.md", "verdicts": out / "verdicts.json"}
    paths["html"].write_text(page)
    paths["markdown"].write_text("\n".join(md))
    write_json(paths["verdicts"], all_verdicts)
    return paths


def _md_inline(text: str) -> str:
    out = html.escape(text)
    parts = out.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


__all__ = ["write_report"]
