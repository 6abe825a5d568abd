"""Functional connectivity: a graph of significant pairwise dependence between units, and its structure.

Following DRIADA's cell-cell significance (INTENSE applied to pairs of units): the dependence of every pair of units
is measured on the concatenated activity (GCMI in nats, or Spearman's rho), tested against **circular time shifts**
of one unit against the other (which keep both autocorrelations), and the pairs that survive **Holm's** correction
at level ``alpha`` become the edges of an undirected graph weighted by the dependence. With ``H = 250`` units there
are 31,125 pairs, so the p-values are parametric by default (a gamma distribution fitted to each pair's
shift null by maximum likelihood, as in INTENSE); empirical p-values cannot fall below ``1 / (1 + 2 n_shuffles)``.

Each shift ``s`` gives two null values per pair, ``dep(x_i(t), x_j(t - s))`` and ``dep(x_j(t), x_i(t - s))``, from one
matrix product ``Z^T roll(Z, s)``; the null is accumulated as sums (of values, logs, exceedances), so memory stays
``O(H^2)``.

Beside the graph: its statistics (density, degrees, clustering, modularity of Louvain communities, networkx), the
agreement of its communities with the functional populations (adjusted Rand index, normalised MI), and the
**structural** weights ``W_rec`` averaged within and between populations.

Example:
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((3000, 6)); z[:, 1] += z[:, 0]; z[:, 3] += z[:, 2]   # two dependent pairs
    >>> fc = functional_connectivity(z, n_shuffles=50)
    >>> sorted(map(tuple, np.argwhere(np.triu(fc.adjacency)).tolist()))
    [(0, 1), (2, 3)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from analysis.populations.information import Seed, _centre, _draw_shifts, _mi_cc, _rng, copnorm, gamma_sf, holm

__all__ = [
    "FunctionalConnectivity",
    "adjusted_rand_index",
    "community_alignment",
    "functional_connectivity",
    "graph_statistics",
    "normalized_mutual_information",
    "structural_blocks",
]

METHODS = ("gcmi", "spearman")


@dataclass
class FunctionalConnectivity:
    """Pairwise dependence between units and the significant graph.

    Attributes:
        weight: ``(H, H)`` symmetric dependence (GCMI in nats, or Spearman's rho), 0 on the diagonal.
        pvalue: ``(H, H)`` symmetric p-values (1 on the diagonal).
        adjacency: ``(H, H)`` bool, significant pairs after Holm's correction.
        method: ``"gcmi"`` or ``"spearman"``.
        n_samples: Samples used.
        settings: Test settings.

    Example:
        >>> fc = functional_connectivity(activity)       # doctest: +SKIP
        >>> fc.stats()["density"]                          # doctest: +SKIP
        0.12
    """

    weight: np.ndarray
    pvalue: np.ndarray
    adjacency: np.ndarray
    method: str
    n_samples: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return int(self.weight.shape[0])

    def graph(self) -> Any:
        """The significant graph as a ``networkx.Graph`` (all units are nodes; edge ``weight`` = ``|dependence|``)."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n_units))
        i, j = np.nonzero(np.triu(self.adjacency, 1))
        g.add_weighted_edges_from(zip(i.tolist(), j.tolist(), np.abs(self.weight[i, j]).tolist()))
        return g

    def stats(self, *, seed: int = 0, resolution: float = 1.0) -> dict[str, Any]:
        """Graph statistics (see :func:`graph_statistics`)."""
        return graph_statistics(self.graph(), seed=seed, resolution=resolution)

    def to_dict(self, include_matrices: bool = False) -> dict[str, Any]:
        """JSON-serialisable summary (matrices on request)."""
        out: dict[str, Any] = {
            "method": self.method,
            "n_units": self.n_units,
            "n_samples": self.n_samples,
            "n_edges": int(np.triu(self.adjacency, 1).sum()),
            "settings": dict(self.settings),
        }
        if include_matrices:
            out.update(weight=self.weight.tolist(), pvalue=self.pvalue.tolist(),
                       adjacency=self.adjacency.astype(int).tolist())
        return out


def _as_samples(activity: np.ndarray, mask: Optional[np.ndarray]) -> tuple[np.ndarray, int]:
    a = np.asarray(activity)
    if a.ndim == 3:
        m = np.ones(a.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        return a[m].astype(np.float64), int(a.shape[1])
    if a.ndim == 2:
        if mask is not None:
            a = a[np.asarray(mask, bool)]
        return a.astype(np.float64), 1
    raise ValueError(f"activity must be (n, H) or (N, T, H), got shape {a.shape}")


def functional_connectivity(
    activity: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    method: str = "gcmi",
    n_shuffles: int = 100,
    alpha: float = 0.01,
    pvalue: str = "gamma",
    min_shift: Optional[int] = None,
    max_samples: Optional[int] = None,
    ties: str = "random",
    seed: Seed = 0,
    progress: bool = False,
) -> FunctionalConnectivity:
    """Pairwise dependence of all units with a circular-shift test and Holm's correction.

    Args:
        activity: ``(n, H)`` samples, or ``(N, T, H)`` hidden states (with ``mask``; trials are concatenated).
        mask: ``(N, T)`` (or ``(n,)``) bool, the samples to use.
        method: ``"gcmi"`` (Gaussian-copula MI, nats) or ``"spearman"`` (rank correlation).
        n_shuffles: Circular shifts (each gives two null values per pair).
        alpha: Family-wise error rate over all ``H (H - 1) / 2`` pairs.
        pvalue: ``"gamma"`` (parametric) or ``"empirical"``.
        min_shift: Smallest shift (default: the padded trial length for ``(N, T, H)`` input, else 1).
        max_samples: Use only the first ``max_samples`` samples (cost is linear in samples).
        ties: Tie handling of the copula transform for ``"gcmi"`` (see :func:`analysis.populations.information.copnorm`).
        seed: Seed for the shifts and tie-breaking.
        progress: Progress bar over shifts.

    Returns:
        The :class:`FunctionalConnectivity`. Constant units (e.g. always silent, with ``ties="average"`` or
        ``"spearman"``) have no edges.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> z = rng.standard_normal((2000, 4)); z[:, 3] = z[:, 0] ** 3 + 0.3 * rng.standard_normal(2000)
        >>> fc = functional_connectivity(z, method="spearman", n_shuffles=40)
        >>> bool(fc.adjacency[0, 3]), bool(fc.adjacency[0, 1]), round(float(fc.weight[0, 3]), 2)
        (True, False, 0.88)
    """
    from tqdm.auto import tqdm

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x, trial_len = _as_samples(activity, mask)
    if max_samples is not None:
        x = x[: int(max_samples)]
    n, H = x.shape
    rng = _rng(seed)
    if method == "gcmi":
        z = copnorm(x, ties=ties, seed=rng)
    else:
        z = copnorm(x, ties="average")  # normal scores of average ranks: their correlation is monotone in rho
        from scipy import stats

        ranks = stats.rankdata(x, axis=0, method="average")
    z = _centre(z)
    norms = np.sqrt(np.sum(z * z, axis=0))
    live = norms > 1e-12 * np.sqrt(n)
    zn = np.where(live, z / np.where(live, norms, 1.0), 0.0)  # unit-norm columns: zn^T zn = correlations
    r0 = zn.T @ zn
    if method == "spearman":
        rk = _centre(ranks)
        rn = np.sqrt(np.sum(rk * rk, axis=0))
        rk = np.where(rn > 0, rk / np.where(rn > 0, rn, 1.0), 0.0)
        weight = rk.T @ rk
    else:
        weight = _mi_cc(r0)
    np.fill_diagonal(weight, 0.0)

    # The test statistic is the Gaussian MI of the normal scores (monotone in |r|) for both methods.
    obs = _mi_cc(r0)
    min_shift = (trial_len if trial_len > 1 else 1) if min_shift is None else int(min_shift)
    shifts = _draw_shifts(n, n_shuffles, min_shift, rng)
    z32 = zn.astype(np.float32)
    s1 = np.zeros((H, H))
    slog = np.zeros((H, H))
    ge = np.zeros((H, H))
    floor = 1e-15
    for s in tqdm(shifts, desc="connectivity", disable=not progress):
        s = int(s)
        # c[i, j] = sum_t z_i(t) z_j(t - s) (circular), from views instead of a rolled copy
        c = (z32[s:].T @ z32[: n - s] + z32[:s].T @ z32[n - s :]).astype(np.float64)
        for m in (c, c.T):  # both orientations are null samples of the pair
            v = _mi_cc(m)
            s1 += v
            slog += np.log(np.maximum(v, floor))
            ge += v >= obs
    n_null = 2 * len(shifts)
    iu = np.triu_indices(H, 1)
    # symmetrise the pair's null: both (i, j) and (j, i) entries hold samples of the same pair
    mean = (s1 + s1.T)[iu] / (2 * n_null)
    meanlog = (slog + slog.T)[iu] / (2 * n_null)
    n_ge = (ge + ge.T)[iu] / 2.0
    p = _pvalues(obs[iu], mean, meanlog, n_ge, n_null, pvalue)
    p[~(live[iu[0]] & live[iu[1]])] = 1.0
    reject, _ = holm(p, alpha)
    P = np.ones((H, H))
    P[iu] = p
    P.T[iu] = p
    A = np.zeros((H, H), bool)
    A[iu] = reject
    A |= A.T
    settings = dict(n_shuffles=int(len(shifts)), alpha=alpha, pvalue=pvalue, min_shift=min_shift, ties=ties)
    return FunctionalConnectivity(weight, P, A, method, n, settings)


def _pvalues(
    obs: np.ndarray, mean: np.ndarray, meanlog: np.ndarray, n_ge: np.ndarray, n_null: int, method: str
) -> np.ndarray:
    emp = (1.0 + n_ge) / (1.0 + n_null)
    if method == "empirical":
        return emp
    if method != "gamma":
        raise ValueError(f"pvalue must be 'gamma' or 'empirical', got {method!r}")
    return gamma_sf(obs, mean, meanlog, emp)  # maximum-likelihood gamma fit, as in selectivity


# ---------------------------------------------------------------------------------------------------- graphs
def graph_statistics(
    graph: Any,
    *,
    communities: Optional[Sequence[Sequence[int]]] = None,
    seed: int = 0,
    resolution: float = 1.0,
) -> dict[str, Any]:
    """Density, degrees, clustering and modularity of a graph.

    Args:
        graph: A ``networkx.Graph`` or an ``(H, H)`` adjacency/weight matrix (nonzero = edge).
        communities: A partition of the nodes; default: Louvain communities (``networkx``, weighted, seeded).
        seed: Seed of the Louvain algorithm.
        resolution: Louvain/modularity resolution.

    Returns:
        ``{n_nodes, n_edges, density, mean_degree, degree (per node), degree_histogram, average_clustering,
        transitivity, n_isolated, n_components, communities (label per node), n_communities, modularity}``;
        modularity is NaN for a graph without edges.

    Example:
        >>> A = np.zeros((6, 6)); A[:3, :3] = A[3:, 3:] = 1; np.fill_diagonal(A, 0)   # two triangles
        >>> s = graph_statistics(A)
        >>> s["n_edges"], s["n_communities"], round(s["modularity"], 3), s["average_clustering"]
        (6, 2, 0.5, 1.0)
    """
    import networkx as nx

    g = graph
    if not isinstance(graph, nx.Graph):
        a = np.asarray(graph, dtype=np.float64)
        a = np.where(np.eye(a.shape[0], dtype=bool), 0.0, a)
        g = nx.Graph()
        g.add_nodes_from(range(a.shape[0]))
        i, j = np.nonzero(np.triu(a, 1))
        g.add_weighted_edges_from(zip(i.tolist(), j.tolist(), np.abs(a[i, j]).tolist()))
    nodes = sorted(g.nodes())
    deg = np.array([g.degree(v) for v in nodes], dtype=np.int64)
    m = g.number_of_edges()
    if communities is None:
        communities = (
            nx.community.louvain_communities(g, weight="weight", resolution=resolution, seed=seed)
            if m
            else [{v} for v in nodes]
        )
    comms = sorted((sorted(c) for c in communities), key=lambda c: (-len(c), c[0]))
    label = np.empty(len(nodes), dtype=np.int64)
    pos = {v: k for k, v in enumerate(nodes)}
    for k, c in enumerate(comms):
        for v in c:
            label[pos[v]] = k
    modularity = (
        float(nx.community.modularity(g, [set(c) for c in comms], weight="weight", resolution=resolution))
        if m
        else float("nan")
    )
    return {
        "n_nodes": len(nodes),
        "n_edges": int(m),
        "density": float(nx.density(g)) if len(nodes) > 1 else 0.0,
        "mean_degree": float(deg.mean()) if len(deg) else 0.0,
        "degree": deg.tolist(),
        "degree_histogram": nx.degree_histogram(g),
        "average_clustering": float(nx.average_clustering(g)) if len(nodes) else 0.0,
        "transitivity": float(nx.transitivity(g)),
        "n_isolated": int(np.sum(deg == 0)),
        "n_components": int(nx.number_connected_components(g)),
        "communities": label.tolist(),
        "n_communities": len(comms),
        "modularity": modularity,
    }


def _contingency(a: Sequence[Any], b: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"two 1-D labelings of the same items are needed, got shapes {a.shape} and {b.shape}")
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    table = np.zeros((len(ua), len(ub)), dtype=np.int64)
    np.add.at(table, (ia.reshape(-1), ib.reshape(-1)), 1)
    return table, ua, ub


def adjusted_rand_index(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Adjusted Rand index of two partitions (Hubert & Arabie 1985): 1 identical, about 0 for chance.

    Matches ``sklearn.metrics.adjusted_rand_score`` (1.0 when both partitions are trivial in the same way).

    Example:
        >>> adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]), round(adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]), 4)
        (1.0, 0.5714)
    """
    table, _, _ = _contingency(a, b)
    n = table.sum()
    comb = lambda v: v * (v - 1) / 2.0  # noqa: E731
    index = comb(table).sum()
    sa, sb = comb(table.sum(1)).sum(), comb(table.sum(0)).sum()
    expected = sa * sb / comb(n) if n > 1 else 0.0
    max_index = (sa + sb) / 2.0
    if max_index == expected:
        return 1.0
    return float((index - expected) / (max_index - expected))


def normalized_mutual_information(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Normalised mutual information of two partitions, ``I(a; b) / mean(H(a), H(b))`` (arithmetic mean).

    Matches ``sklearn.metrics.normalized_mutual_info_score`` with its default normalisation.

    Example:
        >>> round(normalized_mutual_information([0, 0, 1, 1], [0, 0, 1, 2]), 4)
        0.8
    """
    table, _, _ = _contingency(a, b)
    n = table.sum()
    p = table / n
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float(np.sum(p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])))
    ha = -float(np.sum(pa[pa > 0] * np.log(pa[pa > 0])))
    hb = -float(np.sum(pb[pb > 0] * np.log(pb[pb > 0])))
    if ha == 0 and hb == 0:
        return 1.0
    denom = (ha + hb) / 2.0
    return float(mi / denom) if denom > 0 else 0.0


