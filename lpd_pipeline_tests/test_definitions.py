"""The Definitions are loaded from the defs/ folder: every module-level asset, check, job, schedule and sensor of
every module under lpd_pipeline/defs is in them, with no central list (Python loader and the ``dg`` CLI)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

import lpd_pipeline.defs
from lpd_pipeline_tests.conftest import REPO_ROOT

# define_asset_job returns a class Dagster does not export at the top level.
ASSET_JOB_TYPE = type(dg.define_asset_job("probe"))
RESOURCE_KEYS = {"storage", "painting_sources", "curation_settings", "parquet_io_manager", "pipes_subprocess_client"}


def _module_level_objects() -> dict[str, set[str]]:
    """What each defs module defines at module level, found by walking the package (independently of Dagster)."""
    found: dict[str, set[str]] = {"assets": set(), "asset_checks": set(), "jobs": set(), "schedules": set(),
                                  "sensors": set()}
    package_dir = Path(lpd_pipeline.defs.__file__).parent
    for path in sorted(package_dir.rglob("*.py")):  # sub-folders need no __init__.py (as for Dagster's loader)
        parts = path.relative_to(package_dir).with_suffix("").parts
        module = importlib.import_module(".".join(["lpd_pipeline.defs", *parts]).removesuffix(".__init__"))
        for value in vars(module).values():
            if isinstance(value, dg.AssetChecksDefinition):
                found["asset_checks"] |= {key.name for key in value.check_keys}
            elif isinstance(value, dg.AssetsDefinition):
                found["assets"] |= {key.to_user_string() for key in value.keys}
            elif isinstance(value, (dg.JobDefinition, ASSET_JOB_TYPE)):
                found["jobs"].add(value.name)
            elif isinstance(value, dg.ScheduleDefinition):
                found["schedules"].add(value.name)
            elif isinstance(value, dg.SensorDefinition):
                found["sensors"].add(value.name)
    return found


def test_every_module_level_definition_under_defs_is_loaded():
    from lpd_pipeline.definitions import defs

    expected = _module_level_objects()
    # The walk found the project's own definitions (a walk that finds nothing would prove nothing).
    assert {"raw_paintings", "tile_pairs", "trained_generator"} <= expected["assets"]
    assert {"prepare_dataset", "train_models"} <= expected["jobs"]
    graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    loaded = {
        "assets": {key.to_user_string() for key in graph.get_all_asset_keys()},
        "asset_checks": {key.name for key in graph.asset_check_keys},
        "jobs": set(repository.job_names) - {"__ASSET_JOB"},
        "schedules": {s.name for s in repository.schedule_defs},
        "sensors": {s.name for s in repository.sensor_defs},
    }
    assert loaded == expected
    assert set(defs.resources) == RESOURCE_KEYS


def test_package_attribute_for_dagster_module_loading():
    """``dagster job execute -m lpd_pipeline`` finds the Definitions through the package's lazy attribute."""
    import lpd_pipeline
    from lpd_pipeline.definitions import defs

    assert "dagster_definitions" in dir(lpd_pipeline)
    assert lpd_pipeline.dagster_definitions is defs


def test_dg_cli_lists_and_checks_every_definition():
    dg_cli = Path(sys.executable).parent / "dg"
    if not dg_cli.exists():
        dg_cli = shutil.which("dg")
        if dg_cli is None:
            pytest.skip("the dg CLI (dagster-dg-cli, a declared dependency) is not installed in this environment")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run([str(dg_cli), "list", "defs", "--json"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-3000:]
    data = json.loads(listed.stdout)
    expected = _module_level_objects()
    assert {a["asset_key"] for a in data["assets"]} == expected["assets"]
    assert {c["name"] for c in data["asset_checks"]} == expected["asset_checks"]
    assert {j["name"] for j in data["jobs"]} - {"__ASSET_JOB"} == expected["jobs"]
    assert {s["name"] for s in data["schedules"]} == expected["schedules"]
    assert {s["name"] for s in data["sensors"]} == expected["sensors"]
    assert {r["name"] for r in data["resources"]} == RESOURCE_KEYS
    checked = subprocess.run([str(dg_cli), "check", "defs"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    assert checked.returncode == 0, checked.stderr[-3000:]
