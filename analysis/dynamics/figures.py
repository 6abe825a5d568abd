"""Figures of the attractor analysis (matplotlib, Agg, PNG).

* :func:`plot_attractor_map`: the dominant attractor kind over the coherence plane, one panel per context, with
  multistable points and points that host a quasi-periodic attractor marked (paper Fig. 2);
* :func:`plot_lyapunov`: the largest Lyapunov exponent of every attractor against ``|relevant coherence|``;
* :func:`plot_qp_by_coherence`: the quasi-periodic fraction per ``|relevant coherence|``;
* :func:`plot_trajectories_pca`: trial trajectories in the plane of their first two principal components, coloured
  by coherence or context, with the stimulus-stage attractor orbits and the decision attractors overlaid;
* :func:`plot_decision_basins`: end-of-stimulus states coloured by the decision basin they fall into (Fig. 3);
* :func:`plot_qp_track`: quasi-periodic fraction and accuracy against training progress (:func:`analysis.track`).

Every function builds a standalone :class:`matplotlib.figure.Figure` (no pyplot state, so nothing leaks and no
backend is switched), saves it when ``path`` is given (the format follows the suffix: ``.png``, ``.pdf``, ``.svg``;
``dmd analyze ... --format``), and returns it. Titles are wrapped and legends laid out to the figure's width, and
files are saved with a tight bounding box, so no text is clipped.

Example:
    >>> from analysis import attractor_map
    >>> amap = attractor_map("runs/rl_seed0/final_model.zip")            # doctest: +SKIP
    >>> plot_attractor_map(amap, "out/attractor_map.png")                # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from analysis.dynamics.attractors import KINDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from analysis.network import Rollout
    from analysis.dynamics.maps import AttractorMap
    from analysis.dynamics.tracking import Tracking

__all__ = [
    "KIND_COLORS",
    "plot_attractor_map",
    "plot_decision_basins",
    "plot_lyapunov",
    "plot_qp_by_coherence",
    "plot_qp_track",
    "plot_trajectories_pca",
]

PathLike = Union[str, "os.PathLike[str]"]

KIND_COLORS = {
    "fixed_point": "#4c72b0",
    "periodic": "#55a868",
    "quasi_periodic": "#c44e52",
    "chaotic": "#8172b2",
    "divergent": "#7f7f7f",
    "unresolved": "#bcbd22",
}
"""Colour of each attractor kind in every figure."""

CHOICE_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
"""Colour of each choice (choice 1 = ``+`` red, choice 2 = ``-`` blue, ...)."""


def _figure(w: float, h: float) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _save(fig: "Figure", path: Optional[PathLike], dpi: int = 120) -> "Figure":
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    return fig


def fit_text(text: str, fig: "Figure", fontsize: float, share: float = 1.0) -> str:
    """``text`` wrapped to lines that fit ``share`` of the figure's width at ``fontsize`` points.

    Example:
        >>> from matplotlib.figure import Figure
        >>> fit_text("a b c d e f g h i j k l", Figure(figsize=(1, 1)), 10).splitlines()
        ['a b c d e f', 'g h i j k l']
    """
    import textwrap

    chars = max(10, int(share * fig.get_figwidth() * 72 / (0.6 * fontsize)))  # average glyph ~0.6 em wide
    return "\n".join(textwrap.wrap(text, chars))


def _kind_legend(fig: "Figure", kinds: Sequence[str] = KINDS) -> None:
    from matplotlib.patches import Patch

    per_row = max(1, min(len(kinds), int(fig.get_figwidth() / 1.15)))  # about 1.1 in per entry at 8 pt
    fig.legend([Patch(color=KIND_COLORS[k]) for k in kinds], [k.replace("_", " ") for k in kinds],
               loc="outside lower center", ncol=per_row, fontsize=8, frameon=False)


# ---------------------------------------------------------------------------------------------- the map
def plot_attractor_map(amap: "AttractorMap", path: Optional[PathLike] = None) -> "Figure":
    """The dominant attractor kind over the stimulus grid, one panel per context.

    Cell colour: the dominant kind (the kind whose attractors collect the most initial states). Markers: a black
    circle, sized by the count, on multistable points (two or more distinct attractors); a small red ``x`` where a
    quasi-periodic attractor exists without being dominant. Two streams: ``c1`` on x, ``c2`` on y; one stream: a strip
    per context; more streams: the plane of streams 1-2 with the others at their middle grid value.

    Args:
        amap: A stimulus-stage :class:`~analysis.dynamics.maps.AttractorMap`.
        path: PNG file to write (optional).

    Returns:
        The figure.

    Raises:
        ValueError: not a stimulus-stage map.

    Example:
        >>> plot_attractor_map(amap, "out/attractor_map.png")          # doctest: +SKIP
    """
    from matplotlib.colors import ListedColormap

    if amap.grid is None:
        raise ValueError("plot_attractor_map needs a stimulus-stage map")
    g = amap.grid
    n_ctx = len(amap.contexts)
    S = g.n_streams
    mid = g.n_axis // 2
    sl = (slice(None), slice(None)) if S >= 2 else (slice(None),)
    index = lambda c: (c,) + sl + (mid,) * max(0, S - 2)  # noqa: E731
    fig = _figure(max(3.8 * n_ctx + 0.4, 5.0), 3.9 if S >= 2 else 2.8)
    axes = np.atleast_1d(fig.subplots(1, n_ctx, squeeze=False)[0])
    cmap = ListedColormap([KIND_COLORS[k] for k in KINDS])
    ticks = np.arange(g.n_axis)
    labels = g.labels()
    step = max(1, g.n_axis // 7)
    for ci, ax in enumerate(axes):
        dom = amap.dominant[index(ci)]
        n_att = amap.n_attractors[index(ci)]
        qp_hidden = amap.qp_present[index(ci)] & (dom != KINDS.index("quasi_periodic"))
        img = dom.T if S >= 2 else dom[None]
        ax.imshow(np.ma.masked_less(img, 0), origin="lower", cmap=cmap, vmin=-0.5, vmax=len(KINDS) - 0.5,
                  aspect="auto", interpolation="nearest")
        if S >= 2:
            xs, ys = np.nonzero(n_att > 1)
            ax.scatter(xs, ys, s=12 * n_att[xs, ys], facecolors="none", edgecolors="k", linewidths=0.8)
            qx, qy = np.nonzero(qp_hidden)
            ax.scatter(qx, qy, marker="x", s=14, c=KIND_COLORS["quasi_periodic"], linewidths=0.8)
            ax.set_ylabel("coherence stream 2")
            ax.set_yticks(ticks[::step], [labels[i] for i in ticks[::step]], fontsize=7)
        else:
            xs = np.flatnonzero(n_att > 1)
            ax.scatter(xs, np.zeros_like(xs), s=12 * n_att[xs], facecolors="none", edgecolors="k", linewidths=0.8)
            qx = np.flatnonzero(qp_hidden)
            ax.scatter(qx, np.zeros_like(qx), marker="x", s=14, c=KIND_COLORS["quasi_periodic"])
            ax.set_yticks([])
        ax.set_xticks(ticks[::step], [labels[i] for i in ticks[::step]], fontsize=7)
        ax.set_xlabel("coherence stream 1")
        ctx = int(amap.contexts[ci])
        title = f"context {ctx + 1}" if n_ctx > 1 else "stimulus stage"
        qp = amap.qp_present[ci].mean()
        ax.set_title(f"{title}: QP at {qp:.0%} of points", fontsize=9)
    rule = amap.info.get("learning_rule")
    fig.suptitle(fit_text(f"Dominant attractor kind{f' ({str(rule).upper()})' if rule else ''}; circles: "
                          "multistable (size = count), x: QP present", fig, 9), fontsize=9)
    _kind_legend(fig)
    return _save(fig, path)


def _relevant_of_rows(amap: "AttractorMap") -> np.ndarray:
    pv = amap.point_values()
    if "relevant" not in pv:
        raise ValueError("this figure needs a stimulus-stage map")
    return pv["relevant"][amap.table["point"]]


def plot_lyapunov(amap: "AttractorMap", path: Optional[PathLike] = None, seed: int = 0) -> "Figure":
    """The largest Lyapunov exponent of every attractor against ``|relevant coherence|``, coloured by kind.

    The y axis is symmetric-log (linear within ``lyap_eps``, the quasi-periodic band, shaded); attractors with
    ``lambda_1 = -inf`` (nilpotent Jacobian) and divergent ones (no exponent) are counted in the title.

    Args:
        amap: A stimulus-stage map.
        path: PNG file to write (optional).
        seed: Seed of the horizontal jitter.

    Example:
        >>> plot_lyapunov(amap, "out/lyapunov.png")                     # doctest: +SKIP
    """
    import inspect

    from analysis.dynamics.attractors import find_attractors

    rel = _relevant_of_rows(amap)
    lam = amap.table["lambda1"]
    kind = amap.table["kind"]
    eps = float((amap.settings.get("find_attractors") or {}).get(
        "lyap_eps", inspect.signature(find_attractors).parameters["lyap_eps"].default))
    levels = np.unique(np.round(rel, 9))
    width = 0.3 * (np.min(np.diff(levels)) if len(levels) > 1 else 0.1)
    jitter = np.random.default_rng(seed).uniform(-width, width, len(rel))
    fig = _figure(5.5, 3.8)
    ax = fig.subplots()
    ax.axhspan(-eps, eps, color="#f2c4c4", alpha=0.5, lw=0, label=f"|lambda_1| <= {eps:g}")
    ax.axhline(0, color="k", lw=0.5)
    for k, name in enumerate(KINDS):
        sel = (kind == k) & np.isfinite(lam)
        if sel.any():
            ax.scatter(rel[sel] + jitter[sel], lam[sel], s=9, c=KIND_COLORS[name], label=name.replace("_", " "),
                       alpha=0.8, lw=0)
    ax.set_yscale("symlog", linthresh=max(eps, 1e-6))
    ax.set_xlabel("|relevant coherence|")
    ax.set_ylabel("largest Lyapunov exponent (ln / step)")
    n_ninf = int(np.isneginf(lam).sum())
    n_div = int((kind == KINDS.index("divergent")).sum())
    ax.set_title(fit_text(f"Largest Lyapunov exponent of each attractor ({n_ninf} at -inf, {n_div} divergent not "
                          "shown)", fig, 8, 0.8), fontsize=8)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_qp_by_coherence(amap: "AttractorMap", path: Optional[PathLike] = None) -> "Figure":
    """Fraction of quasi-periodic attractors per ``|relevant coherence|`` (and per ``|coherence|`` of each stream).

    Example:
        >>> plot_qp_by_coherence(amap, "out/qp_by_coherence.png")       # doctest: +SKIP
    """
    s = amap.summary()
    if "qp_fraction_by_coherence" not in s:
        raise ValueError("this figure needs a stimulus-stage map")
    fig = _figure(5.0, 3.4)
    ax = fig.subplots()
    cur = s["qp_fraction_by_coherence"]
    ax.plot([float(k) for k in cur], list(cur.values()), "o-", color=KIND_COLORS["quasi_periodic"],
            label="relevant stream")
    for i, (name, per) in enumerate(s["qp_fraction_by_stream_coherence"].items()):
        ax.plot([float(k) for k in per], list(per.values()), ".--", color="0.3", alpha=0.4 + 0.3 * i, lw=0.8,
                label=name)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("|coherence|")
    ax.set_ylabel("fraction quasi-periodic")
    ax.set_title(fit_text(f"QP fraction {s['qp_fraction']:.3f} (low half {s['qp_fraction_low_coherence']:.3f}, "
                          f"high half {s['qp_fraction_high_coherence']:.3f})", fig, 8, 0.8), fontsize=8)
    ax.legend(fontsize=7)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- state space
class _PCA:
    """Top-2 principal axes of a rollout's valid hidden states (at most ``max_rows`` rows are used to fit)."""

    def __init__(self, run: "Rollout", max_rows: int = 20000, seed: int = 0) -> None:
        H = run.hidden.shape[-1]
        states = run.hidden.reshape(-1, H)[run.trials.mask.reshape(-1)].astype(np.float64)
        if len(states) > max_rows:
            states = states[np.random.default_rng(seed).choice(len(states), max_rows, replace=False)]
        self.mu = states.mean(axis=0)
        _, sv, Vt = np.linalg.svd(states - self.mu, full_matrices=False)
        self.P = Vt[:2].T
        var = sv**2
        self.explained = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mu) @ self.P

    def label(self, ax: Any) -> None:
        ax.set_xlabel(f"PC1 ({self.explained[0]:.0%} var.)")
        ax.set_ylabel(f"PC2 ({self.explained[1]:.0%} var.)")