def community_alignment(
    communities: Sequence[int],
    populations: Union[Sequence[str], Any],
    *,
    include: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """How well graph communities match population labels: ARI, NMI and the contingency table.

    Args:
        communities: ``(H,)`` community label of each unit.
        populations: ``(H,)`` population label of each unit (or a :class:`~analysis.populations.groups.Populations`).
        include: Only the units whose population is in this list (e.g. ``["G+", "G-"]``); default all.

    Example:
        >>> r = community_alignment([0, 0, 1, 1, 2], ["G+", "G+", "G-", "G-", "Gs"], include=["G+", "G-"])
        >>> r["ari"], r["nmi"], r["n_units"]
        (1.0, 1.0, 4)
    """
    pops = np.asarray(getattr(populations, "labels", populations)).astype(str)
    comm = np.asarray(communities)
    sel = np.ones(len(pops), bool) if include is None else np.isin(pops, list(include))
    if not sel.any():
        return {"ari": float("nan"), "nmi": float("nan"), "n_units": 0, "contingency": {}}
    table, uc, up = _contingency(comm[sel], pops[sel])
    return {
        "ari": adjusted_rand_index(comm[sel], pops[sel]),
        "nmi": normalized_mutual_information(comm[sel], pops[sel]),
        "n_units": int(sel.sum()),
        "contingency": {
            str(c): {str(p): int(table[i, j]) for j, p in enumerate(up)} for i, c in enumerate(uc.tolist())
        },
    }


def structural_blocks(
    W_rec: np.ndarray,
    labels: Union[Sequence[str], Any],
    groups: Optional[Sequence[str]] = None,
    *,
    exclude_self: bool = True,
) -> dict[str, Any]:
    """Recurrent weights averaged within and between populations.

    ``W_rec[i, j]`` is the weight from unit ``j`` (presynaptic) to unit ``i`` (postsynaptic), as in
    ``h <- relu(W_rec h + ...)``; block ``[a][b]`` holds the weights from population ``b`` onto population ``a``.

    Args:
        W_rec: ``(H, H)`` recurrent weights.
        labels: ``(H,)`` population labels (or a :class:`~analysis.populations.groups.Populations`).
        groups: Populations to report, in order (default: the sorted labels present).
        exclude_self: Leave self-connections (the diagonal) out of the within-population blocks.

    Returns:
        ``{"groups", "mean", "std", "sum", "n", "positive_fraction"}``, each a ``(G, G)`` nested list
        ``[post][pre]`` (NaN for an empty block).

    Example:
        >>> W = np.array([[0.0, 1.0, -1.0], [1.0, 0.0, -1.0], [-2.0, -2.0, 0.0]])
        >>> blocks = structural_blocks(W, ["G+", "G+", "G-"])
        >>> blocks["groups"], blocks["mean"]
        (['G+', 'G-'], [[1.0, -1.0], [-2.0, nan]])
    """
    W = np.asarray(W_rec, dtype=np.float64)
    lab = np.asarray(getattr(labels, "labels", labels)).astype(str)
    groups = sorted(set(lab.tolist())) if groups is None else list(groups)
    G = len(groups)
    mean = np.full((G, G), np.nan)
    std = np.full((G, G), np.nan)
    total = np.zeros((G, G))
    count = np.zeros((G, G), dtype=np.int64)
    pos = np.full((G, G), np.nan)
    valid = ~np.eye(W.shape[0], dtype=bool) if exclude_self else np.ones_like(W, dtype=bool)
    for a, ga in enumerate(groups):
        post = lab == ga
        for b, gb in enumerate(groups):
            blk = W[np.ix_(post, lab == gb)][valid[np.ix_(post, lab == gb)]]
            count[a, b] = blk.size
            if blk.size:
                mean[a, b], std[a, b], total[a, b] = blk.mean(), blk.std(), blk.sum()
                pos[a, b] = float(np.mean(blk > 0))
    tolist = lambda m: [[float(v) for v in row] for row in m]  # noqa: E731
    return {
        "groups": groups,
        "mean": tolist(mean),
        "std": tolist(std),
        "sum": tolist(total),
        "n": count.tolist(),
        "positive_fraction": tolist(pos),
    }
