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
from .runner import cell_dir, load_records, reached_criterion, record_number, record_value
from .spec import Cell, ExperimentSpec

RULE_COLOURS = {"rl": "#d62728", "sl": "#1f77b4"}


class _Data:
    """The finished networks of an experiment, grouped for the claims.

    Comparisons use only networks that reached the criterion (:attr:`included`); the others are counted
    (:attr:`missed`) and listed, never dropped silently.
    """

    def __init__(self, spec: ExperimentSpec, out_dir: Path) -> None:
        self.spec, self.out = spec, out_dir
        self.records = load_records(spec, out_dir)
        self.done = [r for r in self.records if r["status"] == "done"]
        self.included = [r for r in self.done if reached_criterion(r)]
        self.missed = Counter(r["cell"]["rule"] for r in self.done if not reached_criterion(r))

    def values(self, path: str, *, rule: Optional[str] = None, level: Optional[int] = None,
               delta: Optional[float] = None, every: bool = False) -> np.ndarray:
        """One value per network (NaN where missing): networks that reached the criterion, or ``every`` one."""
        out = []
        for r in (self.done if every else self.included):
            c = r["cell"]
            if (rule and c["rule"] != rule) or (level and c["level"] != level) or (delta and c["delta"] != delta):
                continue
            out.append(record_number(r, path))
        return np.asarray(out, dtype=float)

    def cells(self, rule: Optional[str] = None) -> list[dict]:
        return [r for r in self.included if rule is None or r["cell"]["rule"] == rule]

    def paired(self, path: str, fn: Optional[Any] = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """RL and SL values of every (level, delta, seed) pair whose two networks reached the criterion, with the
        pair's stratum (level and delta). ``fn(record) -> float`` replaces the path lookup."""
        by: dict[tuple, dict[str, dict]] = defaultdict(dict)
        for r in self.included:
            c = r["cell"]
            by[(c["level"], c["delta"], c["seed"])][c["rule"]] = r
        get = fn or (lambda r: record_number(r, path))
        keys = sorted(k for k, v in by.items() if {"rl", "sl"} <= set(v))
        a = np.array([get(by[k]["rl"]) for k in keys], dtype=float)
        b = np.array([get(by[k]["sl"]) for k in keys], dtype=float)
        return a, b, [f"L{k[0]} d{k[1]:g}" for k in keys]


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
            curves = [r["dynamics"]["qp_fraction_reachable_by_coherence"] for r in d.cells(rule)
                      if r["cell"]["delta"] == delta
                      and record_value(r, "dynamics.qp_fraction_reachable_by_coherence", None)]
            if not curves:
                continue
            cohs = sorted({float(c) for cur in curves for c in cur})
            # a bin whose trial states all diverge has no QP fraction (null in the JSON): a gap, not a zero
            ys = np.array([[cur.get(_key(c)) for c in cohs] for cur in curves], dtype=float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(ys, axis=0)
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
        curves = [record_value(r, path, None) for r in d.cells(rule)]
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
        track = record_value(r, "sculpting", None)
        if not isinstance(track, list) or not track:
            continue
        progress = np.array([t.get("progress", np.nan) for t in track], dtype=float)
        colour = RULE_COLOURS[r["cell"]["rule"]]
        axes[0].plot(progress, [t.get("accuracy", np.nan) for t in track], "-", color=colour, alpha=0.5)
        axes[1].plot(progress, [t.get("qp_fraction_reachable", t.get("qp_fraction", np.nan)) for t in track], "-", color=colour, alpha=0.5)
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
        qp = d.values(QP_PATH, rule="rl", level=level)
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
Section = tuple[str, list[stats.Finding], list[tuple[str, Optional[bytes]]], str]

EQUIVALENCE = "equivalence: "
"""Claims of "no difference": reproduced when the equivalence test (TOST) passes, not reproduced when the difference
test does (see :func:`_equivalence_verdicts`)."""


def _claims(d: _Data) -> list[Section]:
    """(section title, findings, figures, commentary) for each claim of the paper, in the paired design."""
    return [_r6(d), _r1_r2(d), _r3(d), _r4(d), _r5(d), _r7(d), _r8_r9(d), _r10(d), _r12(d), _r11_r13(d)]


def _both(d: _Data) -> bool:
    return set(d.spec.rules) >= {"rl", "sl"}


def _r6(d: _Data) -> Section:
    target = d.spec.target_accuracy
    v = []
    for rule in d.spec.rules:
        v.append(stats.one_sample(f"{rule.upper()}: accuracy on {_eval_trials(d)} fresh trials above {target:.0%} "
                                  "(every finished network, criterion reached or not)",
                                  d.values("training.accuracy", rule=rule, every=True), target, below=False))
    if _both(d):
        a, b, strata = d.paired("training.accuracy")
        v.append(stats.paired_difference(EQUIVALENCE + "RL and SL reach the same accuracy (within 2 points)", a, b,
                                         strata=strata, margin=0.02))
    sampled = d.values("training.sampled_accuracy", rule="rl", every=True)
    note = ("Accuracy on fresh trials that the stopping rule never saw (greedy actions). "
            + (f"RL with actions sampled from its policy: median {np.nanmedian(sampled):.3f}. " if np.isfinite(
                sampled).any() else ""))
    return ("Both learning rules solve the task (R6)", v,
            [("Accuracy by coherence", _fig_curves(d, "training.accuracy_by_coherence", "|coherence|", "accuracy",
                                                   "Final accuracy by coherence"))], note)


def _eval_trials(d: _Data) -> str:
    n = d.values("training.eval_trials", every=True)
    return f"{int(np.nanmax(n)):,}" if np.isfinite(n).any() else "the"


QP_PATH = "dynamics.qp_fraction_reachable"


def _r1_r2(d: _Data) -> Section:
    v = []
    if _both(d):
        a, b, strata = d.paired(QP_PATH)
        v.append(stats.paired_difference("RL networks have a larger quasi-periodic fraction than their SL twins",
                                         a, b, strata=strata, larger="a"))
    if "sl" in d.spec.rules:
        v.append(stats.one_sample("SL converges (almost) exclusively to fixed points: QP fraction below 0.05",
                                  d.values(QP_PATH, rule="sl"), 0.05, below=True))
    note = ("Trial-reachable, basin-weighted QP fraction of the stimulus-stage map: of the states trials visit "
            "during the stimulus, held at each grid input, the fraction whose bounded attractor is quasi-periodic. "
            f"Median divergent fraction RL {_med(d, 'dynamics.divergent_fraction_reachable', 'rl')}, SL "
            f"{_med(d, 'dynamics.divergent_fraction_reachable', 'sl')}; unresolved RL "
            f"{_med(d, 'dynamics.unresolved_fraction_reachable', 'rl')}, SL "
            f"{_med(d, 'dynamics.unresolved_fraction_reachable', 'sl')} (outside the denominator). Over distinct "
            f"attractors from random and trial starts (secondary): RL {_med(d, 'dynamics.qp_fraction', 'rl')}, SL "
            f"{_med(d, 'dynamics.qp_fraction', 'sl')}.")
    return ("Hybrid dynamics under RL, fixed points under SL (R1, R2)", v,
            [("Attractor types over the coherence plane", _fig_attractor_maps(d)),
             ("Quasi-periodic fraction by rule and delta", _fig_box(d, QP_PATH, "QP fraction (trial-reachable)",
                                                                    "Quasi-periodic attractors"))], note)


def _med(d: _Data, path: str, rule: str) -> str:
    x = d.values(path, rule=rule)
    return f"{np.nanmedian(x):.3g}" if np.isfinite(x).any() else "n/a"


def _r3(d: _Data) -> Section:
    v = []
    if "rl" in d.spec.rules:
        cells = d.cells("rl")
        lo = np.array([record_number(r, "dynamics.qp_fraction_reachable_low_coherence") for r in cells])
        hi = np.array([record_number(r, "dynamics.qp_fraction_reachable_high_coherence") for r in cells])
        strata = [f"L{r['cell']['level']} d{r['cell']['delta']:g}" for r in cells]
        v.append(stats.within_network("RL: quasi-periodicity concentrates at low |coherence| (within each network)",
                                      lo, hi, strata=strata, larger="x"))
    return ("Quasi-periodicity at ambiguous stimuli (R3)", v,
            [("Quasi-periodic fraction by |coherence|", _fig_qp_by_coherence(d))],
            "Low and high |coherence|: the lower and upper half of the grid's relevant-coherence values; the two "
            "values of each network are compared with each other (paired).")


def _r4(d: _Data) -> Section:
    v = []
    if len(d.spec.deltas) > 1 and "rl" in d.spec.rules:
        cells = d.cells("rl")
        v.append(stats.rank_association("RL: broader initialisation (larger delta) gives more quasi-periodicity",
                                        [r["cell"]["delta"] for r in cells], [record_number(r, QP_PATH) for r in cells],
                                        strata=[r["cell"]["level"] for r in cells], positive=True))
    return ("Initialisation width modulates the dynamics (R4)", v, [], "")


def _r5(d: _Data) -> Section:
    v = []
    if "rl" in d.spec.rules:
        for level in d.spec.levels:
            cells = [r for r in d.cells("rl") if r["cell"]["level"] == level]
            v.append(stats.rank_association(
                f"Level {level}: RL networks with more quasi-periodicity perform better at the lowest coherence",
                [record_number(r, QP_PATH) for r in cells],
                [record_number(r, "training.low_coherence_accuracy") for r in cells],
                strata=[r["cell"]["delta"] for r in cells], positive=True))
    return ("Quasi-periodicity and performance (R5)", v,
            [("QP fraction against low-coherence accuracy", _fig_qp_vs_performance(d))],
            "The paper reports the correlation grows with task complexity: compare the rho of each level (the "
            "sensitivity study trains levels 1 and 3).")


def _r7(d: _Data) -> Section:
    v = []
    if _both(d):
        a, b, strata = d.paired("populations.balance_index")
        v.append(stats.paired_difference("RL populations are more balanced than their SL twins (balance index)",
                                         a, b, strata=strata, larger="a"))
    sources = Counter(str(record_value(r, "populations.decision_source", None) or "unrecorded")
                      for r in d.included if record_value(r, "populations", None) is not None)
    undefined = Counter(r["cell"]["rule"] for r in d.included
                        if record_value(r, "populations", None) is not None
                        and not np.isfinite(record_number(r, "populations.balance_index")))
    note = ("Balance index 1 - ||G+| - |G-|| / (|G+| + |G-|): 1 is perfectly balanced. Decision states: "
            f"{', '.join(f'{n} from {s}' for s, n in sorted(sources.items())) or 'none'}. Networks with undefined "
            f"balance (no G+ and no G- unit): {', '.join(f'{k.upper()} {n}' for k, n in sorted(undefined.items())) or 'none'}.")
    return ("Balanced populations (R7)", v,
            [("Balance index", _fig_box(d, "populations.balance_index", "balance index", "Population balance"))], note)


def _r8_r9(d: _Data) -> Section:
    v = []
    if _both(d):
        for claim, path, larger in (
            ("RL loses less accuracy to input noise than its SL twin (drop from x1 to x1.5-x4 noise)",
             "robustness.noise_drop", "b"),
            ("RL decisions survive hidden-state kicks more often (R9)", "robustness.kick_mean_survival", "a"),
            ("RL loses less accuracy when units are silenced (drop from its clean accuracy)",
             "robustness.ablation_drop", "b"),
        ):
            a, b, strata = d.paired(path)
            v.append(stats.paired_difference(claim, a, b, strata=strata, larger=larger))
    return ("Robustness (R8, R9)", v,
            [("Accuracy against input noise", _fig_curves(d, "robustness.noise_curve", "noise x training amplitude",
                                                          "accuracy", "Input noise")),
             ("Decision survival against kicks", _fig_curves(d, "robustness.kick_curve", "kick size",
                                                             "P(decision kept)", "Delay-period kicks"))],
            "Drops are measured from each network's own accuracy, so a better network is not rewarded twice.")


def _r10(d: _Data) -> Section:
    v = []
    if _both(d):
        a, b, strata = d.paired("information.coherence_mi_stimulus")
        v.append(stats.paired_difference("RL carries more stimulus information in the stimulus stage (R10)", a, b,
                                         strata=strata, larger="a"))
    return ("Information (R10)", v, [], "Mean mutual information (nats) between unit activity and the relevant "
                                        "coherence.")


def _r12(d: _Data) -> Section:
    v = [stats.one_sample(f"{rule.upper()}: end-of-stimulus states fall into the basin of the correct decision (> 0.9)",
                          d.values("dynamics.decision_basin_match", rule=rule), 0.9, below=False)
         for rule in d.spec.rules]
    return ("Decision fixed points and basins (R12)", v, [], "")


CRYSTALLIZED_BEFORE = 0.9
"""R13: the training progress (env steps / final) before which population membership must stop changing."""


def _r11_r13(d: _Data) -> Section:
    # "before training ends" needs a margin: the last two checkpoints of a run (acc_target, final_model) lie a few
    # hundred steps apart, so a membership that changes up to the end still "settles" at progress 0.9999
    v = [stats.one_sample(f"{rule.upper()}: population membership crystallises before 90% of training (R13)",
                          d.values("sculpting_summary.population_crystallized_progress", rule=rule),
                          CRYSTALLIZED_BEFORE, below=True)
         for rule in d.spec.rules]
    change = {rule: d.values("sculpting_summary.qp_range", rule=rule) for rule in d.spec.rules}
    note = ("Progressive sculpting (R11) is described, not tested: the range of the QP fraction over each run's "
            "checkpoints, median " + ", ".join(
                f"{k.upper()} {np.nanmedian(x):.3g}" for k, x in change.items() if np.isfinite(x).any()) + ".")
    return ("Progressive sculpting (R11, R13)", v,
            [("Accuracy and QP fraction over training", _fig_sculpting(d))], note)


def _equivalence_verdicts(findings: list[stats.Finding], alpha: float = stats.ALPHA) -> list[stats.Finding]:
    """Claims of "no difference" (:data:`EQUIVALENCE`): reproduced if equivalent within the margin, not reproduced
    if different."""
    import dataclasses

    out = []
    for f in findings:
        if f.claim.startswith(EQUIVALENCE):
            if f.p_equivalence_adjusted < alpha:
                verdict = stats.REPRODUCED
            elif f.p_adjusted < alpha:
                verdict = stats.NOT_REPRODUCED
            else:
                verdict = stats.INCONCLUSIVE
            f = dataclasses.replace(f, claim=f.claim[len(EQUIVALENCE):], verdict=verdict)
        out.append(f)
    return out


def decide_sections(sections: list[Section], alpha: float = stats.ALPHA) -> list[Section]:
    """Adjust the p-values of every finding of the report together (Holm) and attach the verdicts."""
    flat = [f for _, fs, _, _ in sections for f in fs]
    decided = iter(_equivalence_verdicts(stats.decide(flat, alpha=alpha, method="holm"), alpha))
    return [(t, [next(decided) for _ in fs], figs, note) for t, fs, figs, note in sections]


# ---------------------------------------------------------------------- writers
def _finding_cells(f: stats.Finding) -> list[str]:
    """Estimate with CI, test, raw p, Holm p and n of a finding, as table cells."""
    ci = f" [{f.ci[0]:.3g}, {f.ci[1]:.3g}]" if np.all(np.isfinite(f.ci)) else ""
    est = (f"{f.estimate:.3g}" if np.isfinite(f.estimate) else "n/a") + ci
    test = f.test + (f"; TOST +-{f.margin:g}: p = {_p(f.p_equivalence)} (Holm {_p(f.p_equivalence_adjusted)})"
                     if f.margin is not None else "") + (f"; {f.note}" if f.note else "")
    return [est, test, _p(f.p_value), _p(f.p_adjusted), str(f.n)]


def _p(p: float) -> str:
    return f"{p:.2g}" if np.isfinite(p) else "n/a"


TABLE_COLUMNS = (
    ("accuracy", "training.accuracy"),
    ("steps to criterion", "training.steps_to_criterion"),
    ("QP (reachable)", "dynamics.qp_fraction_reachable"),
    ("divergent", "dynamics.divergent_fraction_reachable"),
    ("unresolved", "dynamics.unresolved_fraction_reachable"),
    ("QP (attractors)", "dynamics.qp_fraction"),
    ("balance", "populations.balance_index"),
    ("noise drop", "robustness.noise_drop"),
    ("ablation drop", "robustness.ablation_drop"),
    ("QP at step 0", "initial.dynamics.qp_fraction_reachable"),
    ("balance at step 0", "initial.populations.balance_index"),
)
"""The per-network table of the report (and of ``networks.csv``)."""


def _table(d: _Data) -> list[list[str]]:
    rows = [["network", "status", "criterion"] + [name for name, _ in TABLE_COLUMNS]]
    for r in d.records:
        c = Cell(**r["cell"])
        fmt = lambda p: ("" if not np.isfinite(record_number(r, p)) else f"{record_number(r, p):.3g}")  # noqa: E731
        crit = "" if r["status"] != "done" else "reached" if reached_criterion(r) else "missed (excluded)"
        rows.append([c.cell_id, r["status"], crit] + [fmt(path) for _, path in TABLE_COLUMNS])
    return rows


RULE_TEXT = ("Verdicts: RL and SL networks of one seed and delta start from the same weights, so they are compared "
             "pair by pair (sign-flip permutation test of the mean paired difference, exact up to 16 pairs, "
             "stratified by delta and level; two values of one network likewise); associations by Spearman's "
             "rho. Every p-value of the report is Holm-adjusted as one family. *Reproduced*: adjusted p < 0.05, "
             "effect in the paper's direction, 95% CI excluding 0. *Not reproduced*: adjusted p < 0.05 the "
             "other way, or equivalence shown (TOST within the stated margin). *Inconclusive* otherwise. "
             "Claims of no difference are reproduced by the equivalence test. See `analysis/experiments/stats.py`.")
"""How the report decides (its second paragraph)."""

PAGE_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
              "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:90%}"
              ".reproduced{background:#d8f5d0}.not-reproduced{background:#f8d4d4}.inconclusive{background:#f3f0d0}"
              "figure{display:inline-block;margin:0.5em}img{max-width:520px}")


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
    sections = decide_sections(_claims(d))
    fig_dir = out / "report_figures"
    fig_dir.mkdir(exist_ok=True)

    header = _header(spec, d)
    md = ["# RL vs SL: how the learning rule shapes the dynamics", "", header, "", RULE_TEXT, ""]
    parts = [f"<h1>RL vs SL: how the learning rule shapes the dynamics</h1><p>{_md_inline(header)}</p>",
             f"<p>{html.escape(RULE_TEXT)}</p>"]
    all_verdicts = []
    for i, section in enumerate(sections):
        all_verdicts += _write_section(i, section, fig_dir, md, parts)
    _write_networks(d, out, md, parts)

    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.name)}</title>"
            f"<style>{PAGE_STYLE}</style></head><body>{''.join(parts)}</body></html>")
    paths = {"html": out / "report.html", "markdown": out / "report.md", "verdicts": out / "verdicts.json"}
    paths["html"].write_text(page)
    paths["markdown"].write_text("\n".join(md))
    write_json(paths["verdicts"], all_verdicts)
    return paths


