"""Figures (issue 12 item 5): nothing clipped, robust heatmap scale, legends off the labels, robustness error bars
and title, the file format of --format."""

from types import SimpleNamespace

import numpy as np
import pytest

from analysis.dynamics import figures as fd
from analysis.dynamics.maps import attractor_map
from analysis.network import Network
from analysis.populations import figures as fp
from dm_envs import make_config, sample_trials

FAST = dict(n_transient=200, n_record=300)


def texts_outside(fig, tol=1.0):
    """What the drawn figure shows outside its own area: axes (with their tick labels, axis labels and title, as
    drawn), legends and figure texts (the suptitle) whose extent leaves the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    parts = [(ax.get_title() or f"axes {i}", ax.get_tightbbox(renderer)) for i, ax in enumerate(fig.axes)]
    parts += [("legend", lg.get_window_extent(renderer)) for lg in fig.legends]
    parts += [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts if t.get_text().strip()]
    if fig._suptitle is not None and fig._suptitle.get_text():
        parts.append((fig._suptitle.get_text(), fig._suptitle.get_window_extent(renderer)))
    return [name for name, e in parts if e is not None and (
        e.x0 < box.x0 - tol or e.y0 < box.y0 - tol or e.x1 > box.x1 + tol or e.y1 > box.y1 + tol)]


def captured(monkeypatch):
    """Make the population figures hand over the figure they save."""
    figs = []
    save = fp._save

    def keep(fig, path):
        figs.append(fig)
        return save(fig, path)

    monkeypatch.setattr(fp, "_save", keep)
    return figs


@pytest.fixture(scope="module")
def level1_map():
    net = Network.random(8, 3, 3, delta=0.3, seed=0, config=make_config(1))
    return net, attractor_map(net, 5, n_init=3, n_observed=2, trials=12, progress=False, **FAST)


def test_the_level1_attractor_map_keeps_its_title_and_legend_inside(level1_map, tmp_path):
    net, amap = level1_map
    amap.info["learning_rule"] = "rl"
    fig = fd.plot_attractor_map(amap)
    assert texts_outside(fig) == []
    assert fig.get_suptitle().startswith("Dominant attractor kind (RL)")
    assert len(fig.legends[0].get_texts()) == 6


def test_every_dynamics_figure_fits(level1_map, tmp_path):
    net, amap = level1_map
    run = net.forward(sample_trials(net.config, 12, np.random.default_rng(0)))
    dec = attractor_map(net, stage="decision", rollout=run, n_init=3, progress=False, **FAST)
    figs = [fd.plot_lyapunov(amap), fd.plot_qp_by_coherence(amap), fd.plot_trajectories_pca(run, [amap, dec]),
            fd.plot_decision_basins(run, dec)]
    for fig in figs:
        assert texts_outside(fig) == [], fig.axes[0].get_title()


def test_the_track_legends_sit_below_the_axes(monkeypatch, tmp_path):
    rows = [dict(progress=p, accuracy=0.5 + 0.4 * p, qp_fraction=0.3 * p, qp_fraction_low_coherence=0.4 * p,
                 qp_fraction_high_coherence=0.1 * p, map_change_to_final=1 - p) for p in (0.0, 0.5, 1.0)]
    prow = [dict(progress=p, sizes={"G+": 3, "G-": 2, "Ga": 1, "Gs": 4}, jaccard={"G+": 0.9}) for p in (0.0, 1.0)]
    figs = captured(monkeypatch)
    fp.plot_population_track(SimpleNamespace(rows=prow, summary={"crystallized_at": None}), tmp_path / "t.png")
    for fig in (fd.plot_qp_track(rows), figs[0]):
        assert texts_outside(fig) == [] and len(fig.legends) == 1
        assert not any(ax.get_legend() for ax in fig.axes)
        legend = fig.legends[0].get_window_extent()
        for ax in fig.axes:  # below the plots: it covers no curve, annotation or axis label
            assert legend.y1 <= ax.get_window_extent().y0 + 1


def test_the_population_heatmap_scales_each_column(monkeypatch, tmp_path):
    from analysis.populations.groups import assign_populations

    activity = {"FP+": [1.0, 0.0, 0.8, 0.0], "FP-": [0.0, 0.5, 0.0, 0.6], "DIV+": [4e7, 1e7, 0.0, 2e7]}
    pops = assign_populations(activity)
    figs = captured(monkeypatch)
    fp.plot_populations(pops, tmp_path / "p.png")
    ax = figs[0].axes[1]
    img = ax.images[0]
    assert img.get_clim() == (0.0, 1.0) and np.nanmax(img.get_array()) <= 1.0
    cols = {lab.get_text().split("\n")[0]: j for j, lab in enumerate(ax.get_xticklabels())}
    arr = np.asarray(img.get_array())
    assert arr[:, cols["FP+"]].max() == 1.0 and arr[:, cols["FP-"]].max() == 1.0  # not blank beside 4e7
    assert "per column" in figs[0].axes[-1].get_ylabel()
    assert texts_outside(figs[0]) == []


def test_the_robustness_figure_has_error_bars_and_a_title(monkeypatch, tmp_path):
    from matplotlib.container import ErrorbarContainer

    from analysis.populations.robustness import AblationCurve, KickCurve, NoiseCurve, ablation_curve, noise_robustness

    net = Network.random(16, 7, 3, seed=0)
    noise = noise_robustness(net, make_config(3), scales=(1, 2), n_trials=40)
    assert noise.n_trials == 40
    np.testing.assert_allclose(noise.standard_error(), np.sqrt(noise.accuracy * (1 - noise.accuracy) / 40))
    kicks = KickCurve(np.array([0.0, 1.0]), np.array([1.0, 0.6]), np.array([0.9, 0.5]), 50, True, "delay", 2)
    np.testing.assert_allclose(kicks.standard_error(), [0.0, np.sqrt(0.24 / 100)])
    abl = ablation_curve(net, sample_trials(make_config(3), 20, 0), ks=(1, 3), n_repeats=3)
    assert isinstance(abl, AblationCurve) and abl.sd().shape == (1, 2) and isinstance(noise, NoiseCurve)
    figs = captured(monkeypatch)
    fp.plot_robustness(tmp_path / "r.png", noise=noise, kicks=kicks, ablation=abl)
    fig = figs[0]
    assert fig.get_suptitle().startswith("Robustness")
    for ax in fig.axes:
        assert any(isinstance(c, ErrorbarContainer) for c in ax.containers) and ax.get_title()
    assert texts_outside(fig) == []


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_populations_writes_its_figures_in_the_format_asked(fmt, magic, tmp_path):
    from analysis.cli import main

    Network.random(16, 7, 3, seed=0).save(tmp_path / "w.npz")
    out = tmp_path / "out"
    assert main(["analyze", "populations", str(tmp_path / "w.npz"), "--out", str(out), "-c", "3", "--trials", "30",
                 "--shuffles", "50", "--skip", "selectivity", "connectivity", "crystallization", "dimensionality",
                 "robustness_noise", "robustness_ablation", "--format", fmt, "--no-progress"]) == 0
    written = sorted(p.name for p in out.iterdir() if p.suffix not in (".json", ".csv"))
    assert written == [f"populations.{fmt}", f"robustness.{fmt}"]
    assert (out / f"populations.{fmt}").read_bytes()[:5].startswith(magic)
