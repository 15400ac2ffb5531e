"""Evaluation-aware checkpoint retention: thin a run's checkpoints only once they have been scored.

The rule: a checkpoint file is deleted only when (1) a current evaluation row with status "ok" describes exactly
this file (same path, size and modification time: a file rewritten since is unevaluated), (2) it is not the
variant's best checkpoint, (3) it is not the run's latest checkpoint (training resumes from it) and (4) its epoch
is not a multiple of ``keep_every_epochs``. ``keep_every_epochs`` 0 deletes nothing. Unevaluated, refused and
unreadable checkpoints are never deleted. The run's checkpoints.parquet is rewritten to list what remains.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from lpd_pipeline.training.checkpoints import list_checkpoints, read_checkpoint_table, write_checkpoint_table


def deletable_checkpoints(run_dir: str | os.PathLike, rows: pd.DataFrame, best_checkpoint: str | None,
                          keep_every_epochs: int) -> list[Path]:
    """The checkpoint files of ``run_dir`` the rule allows to delete."""
    if not keep_every_epochs:
        return []
    present = list_checkpoints(run_dir)
    if not present:
        return []
    latest = present[-1][1]
    ok = rows[rows["status"] == "ok"]
    evaluated = {(str(Path(r.checkpoint).resolve()), int(r.file_size), int(r.file_mtime_ns)) for r in ok.itertuples()}
    best = Path(best_checkpoint).resolve() if best_checkpoint else None
    doomed = []
    for epoch, path in present:
        stat = path.stat()
        if ((str(path.resolve()), stat.st_size, stat.st_mtime_ns) not in evaluated or path == latest
                or path.resolve() == best or epoch % keep_every_epochs == 0):
            continue
        doomed.append(path)
    return doomed


def apply_evaluated_retention(run_dir: str | os.PathLike, rows: pd.DataFrame, best_checkpoint: str | None,
                              keep_every_epochs: int) -> list[Path]:
    """Delete what :func:`deletable_checkpoints` allows; rewrite the run's checkpoint table; the deleted paths."""
    doomed = deletable_checkpoints(run_dir, rows, best_checkpoint, keep_every_epochs)
    for path in doomed:
        path.unlink(missing_ok=True)
    if doomed:
        write_checkpoint_table(run_dir, read_checkpoint_table(run_dir).to_dict("records"))
    return doomed
