"""Sensors: start prepare_dataset when the raw painting folder changes."""


import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from lpd_pipeline.defs.jobs import prepare_dataset
from lpd_pipeline.sources.local import METADATA_FILE, scan_local_folder


def folder_signature(folder: Path) -> str:
    """A cheap fingerprint of what the pipeline would ingest from ``folder`` (names, sizes, mtimes and ctimes of
    the files the local source scans, plus its metadata.csv); no pixel is read. The ctime catches a file
    rewritten with its old mtime restored (``cp -p``, ``rsync -t``)."""
    folder = folder.resolve()
    paintings, _ = scan_local_folder(folder)
    files = [painting.path for painting in paintings] + [p for p in [folder / METADATA_FILE] if p.is_file()]
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dg.sensor(job=prepare_dataset, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def new_raw_paintings(context: dg.SensorEvaluationContext):
    """Watches LPD_RAW_DIR; a new, changed or removed painting file triggers a dataset refresh."""
    raw_dir = os.environ.get("LPD_RAW_DIR", "")
    if not raw_dir or not Path(raw_dir).is_dir():
        return dg.SkipReason("LPD_RAW_DIR is not set to an existing folder")
    signature = folder_signature(Path(raw_dir))
    state = _cursor_state(context.cursor)
    if signature == state["signature"]:
        return dg.SkipReason(f"no change in {raw_dir}")
    changes = state["changes"] + 1
    context.update_cursor(json.dumps({"signature": signature, "changes": changes}))
    # The change count makes every change a new run key: removing a file can bring the folder back to an earlier
    # signature, and Dagster skips run keys it has already seen.
    return dg.RunRequest(run_key=f"{changes}:{signature}")


def _cursor_state(cursor: str | None) -> dict:
    """The sensor's memory. Earlier versions stored the bare signature: read that as the last signature seen."""
    if not cursor:
        return {"signature": None, "changes": 0}
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    if isinstance(state, dict) and isinstance(state.get("changes"), int) and "signature" in state:
        return state
    return {"signature": cursor, "changes": 0}


SENSORS = [new_raw_paintings]