def _trial_colors(run: "Rollout", color_by: str) -> tuple[np.ndarray, str, Any, Any]:
    import matplotlib

    tr = run.trials
    if color_by == "context":
        vals = np.asarray(tr.context, dtype=float)
        return vals, "context", matplotlib.colormaps["tab10"], (0, 9)
    if color_by != "coherence":
        raise ValueError(f"color_by must be 'coherence' or 'context', got {color_by!r}")
    if run.config.n_choices == 2:
        vals = tr.signed_coherence[np.arange(len(tr)), tr.context]
        c = float(np.abs(vals).max()) or 1.0
        return vals, "signed relevant coherence", matplotlib.colormaps["coolwarm"], (-c, c)
    vals = np.asarray(tr.correct_choice, dtype=float)
    return vals, "correct choice", matplotlib.colormaps["tab10"], (0, 9)


def plot_trajectories_pca(
    run: "Rollout",
    maps: Sequence["AttractorMap"] = (),
    path: Optional[PathLike] = None,
    color_by: str = "coherence",
    max_trials: int = 60,
    max_orbits: int = 40,
    seed: int = 0,
) -> "Figure":
    """Trial trajectories in PCA space with the attractors of the given maps overlaid.

    PCA is fitted on every valid hidden state of the rollout. Trajectories run from the fixation stage (small dot at
    stimulus onset, triangle at stimulus end) and are coloured by the signed relevant coherence (``color_by=
    "coherence"``; the correct choice for tasks with more than two choices) or the context. Stimulus-stage maps add
    the orbits of their non-stationary attractors (points coloured by kind; up to ``max_orbits``, evenly over the
    grid; mean states when the map was loaded from disk); delay/decision maps add their attractors as stars labelled
    ``FP+``/``FP-`` etc. (coloured by choice). Divergent attractors are not drawn.

    Args:
        run: A :class:`~analysis.network.Rollout` of the network.
        maps: :class:`~analysis.dynamics.maps.AttractorMap` objects of the same network.
        path: PNG file to write (optional).
        color_by: ``"coherence"`` or ``"context"``.
        max_trials: Trajectories drawn.
        max_orbits: Stimulus-stage attractor orbits drawn per map.
        seed: Seed of the PCA subsample and the trial choice.

    Example:
        >>> plot_trajectories_pca(run, [stim_map, decision_map], "out/trajectories_pca.png")   # doctest: +SKIP
    """
    import matplotlib.colors as mcolors

    pca = _PCA(run, seed=seed)
    vals, what, cmap, (lo, hi) = _trial_colors(run, color_by)
    norm = mcolors.Normalize(lo, hi)
    tr = run.trials
    fig = _figure(6.2, 5.0)
    ax = fig.subplots()
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(tr), min(max_trials, len(tr)), replace=False))
    on, end = tr.onset[:, 1], tr.onset[:, 1] + tr.duration[:, 1] - 1
    for n in pick:
        z = pca(run.hidden[n, : int(tr.length[n])])
        col = cmap(norm(vals[n]))
        ax.plot(z[:, 0], z[:, 1], color=col, lw=0.7, alpha=0.7)
        ax.plot(*z[min(on[n], len(z) - 1)], ".", color=col, ms=3)
        ax.plot(*z[min(end[n], len(z) - 1)], "^", color=col, ms=4)
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=what, shrink=0.8)
    drawn_kinds: set[str] = set()
    for m in maps:
        if m.grid is not None:
            _draw_stimulus_orbits(ax, pca, m, max_orbits, drawn_kinds)
        else:
            _draw_decision_attractors(ax, pca, m)
    if drawn_kinds:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], ls="", marker=".", color=KIND_COLORS[k]) for k in sorted(drawn_kinds)]
        ax.legend(handles, [f"stimulus {k.replace('_', ' ')}" for k in sorted(drawn_kinds)], fontsize=7,
                  loc="lower right")
    pca.label(ax)
    ax.set_title(fit_text("Trial trajectories (dot: stimulus onset, triangle: stimulus end) and attractors", fig, 8,
                          0.75), fontsize=8)
    return _save(fig, path)


