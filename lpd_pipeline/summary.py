"""``python -m lpd_pipeline.summary``: what a storage root holds, in a few human lines.

The rule: read only what the pipeline wrote (dataset tables, each variant's best-checkpoint record, the render
table, the results page) and say plainly what is missing, so the same summary closes ``make demo`` and answers
"where are my results?" at any later time. Nothing here computes a metric: the numbers are the evaluation's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from lpd_pipeline.models.options import VARIANTS
from lpd_pipeline.settings import StorageLayout, default_storage_root

DEMO_WARNING = ("The demo trains tiny networks for a few epochs on generated paintings: its colours show that the "
                "chain works, not what the method can do. Train with config/paper_gpu.yaml for real results.")


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


def _dataset_lines(layout: StorageLayout) -> list[str]:
    paintings = _read(layout.dataset_dir / "paintings.parquet")
    tiles = _read(layout.dataset_dir / "tiles.parquet")
    rejections = _read(layout.dataset_dir / "rejections.parquet")
    if paintings is None or tiles is None:
        return ["dataset: not prepared yet (job prepare_dataset)"]
    kept = paintings[paintings["split"].fillna("") != ""] if "split" in paintings else paintings
    per_split = tiles["split"].value_counts().to_dict()
    split_text = ", ".join(f"{per_split.get(s, 0)} {s}" for s in ("train", "test_color", "test_ink"))
    lines = [f"dataset: {len(kept)} of {len(paintings)} paintings kept, {len(tiles)} tiles ({split_text})"]
    if rejections is not None and len(rejections):
        reasons = rejections.groupby("stage").size().sort_values(ascending=False)
        lines.append("  rejected: " + ", ".join(f"{count} at {stage}" for stage, count in reasons.items()))
    return lines


def _best_record(layout: StorageLayout, variant: str) -> dict | None:
    path = layout.path("evaluation", variant, "best_checkpoint.json")
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _number(record: dict, key: str, digits: int) -> str:
    value = record.get(key)
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def _model_lines(layout: StorageLayout) -> list[str]:
    lines = []
    for variant in VARIANTS:
        record = _best_record(layout, variant)
        trained = layout.path("training", variant, "checkpoints.parquet").is_file()
        if record is None:
            if trained:
                lines.append(f"{variant}: trained, not evaluated yet (job evaluate_checkpoints)")
            continue
        lines.append(
            f"{variant}: best epoch {record.get('epoch')} — FID {_number(record, 'fid', 1)}, "
            f"KID {_number(record, 'kid', 4)}, LPIPS {_number(record, 'lpips', 3)}, "
            f"ΔE {_number(record, 'delta_e', 2)} (chosen by {record.get('chosen_by', 'the selection rule')})")
    return lines or ["models: none trained yet (job train_models)"]


def _render_lines(layout: StorageLayout) -> list[str]:
    renders = _read(layout.path("renders", "masterpieces.parquet"))
    lines = []
    if renders is None:
        lines.append("renders: none yet (job render_masterpieces)")
    else:
        lines.append(f"renders: {renders['painting_id'].nunique()} paintings colorized by "
                     f"{renders['variant'].nunique()} variant(s) under {layout.path('renders')}")
    page = layout.path("reports", "site", "index.html")
    if page.is_file():
        lines.append(f"results page: {page.as_uri()}")
    survey = layout.path("reports", "survey", "index.html")
    if survey.is_file():
        lines.append(f"survey kit: {survey.as_uri()}")
    return lines


def summarize(layout: StorageLayout, *, demo: bool = False) -> str:
    """The summary text for the storage root of ``layout``."""
    lines = [f"storage: {layout.root}", *_dataset_lines(layout), *_model_lines(layout), *_render_lines(layout)]
    if demo:
        lines += ["", DEMO_WARNING]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lpd_pipeline.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", type=Path, default=None, help="storage root (default: $LPD_STORAGE or ./storage)")
    parser.add_argument("--demo", action="store_true", help="add the note that demo models are tiny")
    args = parser.parse_args(argv)
    print(summarize(StorageLayout(args.storage or default_storage_root()), demo=args.demo))


if __name__ == "__main__":
    main()
