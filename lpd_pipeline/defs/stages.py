"""The mission's stages as the asset graph shows them: one Dagster group per stage, with its owner and tag.

Rule: the global asset graph reads as the mission, left to right: ingest -> curate -> train -> evaluate -> render.
Each asset takes its group, owner and ``stage`` tag from here (``stage_options``), so a stage is named once.
Asset keys do not depend on groups: renaming or splitting a group never moves a stored table.
"""

from __future__ import annotations

from typing import Any

INGEST = "ingest"      # paintings in from folders, URL manifests, the Met API; decoded once, described
CURATE = "curate"      # dedup, tiles, filters, pairs, split by work, pix2pix export
TRAIN = "train"        # pix2pix per model variant (Pipes)
EVALUATE = "evaluate"  # every checkpoint scored, best one chosen, variants compared
RENDER = "render"      # whole paintings colorized, the results page, the survey

STAGES = (INGEST, CURATE, TRAIN, EVALUATE, RENDER)

OWNERS = {
    INGEST: "team:lpd-curation",
    CURATE: "team:lpd-curation",
    TRAIN: "team:lpd-training",
    EVALUATE: "team:lpd-evaluation",
    RENDER: "team:lpd-render",
}


def stage_options(stage: str) -> dict[str, Any]:
    """``group_name``, ``owners`` and ``tags`` of an asset of ``stage`` (keyword arguments of ``dg.asset``)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {list(STAGES)}")
    return {"group_name": stage, "owners": [OWNERS[stage]], "tags": {"stage": stage}}