def _draw_stimulus_orbits(ax: Any, pca: _PCA, m: "AttractorMap", max_orbits: int, drawn: set[str]) -> None:
    nonstat = np.flatnonzero(~np.isin(m.table["kind"], [KINDS.index("fixed_point"), KINDS.index("divergent")]))
    fps = np.flatnonzero(m.table["kind"] == KINDS.index("fixed_point"))
    if len(fps):
        z = pca(m.states[fps])
        ax.scatter(z[:, 0], z[:, 1], s=6, marker="o", c=KIND_COLORS["fixed_point"], alpha=0.5, lw=0)
        drawn.add("fixed_point")
    pick = nonstat[np.linspace(0, len(nonstat) - 1, min(max_orbits, len(nonstat))).astype(int)] if len(nonstat) else []
    flat = [a for point in m.attractors for a in point] if m.attractors is not None else None
    for r in pick:
        name = KINDS[int(m.table["kind"][r])]
        pts = flat[r].orbit if flat is not None and len(flat) == len(m.table["kind"]) else m.states[r][None]
        z = pca(pts)
        ax.plot(z[:, 0], z[:, 1], ".", ms=1.5, color=KIND_COLORS[name])
        drawn.add(name)


def _draw_decision_attractors(ax: Any, pca: _PCA, m: "AttractorMap") -> None:
    labels = m.labels()
    for r in range(len(labels)):
        if m.table["kind"][r] == KINDS.index("divergent") or not np.isfinite(m.states[r]).all():
            continue
        z = pca(m.states[r][None])[0]
        c = int(m.table["choice"][r])
        col = CHOICE_COLORS[c % len(CHOICE_COLORS)] if c >= 0 else "k"
        ax.plot(z[0], z[1], "*", ms=13, color=col, mec="k", mew=0.6)
        ax.annotate(f"{labels[r]} ({m.stage})", z, fontsize=7, xytext=(4, 4), textcoords="offset points")


