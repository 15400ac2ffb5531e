"""config/dagster-postgres.yaml against a real PostgreSQL server: the prepare_dataset job, run from the command
line as a user would, stores its run, events, materializations and check results in Postgres (read back through
the Dagster instance and by querying the database). Skips, saying why, only where a server cannot start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from lpd_pipeline import demo
from lpd_pipeline.defs.assets.dataset import DATASET_ASSETS
from lpd_pipeline_tests.postgres_server import server_unavailable, start_server, stop_server

REPO = Path(__file__).resolve().parents[1]
INSTANCE_CONFIG = REPO / "config" / "dagster-postgres.yaml"
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
TILE = 128


@pytest.fixture(scope="module")
def postgres():
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed: pip install -e '.[postgres]'")
    reason = server_unavailable()
    if reason:
        pytest.skip(reason)
    server = start_server()
    yield server
    stop_server(server)


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_CONFIG, home / "dagster.yaml")
    return home


def test_instance_config_reads_the_connection_from_the_environment(tmp_path, monkeypatch):
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed: pip install -e '.[postgres]'")
    storage = yaml.safe_load(INSTANCE_CONFIG.read_text())["storage"]["postgres"]["postgres_db"]
    assert storage["scheme"] == "postgresql+psycopg2"  # the driver dagster-postgres installs
    assert {key: value["env"] for key, value in storage.items() if isinstance(value, dict)} == {
        "hostname": "DAGSTER_PG_HOST", "port": "DAGSTER_PG_PORT", "username": "DAGSTER_PG_USER",
        "password": "DAGSTER_PG_PASSWORD", "db_name": "DAGSTER_PG_DB"}
    for name in PG_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception, match="DAGSTER_PG_"):  # an unset variable is named, not a silent default
        dg.DagsterInstance.from_config(str(_dagster_home(tmp_path)))


def test_prepare_dataset_runs_with_its_history_in_postgres(postgres, tmp_path):
    raw, storage, home = tmp_path / "raw", tmp_path / "storage", _dagster_home(tmp_path)
    demo.generate_demo_paintings(raw, n_colored=6, n_ink=2, scale=0.4)
    run_config = tmp_path / "run.yaml"
    run_config.write_text(yaml.safe_dump({"resources": {"curation_settings": {"config": {
        "tile_size": TILE, "stride": TILE, "test_color_fraction": 0.25}}}}))
    env = {**os.environ, **postgres.env(), "DAGSTER_HOME": str(home), "LPD_STORAGE": str(storage),
           "LPD_RAW_DIR": str(raw), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "lpd_pipeline", "-j", "prepare_dataset",
         "-c", str(run_config)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert not list(home.rglob("*.db")), "the instance wrote SQLite files: it did not use Postgres"
    assert (storage / "dataset" / "tiles.parquet").is_file()

    # Through the Dagster instance (the same dagster.yaml, the same environment).
    for name, value in postgres.env().items():
        os.environ[name] = value
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        [run] = instance.get_runs()
        assert (run.job_name, run.status) == ("prepare_dataset", dg.DagsterRunStatus.SUCCESS)
        tile_pairs = instance.get_latest_materialization_event(dg.AssetKey("tile_pairs"))
        assert tile_pairs is not None and tile_pairs.run_id == run.run_id
        instance.dispose()
    finally:
        for name in PG_ENV:
            os.environ.pop(name, None)

    # And in the database itself.
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", (run.run_id,))
        assert cursor.fetchall() == [("prepare_dataset", "SUCCESS")]
        cursor.execute("SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s "
                       "GROUP BY dagster_event_type", (run.run_id,))
        events = dict(cursor.fetchall())
        cursor.execute("SELECT asset_key FROM asset_keys")
        asset_keys = {row[0] for row in cursor.fetchall()}
    connection.close()
    kinds = dg.DagsterEventType
    assert events[kinds.RUN_SUCCESS.value] == 1 and kinds.RUN_FAILURE.value not in events
    assert events[kinds.ASSET_MATERIALIZATION.value] == len(DATASET_ASSETS)
    assert events[kinds.ASSET_CHECK_EVALUATION.value] == 2  # the two blocking checks on tile_pairs
    assert {f'["{a.key.path[-1]}"]' for a in DATASET_ASSETS} <= asset_keys
