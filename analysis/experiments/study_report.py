"""The report of a factor study: per factor and rule, the headline metrics, RL against SL within each factor, and
each factor against the baseline, with paired effects, bootstrap CIs and Holm-adjusted p over the whole study.

Reads only the exported files (``study.json``, each factor's ``spec.json`` and ``cells/*/result.json``), so
``dmd experiment report OUT`` on a study folder rebuilds it. Writes ``study_report.md`` and ``study_findings.json``
(and each factor's own experiment report).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agents.files import write_json

from . import stats
from .runner import load_records, reached_criterion, record_number, record_value
from .spec import ExperimentSpec
from .study import BASELINE, Study

METRICS = (
    ("QP fraction (trial-reachable)", "dynamics.qp_fraction_reachable"),
    ("divergent fraction", "dynamics.divergent_fraction_reachable"),
    ("balance index", "populations.balance_index"),
    ("noise drop", "robustness.noise_drop"),
    ("ablation drop", "robustness.ablation_drop"),
)
"""(name, result path) of the metrics compared across factors."""


def _records(folder: Path) -> tuple[ExperimentSpec, list[dict]]:
    spec = ExperimentSpec.from_dict(json.loads((folder / "spec.json").read_text()))
    return spec, [r for r in load_records(spec, folder) if r["status"] == "done"]


def _key(r: dict) -> tuple:
    c = r["cell"]
    return (c["rule"], c["delta"], c["seed"])


def _initial_rows(records: list[dict]) -> dict[str, np.ndarray]:
    """Step-0 values (measured once per pair, on the cell that carries ``initial``)."""
    return {path: np.array([record_number(r, "initial." + path) for r in records
                            if record_value(r, "initial", None) is not None])
            for _, path in METRICS}


def study_findings(out: str | Path) -> tuple[list[dict], list[stats.Finding], dict]:
    """Per-(factor, rule) medians, and the findings (RL vs SL per factor; factor vs baseline per rule)."""
    out = Path(out)
    st = Study.load(out / "study.json")
    recs = {f: _records(out / f)[1] for f in st.factors if (out / f / "spec.json").is_file()}
    rows, findings = [], []
    counts: dict[str, Any] = {}
    for factor, records in recs.items():
        ok = [r for r in records if reached_criterion(r)]
        counts[factor] = {rule: {"finished": sum(r["cell"]["rule"] == rule for r in records),
                                 "reached": sum(r["cell"]["rule"] == rule for r in ok)}
                          for rule in ("rl", "sl")}
        for rule in ("rl", "sl"):
            sel = [r for r in ok if r["cell"]["rule"] == rule]
            if sel:
                rows.append({"factor": factor, "rule": rule, "n": len(sel),
                             **{name: float(np.nanmedian([record_number(r, p) for r in sel])) for name, p in METRICS}})
        init = _initial_rows(records)
        if any(len(v) for v in init.values()):
            rows.append({"factor": factor, "rule": "step 0", "n": int(max(len(v) for v in init.values())),
                         **{name: float(np.nanmedian(init[p])) if len(init[p]) else float("nan")
                            for name, p in METRICS}})
        by = {_key(r): r for r in ok}
        pairs = sorted({(d, s) for (_, d, s) in by if ("rl", d, s) in by and ("sl", d, s) in by})
        if pairs:
            a = [record_number(by[("rl", d, s)], METRICS[0][1]) for d, s in pairs]
            b = [record_number(by[("sl", d, s)], METRICS[0][1]) for d, s in pairs]
            findings.append(stats.paired_difference(f"{factor}: RL has a larger QP fraction than SL", a, b,
                                                    strata=[d for d, _ in pairs], larger="a"))
    base = {_key(r): r for r in recs.get(BASELINE, []) if reached_criterion(r)}
    for factor, records in recs.items():
        if factor == BASELINE:
            continue
        by = {_key(r): r for r in records if reached_criterion(r)}
        for rule in ("rl", "sl"):
            keys = sorted(k for k in by if k[0] == rule and k in base)
            if not keys:
                continue
            for name, path in METRICS[:1] + METRICS[2:3]:
                findings.append(stats.paired_difference(
                    f"{factor} vs baseline, {rule.upper()}: {name} changes (two-sided; + means higher under "
                    f"{factor})", [record_number(by[k], path) for k in keys],
                    [record_number(base[k], path) for k in keys],
                    strata=[k[1] for k in keys], larger="a"))
    return rows, stats.decide(findings), counts


def write_study_report(out: str | Path) -> dict[str, Path]:
    """Write ``study_report.md`` and ``study_findings.json`` into a study folder; returns their paths."""
    out = Path(out)
    rows, findings, counts = study_findings(out)
    st = Study.load(out / "study.json")
    md = [f"# Study {st.name}: what decides the dynamics", "",
          "Each factor changes one thing against the baseline, with the same paired seeds. Medians over the "
          "networks that reached the criterion; `step 0` is the initial weights of the same pairs.", ""]
    md += ["| factor | what it changes | RL reached / finished | SL reached / finished |", "|---|---|---|---|"]
    for f in st.factors:
        c = counts.get(f, {})
        cell = lambda rule: (f"{c[rule]['reached']} / {c[rule]['finished']}"  # noqa: E731
                             if c.get(rule, {}).get("finished") else "-")
        md.append(f"| {f} | {st.notes.get(f, '')} | {cell('rl')} | {cell('sl')} |")
    md += ["", "| factor | rule | n | " + " | ".join(name for name, _ in METRICS) + " |",
           "|---|---|---|" + "---|" * len(METRICS)]
    for r in rows:
        vals = " | ".join("n/a" if not np.isfinite(r[name]) else f"{r[name]:.3g}" for name, _ in METRICS)
        md.append(f"| {r['factor']} | {r['rule']} | {r['n']} | {vals} |")
    md += ["", "Paired findings (sign-flip permutation tests; Holm over the whole study):", "",
           "| finding | verdict | estimate (95% CI) | p | p (Holm) | n |", "|---|---|---|---|---|---|"]
    for f in findings:
        ci = f" [{f.ci[0]:.3g}, {f.ci[1]:.3g}]" if np.all(np.isfinite(f.ci)) else ""
        est = (f"{f.estimate:.3g}" if np.isfinite(f.estimate) else "n/a") + ci
        p = lambda x: f"{x:.2g}" if np.isfinite(x) else "n/a"  # noqa: E731
        md.append(f"| {f.claim} | {f.verdict} | {est} | {p(f.p_value)} | {p(f.p_adjusted)} | {f.n} |")
    paths = {"markdown": out / "study_report.md", "findings": out / "study_findings.json"}
    paths["markdown"].write_text("\n".join(md) + "\n")
    write_json(paths["findings"], {"rows": rows, "counts": counts, "findings": [f.to_dict() for f in findings]})
    return paths


__all__ = ["METRICS", "study_findings", "write_study_report"]
