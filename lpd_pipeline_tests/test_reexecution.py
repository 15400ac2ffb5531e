"""A prepare_dataset run that fails mid-way is re-executed from failure through the Python API: the completed
steps are not run again, their outputs are loaded from storage, and the dataset is complete afterwards.
(The same through GraphQL, as the UI's "Re-execute from failure" does it: test_webserver.py.)"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from lpd_pipeline_tests import ops_fixtures
from lpd_pipeline_tests.ops_fixtures import BEFORE_TILES, FROM_TILES


def _steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """{step key: status} of the steps a run executed."""
    return {stat.step_key: stat.status.value for stat in instance.get_run_step_stats(run_id)}


def test_a_failed_run_reexecuted_from_failure_skips_the_completed_steps(tmp_path):
    raw = ops_fixtures.tiny_raw_folder(tmp_path / "raw")
    storage = tmp_path / "storage"
    blocker = ops_fixtures.block_tile_folder(storage)
    job = dg.reconstructable(ops_fixtures.prepare_dataset_job)
    run_config = ops_fixtures.prepare_run_config(raw, storage)
    with dg.instance_for_test() as instance:
        with dg.execute_job(job, instance, run_config=run_config, raise_on_error=False) as failed:
            assert not failed.success
            parent = _steps(instance, failed.run_id)
        assert {k for k, v in parent.items() if v == "SUCCESS"} == BEFORE_TILES
        assert parent["painting_tiles"] == "FAILURE"
        assert not (storage / "dataset" / "tiles.parquet").exists()

        blocker.unlink()  # the fault is repaired
        options = dg.ReexecutionOptions.from_failure(failed.run_id, instance)
        with dg.execute_job(job, instance, run_config=run_config, reexecution_options=options) as child:
            assert child.success
            executed = _steps(instance, child.run_id)
            run = instance.get_run_by_id(child.run_id)
        assert run.parent_run_id == failed.run_id
        assert set(executed) == FROM_TILES and set(executed.values()) == {"SUCCESS"}
        checks = {e.check_name: e.passed for e in child.get_asset_check_evaluations()}
        assert checks == {"no_leak_across_splits": True, "pairs_aligned_and_luma_exact": True}
    tiles = pd.read_parquet(storage / "dataset" / "tiles.parquet")
    assert len(tiles) and set(tiles["split"]) >= {"train", "test_ink"}