def _header(spec: ExperimentSpec, d: _Data) -> str:
    """The report's first paragraph: the design, and how many networks finished, reached or missed the criterion."""
    counts = defaultdict(int)
    for r in d.records:
        counts[r["status"]] += 1
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    missed = ", ".join(f"{k.upper()} {n}" for k, n in sorted(d.missed.items())) or "none"
    return (f"Experiment **{spec.name}**: rules {', '.join(spec.rules)}; delta {', '.join(f'{x:g}' for x in spec.deltas)}; "
            f"{len(spec.seeds)} seeds; levels {', '.join(map(str, spec.levels))}; {spec.hidden_size} units; "
            f"criterion {spec.target_accuracy:.0%}. Networks: {status}. Finished without reaching the criterion "
            f"(left out of every comparison, listed below): {missed}.")


def _write_section(i: int, section: Section, fig_dir: Path, md: list[str], parts: list[str]) -> list[dict]:
    """Append claim section ``i`` (title, note, verdict table, figures saved into ``fig_dir``) to the markdown
    lines ``md`` and the HTML ``parts``; returns its verdicts as dicts."""
    title, verdicts, figures, note = section
    out = []
    md += [f"## {title}", ""]
    parts.append(f"<h2>{html.escape(title)}</h2>")
    if note:
        md += [note, ""]
        parts.append(f"<p>{html.escape(note)}</p>")
    if verdicts:
        head = ["claim", "verdict", "estimate (95% CI)", "test", "p", "p (Holm)", "n"]
        md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>")
        for v in verdicts:
            out.append({"section": title, **v.to_dict()})
            cells = _finding_cells(v)
            md.append("| " + " | ".join([v.claim, f"**{v.verdict}**"] + cells) + " |")
            cls = v.verdict.replace(" ", "-")
            parts.append(f"<tr><td>{html.escape(v.claim)}</td><td class='{cls}'>{v.verdict}</td>"
                         + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
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
    return out


def _write_networks(d: _Data, out: Path, md: list[str], parts: list[str]) -> None:
    """Append the per-network table and the TensorBoard hint to ``md`` and ``parts``."""
    table = _table(d)
    md += ["## Networks", "", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    md += ["| " + " | ".join(row) + " |" for row in table[1:]]
    parts.append("<h2>Networks</h2><table>" + "".join(
        "<tr>" + "".join(f"<{'th' if k == 0 else 'td'}>{html.escape(x)}</{'th' if k == 0 else 'td'}>" for x in row) + "</tr>"
        for k, row in enumerate(table)) + "</table>")
    md += ["", f"TensorBoard logs of every run: `tensorboard --logdir {out / 'cells'}`", ""]
    parts.append(f"<p>TensorBoard logs of every run: <code>tensorboard --logdir {html.escape(str(out / 'cells'))}</code></p>")


def _md_inline(text: str) -> str:
    out = html.escape(text)
    parts = out.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


__all__ = ["write_report"]