def plot_decision_basins(run: "Rollout", dmap: "AttractorMap", path: Optional[PathLike] = None,
                         seed: int = 0) -> "Figure":
    """End-of-stimulus states of the trials in PCA space, coloured by the decision basin they fall into.

    Left: each state coloured by its basin's label (``FP+``, ``FP-``, ``DIV+``, ...); edge black where the basin does
    not read out the correct choice. Right: the fraction of trials whose basin matches the correct choice, and the
    fraction whose basin matches the network's own choice, against the signed relevant coherence (two-choice tasks)
    or ``|relevant coherence|``.

    Args:
        run: The rollout whose trials the map's basins were computed on (same trials, same order).
        dmap: A delay- or decision-stage :class:`~analysis.dynamics.maps.AttractorMap` with basins.
        path: PNG file to write (optional).
        seed: Seed of the PCA subsample.

    Example:
        >>> plot_decision_basins(run, decision_map, "out/decision_basins.png")    # doctest: +SKIP
    """
    b = dmap.basins
    if b is None:
        raise ValueError("plot_decision_basins needs a delay/decision map with basins")
    if len(b) != len(run.trials):
        raise ValueError(f"the map's basins are for {len(b)} trials, the rollout has {len(run.trials)}")
    pca = _PCA(run, seed=seed)
    z = pca(run.stage_states("stimulus", "last"))
    labels = dmap.labels()
    trial_label = np.array([labels[a] if a >= 0 else "none" for a in b.attractor], dtype=object)
    fig = _figure(10.0, 4.2)
    ax, ax2 = fig.subplots(1, 2)
    for lab in sorted(set(trial_label)):
        sel = trial_label == lab
        rows = b.attractor[sel]
        c = int(dmap.table["choice"][rows[0]]) if rows[0] >= 0 else -1
        col = CHOICE_COLORS[c % len(CHOICE_COLORS)] if c >= 0 else "0.6"
        wrong = sel & ~b.match
        ax.scatter(z[sel & b.match, 0], z[sel & b.match, 1], s=14, c=col, lw=0, label=f"{lab} ({sel.sum()})")
        ax.scatter(z[wrong, 0], z[wrong, 1], s=14, c=col, edgecolors="k", linewidths=0.6)
    _draw_decision_attractors(ax, pca, dmap)
    pca.label(ax)
    ax.legend(fontsize=7, title="basin (trials)", title_fontsize=7)
    ax.set_title(fit_text(f"End-of-stimulus states by {dmap.stage}-stage basin (black edge: not the correct "
                          "choice)", fig, 8, 0.45), fontsize=8)
    x = b.signed[np.arange(len(b)), b.context] if dmap.n_choices == 2 else b.relevant
    xr = np.round(x, 9)
    xs = np.unique(xr)
    ax2.plot(xs, [b.match[xr == v].mean() for v in xs], "o-", color="k", label="basin = correct choice")
    chose = b.own_choice >= 0
    own = [(b.choice[(xr == v) & chose] == b.own_choice[(xr == v) & chose]).mean()
           if ((xr == v) & chose).any() else np.nan for v in xs]
    ax2.plot(xs, own, "s--", color="0.5", label="basin = network's choice")
    ax2.set_ylim(-0.03, 1.03)
    ax2.set_xlabel("signed relevant coherence" if dmap.n_choices == 2 else "|relevant coherence|")
    ax2.set_ylabel("fraction of trials")
    ax2.set_title(fit_text(f"basin match {b.basin_match:.3f}, with own choice {b.basin_match_own_choice:.3f}", fig,
                           8, 0.45), fontsize=8)
    ax2.legend(fontsize=7)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- training
