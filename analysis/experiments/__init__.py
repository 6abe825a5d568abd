"""Experiments: ensembles of RL and SL networks over seeds, initialisation widths and task levels, the runner
(local process pool or Ray) and the comparison report with a verdict on each of the paper's claims.

Example:
    >>> from analysis.experiments import preset, run_experiment
    >>> spec = preset("quick")
    >>> rows = run_experiment(spec, "runs/quick")            # doctest: +SKIP
"""

from .runner import build_index, load_records, run_experiment, run_experiments
from .spec import PRESETS, Cell, ExperimentSpec, preset, resolve_spec
from .study import STUDIES, Study, run_study, study

__all__ = ["PRESETS", "STUDIES", "Cell", "ExperimentSpec", "Study", "build_index", "load_records", "preset",
           "resolve_spec", "run_experiment", "run_experiments", "run_study", "study"]
