"""Publish an experiment (or a study) folder: the files a reader and ``dmd experiment report`` need, nothing else.

An experiment folder holds model zips, checkpoints and TensorBoard logs (hundreds of MB); its results fit in a few MB.
:func:`export_results` copies the spec, the index, the report (markdown, HTML, figures, verdicts) and each cell's
result files into a new folder, so that ``dmd experiment report DEST`` rebuilds the same verdicts from them alone::

    export_results("runs/paper", "results/paper", provenance={"commit": "abc1234"})

Files larger than ``max_file_bytes`` are refused rather than copied: results are meant to live in git.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

from agents.files import read_json, write_json

TOP_FILES = ("spec.json", "study.json", "index.json", "index.csv", "report.md", "report.html", "verdicts.json",
             "study_report.md", "study_findings.json")
"""Files copied from the top of an experiment (or study) folder."""

CELL_FILES = ("result.json", "error.json", "attractor_map.npz")
"""Files copied from each cell folder (``cells/<cell_id>/``)."""

MAX_FILE_BYTES = 2 * 1024 * 1024


def _copy(src: Path, dest: Path, max_bytes: int) -> int:
    size = src.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{src} is {size / 2**20:.1f} MiB, above the {max_bytes / 2**20:.1f} MiB limit of a "
                         "published file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return size


def export_results(src: str | Path, dest: str | Path, *, provenance: Optional[dict[str, Any]] = None,
                   max_file_bytes: int = MAX_FILE_BYTES) -> dict[str, Any]:
    """Copy the publishable files of an experiment or study folder ``src`` into ``dest`` (replacing it).

    Args:
        src: An experiment folder (``spec.json``) or a study folder (``study.json`` and one experiment per factor).
        dest: Where to write; an existing folder is replaced, so results never accumulate.
        provenance: Written to ``dest/provenance.json`` (e.g. the commit that produced the results, run times).
        max_file_bytes: Largest file copied.

    Returns:
        ``{"files": n, "bytes": total}``.

    Raises:
        FileNotFoundError: ``src`` is neither an experiment nor a study folder.
    """
    src, dest = Path(src), Path(dest)
    if not ((src / "spec.json").is_file() or (src / "study.json").is_file()):
        raise FileNotFoundError(f"{src} is not an experiment or study folder (no spec.json or study.json)")
    if dest.resolve() == src.resolve():
        raise ValueError("export into the folder itself")
    if dest.exists():
        shutil.rmtree(dest)
    folders = [src] if (src / "spec.json").is_file() else [src / f for f in read_json(src / "study.json")["factors"]]
    n = total = 0
    for name in TOP_FILES:
        if (src / name).is_file():
            total += _copy(src / name, dest / name, max_file_bytes)
            n += 1
    for folder in folders:
        rel = folder.relative_to(src)
        for name in TOP_FILES:
            if folder != src and (folder / name).is_file():
                total += _copy(folder / name, dest / rel / name, max_file_bytes)
                n += 1
        for fig in sorted((folder / "report_figures").glob("*.png")):
            total += _copy(fig, dest / rel / "report_figures" / fig.name, max_file_bytes)
            n += 1
        for cell in sorted((folder / "cells").glob("*")):
            for name in CELL_FILES:
                if (cell / name).is_file():
                    total += _copy(cell / name, dest / rel / "cells" / cell.name / name, max_file_bytes)
                    n += 1
    if provenance is not None:
        write_json(dest / "provenance.json", provenance)
    return {"files": n, "bytes": total}


__all__ = ["CELL_FILES", "MAX_FILE_BYTES", "TOP_FILES", "export_results"]
