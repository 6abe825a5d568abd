"""``dmd experiment run|report|status``: ensembles of RL and SL networks and the comparison report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from agents.cli import COUNT, POSITIVE, POSITIVE_INT, TARGET, existing_folder, output_folder


def add_commands(sub: Any) -> None:
    """Register ``dmd experiment`` and its subcommands."""
    p = sub.add_parser("experiment", help="train and analyse ensembles of RL and SL networks; compare them")
    esub = p.add_subparsers(dest="experiment_command", metavar="ACTION", required=True)

    run = esub.add_parser("run", help="train and analyse every cell of an experiment (resumable)")
    run.add_argument("spec", nargs="?", default=None,
                     help="a TOML/JSON spec or study file, or a preset name (quick, paper, full, sensitivity); "
                          "omit to build one from flags")
    run.add_argument("--preset", choices=["quick", "paper", "full", "sensitivity"], default=None,
                     help="a built-in experiment, or the built-in factor study 'sensitivity'")
    run.add_argument("--out", required=True, type=output_folder, help="the experiment folder (reuse it to resume)")
    run.add_argument("--rules", nargs="+", choices=["rl", "sl"], default=None)
    run.add_argument("--deltas", nargs="+", type=POSITIVE, default=None)
    run.add_argument("--seeds", nargs="+", type=COUNT, default=None)
    run.add_argument("--levels", nargs="+", type=int, choices=(1, 2, 3, 4), default=None)
    run.add_argument("--hidden-size", type=POSITIVE_INT, default=None)
    run.add_argument("--target", type=TARGET, default=None, help="accuracy criterion (default 0.95)")
    run.add_argument("--backend", choices=["local", "serial", "ray"], default="local")
    run.add_argument("--workers", type=POSITIVE_INT, default=None, help="local pool size (default: one per core)")
    run.add_argument("--address", default=None, help="Ray cluster address ('auto' for a running cluster)")
    run.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    run.add_argument("--yes", action="store_true", help="do not ask before a long (full-scale) run")
    run.set_defaults(func=_run)

    rep = esub.add_parser("report", help="write the HTML/markdown comparison report of an experiment (or study) "
                                         "folder")
    rep.add_argument("out", type=existing_folder, help="the experiment folder, or a study folder (one experiment per factor)")
    rep.set_defaults(func=_report)

    ex = esub.add_parser("export", help="copy what a reader needs (no model zips, no logs) into a results folder")
    ex.add_argument("src", type=existing_folder, help="an experiment or study folder")
    ex.add_argument("dest", help="the results folder (replaced)")
    ex.add_argument("--provenance", default=None, help="a JSON file of provenance to store beside the results "
                                                        "(e.g. the commit that produced them)")
    ex.set_defaults(func=_export)

    st = esub.add_parser("status", help="which cells of an experiment are done, failed or pending")
    st.add_argument("out", type=existing_folder, help="the experiment folder")
    st.set_defaults(func=_status)


def _experiments(args: argparse.Namespace) -> tuple[Any, dict[Optional[str], Any]]:
    """The study named or given by file (None for a single experiment) and its experiments by factor."""
    from analysis.experiments.spec import PRESETS, SpecError, read_spec_file, resolve_spec
    from analysis.experiments.study import STUDIES, Study, study

    source = args.preset or args.spec
    if source in STUDIES:
        st = study(source)
        return st, st.specs()
    if source is not None and source not in PRESETS:
        try:
            data = read_spec_file(source)
        except FileNotFoundError as err:
            names = ", ".join([*PRESETS, *STUDIES])
            raise FileNotFoundError(f"{err}, and {source!r} is not a preset ({names})") from None
        if "factors" in data:
            _check_study(data, source)
            try:
                st = Study.from_dict(data)
            except SpecError as err:
                raise SpecError(f"{source}: {err}") from None
            return st, st.specs()
    spec = resolve_spec(source, rules=args.rules, deltas=args.deltas, seeds=args.seeds, levels=args.levels,
                        hidden_size=args.hidden_size, target_accuracy=args.target)
    return None, {None: spec}


def _check_study(data: dict, source: str) -> None:
    """The tables of a study file have the right shape (their contents are checked when the study is built)."""
    from analysis.experiments.spec import SpecError

    factors, base = data.get("factors"), data.get("base", {})
    if not isinstance(base, dict):
        raise SpecError(f"{source}: base must be a table of experiment settings, got {base!r}")
    if not (isinstance(factors, dict) and all(isinstance(v, dict) for v in factors.values())):
        raise SpecError(f"{source}: factors must be a table of tables ([factors.<name>]), got {factors!r}")


def _confirm(estimate: dict, yes: bool) -> bool:
    if estimate["hours"] <= 2 or yes:
        return True
    return input("This is a long run. Start it? [y/N] ").strip().lower() in ("y", "yes")


def _run(args: argparse.Namespace) -> int:
    from analysis.experiments.cost import estimate_cost, format_cost
    from analysis.experiments.runner import run_experiment

    st, specs = _experiments(args)
    if args.backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ValueError("--backend ray needs ray: pip install 'decision-dynamics[ray]'")
    total = {"cells": 0, "cpu_hours": 0.0, "hours": 0.0}
    for spec in specs.values():
        estimate = estimate_cost(spec, workers=args.workers)
        print(format_cost(spec, estimate))
        for k in total:
            total[k] += estimate[k]
    if st is not None:
        print(f"study {st.name!r}: {total['cells']} networks in all, about {total['hours']:.1f} h")
    if not _confirm(total, args.yes):
        print("not started")
        return 1
    if st is not None:
        from analysis.experiments.study import run_study

        by_factor = run_study(st, args.out, backend=args.backend, workers=args.workers, address=args.address)
        rows = [r for rs in by_factor.values() for r in rs]
    else:
        rows = run_experiment(specs[None], args.out, backend=args.backend, workers=args.workers,
                              address=args.address)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print("cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if not args.no_report:
        _write_reports(Path(args.out))
    return 0 if counts.get("failed", 0) == 0 else 1


def _write_reports(out) -> None:
    """The report of an experiment folder, or of every factor of a study folder plus the study's own."""
    from analysis.experiments.report import write_report
    from analysis.experiments.study import Study

    if (out / "study.json").is_file():
        from analysis.experiments.study_report import write_study_report

        for factor in Study.load(out / "study.json").factors:
            if (out / factor / "spec.json").is_file():
                print(f"report: {write_report(out / factor)['html']}")
        print(f"study report: {write_study_report(out)['markdown']}")
    else:
        _folder_spec(out)
        paths = write_report(out)
        print(f"report: {paths['html']} (markdown: {paths['markdown']})")


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    _write_reports(Path(args.out))
    return 0


def _export(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from analysis.experiments.export import export_results

    provenance = json.loads(Path(args.provenance).read_text()) if args.provenance else None
    done = export_results(args.src, args.dest, provenance=provenance)
    print(f"exported {done['files']} files ({done['bytes'] / 2**20:.2f} MiB) to {args.dest}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from analysis.experiments.runner import load_records
    from analysis.experiments.spec import Cell

    spec = _folder_spec(args.out)
    for r in load_records(spec, args.out):
        extra = r.get("error", "") if r["status"] == "failed" else ""
        print(f"{Cell(**r['cell']).cell_id:28s} {r['status']:12s} {extra}")
    return 0


def _folder_spec(out: str):
    """The experiment of a folder, from its ``spec.json``."""
    from analysis.experiments.spec import ExperimentSpec

    path = Path(out) / "spec.json"
    if not path.is_file():
        raise FileNotFoundError(f"{out} is not an experiment folder (no spec.json)")
    return ExperimentSpec.load(path)