def plot_qp_track(tracking: Union["Tracking", Sequence[dict[str, Any]]], path: Optional[PathLike] = None) -> "Figure":
    """Quasi-periodic fraction (overall, low- and high-coherence halves), the fraction of grid points whose dominant
    kind still differs from the final map, and accuracy, against training progress.

    Args:
        tracking: :func:`analysis.track`'s result (or just its rows).
        path: PNG file to write (optional).

    Example:
        >>> plot_qp_track(track("runs/rl_seed0"), "out/qp_fraction_track.png")     # doctest: +SKIP
    """
    from analysis.dynamics.tracking import Tracking

    rows = list(tracking.rows if isinstance(tracking, Tracking) else tracking)
    summary = tracking.summary if isinstance(tracking, Tracking) else {}
    x = np.array([r["progress"] for r in rows], dtype=float)
    get = lambda k: np.array([np.nan if r.get(k) is None else r[k] for r in rows], dtype=float)  # noqa: E731
    fig = _figure(6.0, 3.8)
    ax = fig.subplots()
    ax.plot(x, get("qp_fraction"), "o-", color=KIND_COLORS["quasi_periodic"], label="QP fraction")
    if any(r.get("qp_fraction_low_coherence") is not None for r in rows):
        ax.plot(x, get("qp_fraction_low_coherence"), "v--", color=KIND_COLORS["quasi_periodic"], alpha=0.6,
                lw=0.8, label="QP, low-coherence half")
        ax.plot(x, get("qp_fraction_high_coherence"), "^:", color=KIND_COLORS["quasi_periodic"], alpha=0.6,
                lw=0.8, label="QP, high-coherence half")
    if any(r.get("map_change_to_final") is not None for r in rows):
        ax.plot(x, get("map_change_to_final"), ".:", color="0.45", lw=0.8,
                label="dominant kind differs from final (points)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training progress (env steps / steps at the last checkpoint)")
    ax.set_ylabel("fraction quasi-periodic", color=KIND_COLORS["quasi_periodic"])
    ax2 = ax.twinx()
    ax2.plot(x, get("accuracy"), "s-", color="k", label="accuracy")
    ax2.set_ylim(-0.03, 1.03)
    ax2.set_ylabel("accuracy")
    stable = (summary.get("map_stable_from") or {}).get("progress")
    if stable is not None:
        ax.axvline(stable, color="0.5", lw=0.8, ls="--")
        ax.annotate("dominant-kind map stable", (stable, 0.98), fontsize=7, rotation=90, va="top", ha="right")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    # below the axes: inside, it covered the curves, the annotation or an axis label
    fig.legend(h1 + h2, l1 + l2, fontsize=7, loc="outside lower center", ncol=3, frameon=False)
    ax.set_title("Attractor landscape over training", fontsize=9)
    return _save(fig, path)
