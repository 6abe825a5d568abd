"""Figures (PNG) for the populations, information, connectivity, crystallization, PCA and robustness analyses.

Every function takes the result objects of :mod:`analysis.populations.groups`, :mod:`analysis.populations.information`,
:mod:`analysis.populations.connectivity`, :mod:`analysis.populations.crystallization`, :mod:`analysis.populations.dimensionality` and
:mod:`analysis.populations.robustness`, writes one PNG and returns its path. Figures are drawn on a bare
:class:`matplotlib.figure.Figure` with the Agg canvas, so no pyplot state or display is touched.

Example:
    >>> from analysis.populations.groups import assign_populations
    >>> pops = assign_populations({"FP+": [1, 0, 1], "FP-": [0, 1, 1]})
    >>> plot_populations(pops, "/tmp/populations.png")          # doctest: +SKIP
    PosixPath('/tmp/populations.png')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, Path]

GROUP_COLORS = {"G+": "#d62728", "G-": "#1f77b4", "Ga": "#9467bd", "Gs": "#2ca02c", "silent": "#c7c7c7",
                "none": "#7f7f7f"}

__all__ = [
    "plot_connectivity",
    "plot_crystallization",
    "plot_ensemble",
    "plot_pca",
    "plot_population_track",
    "plot_populations",
    "plot_robustness",
    "plot_selectivity",
]


def _figure(ncols: int, width: float = 4.2, height: float = 3.6) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig: Any, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight", pad_inches=0.05)  # the format follows the suffix
    return path


def _order_by_group(labels: np.ndarray) -> np.ndarray:
    rank = {g: i for i, g in enumerate(GROUP_COLORS)}
    return np.argsort([rank.get(str(v), len(rank)) for v in labels], kind="stable")


def plot_populations(pops: Any, path: PathLike, *, readout: Optional[Mapping[str, Any]] = None) -> Path:
    """Group sizes (with the balance index) and each unit's activity on every attractor, units sorted by group.

    Args:
        pops: A :class:`~analysis.populations.groups.Populations`.
        path: Output PNG.
        readout: Optional :func:`~analysis.populations.groups.readout_symmetry` result, added to the title.
    """
    fig, (ax1, ax2) = _figure(2)
    sizes = pops.sizes
    names = list(sizes)
    ax1.bar(names, [sizes[g] for g in names], color=[GROUP_COLORS[g] for g in names])
    ax1.set_ylabel("units")
    title = f"balance B = {pops.balance:.2f}  (Gs: {pops.gs})"
    if readout is not None:
        title += f"\nreadout: {readout['n_plus']} vs {readout['n_minus']} units"
    ax1.set_title(title, fontsize=9)
    order = _order_by_group(pops.labels)
    act, peak = column_scaled(pops.activity[order])
    im = ax2.imshow(act, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0, vmax=1.0)
    ax2.set_xticks(range(len(pops.attractors)),
                   [f"{a}\n(max {_short(m)})" for a, m in zip(pops.attractors, peak)], rotation=45, ha="right",
                   fontsize=7)
    ax2.set_ylabel("unit (sorted by group)")
    edges = np.flatnonzero(pops.labels[order][1:] != pops.labels[order][:-1]) + 0.5
    for e in edges:
        ax2.axhline(e, color="w", lw=0.6)
    fig.colorbar(im, ax=ax2, label="activity / the attractor's largest\n(per column; max under each label)")
    ax2.set_title("activity on each attractor", fontsize=9)
    return _save(fig, path)


def column_scaled(activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column divided by its largest absolute finite value (the heatmap's scale: one attractor with activity
    4e7 would otherwise leave every other column blank), and those maxima.

    Example:
        >>> scaled, peak = column_scaled(np.array([[1.0, 4e7], [0.5, 2e7]]))
        >>> scaled.tolist(), peak.tolist()
        ([[1.0, 1.0], [0.5, 0.5]], [1.0, 40000000.0])
    """
    a = np.asarray(activity, np.float64)
    finite = np.where(np.isfinite(a), np.abs(a), 0.0)
    peak = finite.max(axis=0) if a.size else np.zeros(a.shape[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(peak > 0, a / np.where(peak > 0, peak, 1.0), 0.0)
    return np.clip(np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0), peak


def _short(v: float) -> str:
    return f"{v:.2g}"


def plot_selectivity(sel: Any, path: PathLike) -> Path:
    """Fraction of selective units per variable, the mixed-selectivity histogram, and MI by stage (or population)."""
    fig, (ax1, ax2, ax3) = _figure(3)
    frac = sel.fraction_selective()
    ax1.bar(range(len(frac)), list(frac.values()), color="#444")
    ax1.set_xticks(range(len(frac)), list(frac), rotation=45, ha="right", fontsize=8)
    ax1.set_ylabel("fraction of units selective")
    ax1.set_title(f"mixed selectivity: {sel.mixed_fraction():.2f} of units", fontsize=9)
    counts = np.bincount(sel.n_selective_variables(), minlength=len(sel.variables) + 1)
    ax2.bar(range(len(counts)), counts / counts.sum(), color="#888")
    ax2.set_xlabel("variables a unit is selective for")
    ax2.set_ylabel("fraction of units")
    if sel.labels is not None:
        pop = sel.by_population()
        rows = [p for p in GROUP_COLORS if p in pop] + [p for p in pop if p not in GROUP_COLORS]
        mat = np.array([[pop[p][v]["mean_mi"] for v in sel.variables] for p in rows])
        ylabels, title = rows, "mean MI per unit (nats), by population"
    elif sel.stage_mi:
        rows = list(sel.stage_mi)
        with np.errstate(invalid="ignore"):
            mat = np.array([np.nanmean(sel.stage_mi[s], axis=1) for s in rows])
        ylabels, title = rows, "mean MI per unit (nats), by stage"
    else:
        mat = sel.mi.mean(axis=1, keepdims=True).T
        ylabels, title = ["all"], "mean MI per unit (nats)"
    im = ax3.imshow(mat, aspect="auto", cmap="magma", interpolation="nearest")
    ax3.set_xticks(range(len(sel.variables)), sel.variables, rotation=45, ha="right", fontsize=8)
    ax3.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
    ax3.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax3)
    return _save(fig, path)


def plot_connectivity(fc: Any, path: PathLike, *, labels: Optional[np.ndarray] = None,
                      blocks: Optional[Mapping[str, Any]] = None) -> Path:
    """The significant functional graph as a matrix (units sorted by population), the degree distribution, and
    the structural ``W_rec`` block means between populations."""
    fig, (ax1, ax2, ax3) = _figure(3)
    order = _order_by_group(np.asarray(labels)) if labels is not None else np.arange(fc.n_units)
    w = np.where(fc.adjacency, np.abs(fc.weight), 0.0)[np.ix_(order, order)]
    ax1.imshow(w, cmap="Greys", interpolation="nearest")
    density = fc.adjacency.sum() / max(fc.n_units * (fc.n_units - 1), 1)
    ax1.set_title(f"significant pairs ({fc.method}), density {density:.3f}", fontsize=9)
    ax1.set_xlabel("unit (sorted by population)")
    deg = fc.adjacency.sum(axis=1)
    ax2.hist(deg, bins=min(30, max(int(deg.max()) + 1, 2)), color="#555")
    ax2.set_xlabel("degree")
    ax2.set_ylabel("units")
    if blocks is not None:
        mat = np.array(blocks["mean"], dtype=float)
        lim = np.nanmax(np.abs(mat)) if np.isfinite(mat).any() else 1.0
        im = ax3.imshow(mat, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax3.set_xticks(range(len(blocks["groups"])), blocks["groups"])
        ax3.set_yticks(range(len(blocks["groups"])), blocks["groups"])
        ax3.set_xlabel("from (pre)")
        ax3.set_ylabel("to (post)")
        ax3.set_title("mean W_rec between populations", fontsize=9)
        fig.colorbar(im, ax=ax3)
    else:
        ax3.axis("off")
    return _save(fig, path)


def plot_crystallization(cr: Any, path: PathLike) -> Path:
    """Decoder accuracy over time per group (with the threshold) and the readout commitment time per group."""
    fig, (ax1, ax2) = _figure(2)
    d = cr.decoder
    ax1.plot(d.times, d.accuracy, color="k", lw=2, label="all")
    if d.group_accuracy is not None:
        for gv, row in zip(d.groups, d.group_accuracy):
            ax1.plot(d.times, row, lw=1, label=f"{gv:g}" if isinstance(gv, float) else str(gv))
    ax1.axhline(d.threshold, color="r", ls="--", lw=0.8)
    ax1.set_xlabel("step (aligned)")
    ax1.set_ylabel("decoder accuracy (final choice)")
    ax1.legend(fontsize=7, title="coherence", title_fontsize=7)
    by = cr.commitment_by_group()
    keys = [k for k in by if k != "all"] or ["all"]
    ax2.bar(range(len(keys)), [by[k]["mean"] for k in keys], yerr=[by[k]["std"] for k in keys], color="#777")
    ax2.set_xticks(range(len(keys)), [f"{k:g}" if isinstance(k, float) else str(k) for k in keys])
    ax2.set_xlabel("coherence")
    ax2.set_ylabel("readout commitment (steps after alignment)")
    return _save(fig, path)


def plot_pca(pca: Any, path: PathLike, *, trajectories: Optional[Mapping[Any, np.ndarray]] = None) -> Path:
    """Cumulative variance explained (with the participation ratio) and, optionally, trajectories on PC1-PC2.

    Args:
        pca: A :class:`~analysis.populations.dimensionality.PCA`.
        path: Output PNG.
        trajectories: ``{condition: (T, H) mean trajectory}`` to project.
    """
    fig, (ax1, ax2) = _figure(2)
    k = min(30, len(pca.explained_variance_ratio))
    ax1.plot(np.arange(1, k + 1), np.cumsum(pca.explained_variance_ratio)[:k], "o-", ms=3)
    ax1.set_xlabel("components")
    ax1.set_ylabel("cumulative variance explained")
    ax1.set_ylim(0, 1.02)
    ax1.set_title(f"PR = {pca.participation_ratio:.2f}, 90% at {pca.n_components(0.9)} PCs", fontsize=9)
    if trajectories:
        for cond, traj in trajectories.items():
            ok = np.all(np.isfinite(traj), axis=1)
            z = pca.transform(traj[ok], 2)
            ax2.plot(z[:, 0], z[:, 1], lw=1, label=str(cond))
            ax2.plot(z[-1:, 0], z[-1:, 1], "o", ms=3, color=ax2.lines[-1].get_color())
        ax2.set_xlabel("PC1")
        ax2.set_ylabel("PC2")
        ax2.legend(fontsize=6)
    else:
        ax2.axis("off")
    return _save(fig, path)


def plot_robustness(path: PathLike, *, noise: Any = None, kicks: Any = None, ablation: Any = None) -> Path:
    """Accuracy vs input noise, decision survival vs kick size, and accuracy vs silenced units, with error bars:
    the binomial standard error of each accuracy or survival fraction (over the trials or kicks), and the standard
    deviation over the random draws of silenced units."""
    fig, (ax1, ax2, ax3) = _figure(3)
    fig.suptitle("Robustness of the decision (error bars: binomial SE over trials; SD over ablation draws)",
                 fontsize=10)
    if noise is not None:
        ax1.errorbar(noise.scales, noise.accuracy, yerr=noise.standard_error(), fmt="o-", capsize=3)
        ax1.set_xlabel("noise (x training amplitude)")
        ax1.set_ylabel("accuracy")
        ax1.set_title(f"input noise ({noise.n_trials or '?'} trials per point)", fontsize=9)
    if kicks is not None:
        ax2.errorbar(kicks.sizes, kicks.survival, yerr=kicks.standard_error(), fmt="o-", capsize=3)
        ax2.set_title(f"state kicks ({kicks.n_eligible} trials x {kicks.n_repeats})", fontsize=9)
        ax2.set_xscale("symlog", linthresh=0.1)
        ax2.set_xlabel("kick size" + (" (x ||h||)" if kicks.relative else ""))
        ax2.set_ylabel(f"decision survival ({kicks.stage})")
        ax2.set_ylim(-0.02, 1.02)
    if ablation is not None:
        m, sd = ablation.mean(), ablation.sd()
        for gi, g in enumerate(ablation.groups):
            ax3.errorbar(ablation.ks, m[gi], yerr=sd[gi], fmt="o-", ms=3, capsize=2,
                         label=f"{g} ({ablation.pool_sizes.get(g, '?')})")
        ax3.axhline(ablation.baseline, color="k", ls=":", lw=0.8)
        ax3.set_title(f"silenced units ({ablation.accuracy.shape[-1]} draws per point)", fontsize=9)
        ax3.set_xlabel("silenced units k")
        ax3.set_ylabel("accuracy")
        ax3.legend(fontsize=7)
    return _save(fig, path)


def plot_ensemble(summaries: Mapping[str, Mapping[str, Mapping[str, float]]], path: PathLike,
                  metrics: Sequence[str] = ("n_G+", "n_G-", "n_Ga", "n_Gs", "balance")) -> Path:
    """Mean and 95% CI of population metrics across ensembles (e.g. ``{"rl": summary, "sl": summary}`` from
    :func:`~analysis.populations.groups.ensemble_summary`)."""
    fig, (ax1, ax2) = _figure(2)
    names = list(summaries)
    width = 0.8 / max(len(names), 1)
    sizes = [m for m in metrics if m != "balance"]
    for i, name in enumerate(names):
        s = summaries[name]
        x = np.arange(len(sizes)) + i * width
        mean = [s.get(m, {}).get("mean", np.nan) for m in sizes]
        err = [s.get(m, {}).get("mean", np.nan) - s.get(m, {}).get("ci_low", np.nan) for m in sizes]
        ax1.bar(x, mean, width, yerr=err, label=name)
        if "balance" in s:
            b = s["balance"]
            ax2.errorbar([i], [b["mean"]], yerr=[[b["mean"] - b["ci_low"]], [b["ci_high"] - b["mean"]]], fmt="o")
    ax1.set_xticks(np.arange(len(sizes)) + width * (len(names) - 1) / 2, [m.replace("n_", "") for m in sizes])
    ax1.set_ylabel("units")
    ax1.legend(fontsize=8)
    ax2.set_xticks(range(len(names)), names)
    ax2.set_ylabel("balance index")
    ax2.set_ylim(0, 1.05)
    return _save(fig, path)


def plot_population_track(tracking: Any, path: PathLike) -> Path:
    """Population sizes and membership stability (Jaccard with the previous checkpoint) over training.

    Args:
        tracking: A :class:`~analysis.populations.tracking.PopulationTracking`.
        path: The image file.
    """
    fig, axes = _figure(2, width=4.5, height=3.2)
    prog = [r["progress"] for r in tracking.rows]
    for g in ("G+", "G-", "Ga", "Gs"):
        axes[0].plot(prog, [r["sizes"].get(g, 0) for r in tracking.rows], "o-", label=g)
        axes[1].plot(prog[1:], [(r.get("jaccard") or {}).get(g) or np.nan for r in tracking.rows[1:]], "o-", label=g)
    at = tracking.summary["crystallized_at"]
    for ax in axes:
        ax.set_xlabel("training progress")
        if at is not None:
            ax.axvline(at["progress"], color="k", ls=":", lw=1)
    axes[0].set_ylabel("units")
    axes[0].set_title("Population sizes")
    axes[1].set_ylabel("Jaccard with previous checkpoint")
    axes[1].set_title("Membership stability")
    handles, labels = axes[0].get_legend_handles_labels()  # one legend below both panels: inside, it covered labels
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=len(labels), frameon=False)
    return _save(fig, path)
