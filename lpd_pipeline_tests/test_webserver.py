"""The Dagster UI as a user meets it: ``dagster-webserver`` and ``dagster-daemon run`` on 127.0.0.1 against
``workspace.yaml`` (a temp DAGSTER_HOME holding ``config/dagster.yaml``, a temp LPD_STORAGE).

Through the GraphQL API (what the UI itself calls): every asset, check, job, schedule and sensor of the
Definitions is there with its group and lineage; a materialization launched like the UI's "Materialize" button
is queued, dequeued by the daemon and succeeds; a prepare_dataset run that fails mid-way (a storage fault at the
tiles) is re-executed "from failure" and only the failed and later steps run. Then headless Chromium takes a
screenshot of the global asset graph (written under the test's folder, its path printed). Only the screenshot
skips, with the reason, where Chromium cannot start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lpd_pipeline_tests import ops_fixtures
from lpd_pipeline_tests.conftest import REPO_ROOT
from lpd_pipeline_tests.ops_fixtures import BEFORE_TILES, FROM_TILES

LOCATION = "lpd_pipeline"  # workspace.yaml
REPOSITORY = "__repository__"
START_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 120.0
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# One webserver per module: under xdist (`make test`: -n 2 --dist loadgroup) the whole module runs on one worker,
# so the tests share one Dagster instance instead of starting two.
pytestmark = pytest.mark.xdist_group("dagster_webserver")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A process in a group of its own (teardown ends the whole group: the code servers it spawns too)."""
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with_group = os.getpgid(process.pid)
    os.killpg(with_group, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(with_group, signal.SIGKILL)
        process.wait(timeout=10)


class Dagster:
    """The running webserver (GraphQL at ``url``/graphql) and daemon, with their logs."""

    def __init__(self, url: str, logs: list[Path], storage: Path, raw: Path, folder: Path):
        self.url, self.logs, self.storage, self.raw, self.folder = url, logs, storage, raw, folder

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def log_tail(self) -> str:
        return "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs)


def _wait_until_up(dagster: Dagster, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"{process.args[0]} exited with {process.returncode}\n{dagster.log_tail()}")
        try:
            data = dagster.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name "
                                   "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(1)
            continue
        entries = data["workspaceOrError"]["locationEntries"]
        states = {e["name"]: e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]}
        if states.get(LOCATION, {}).get("__typename") == "RepositoryLocation":
            return
        if states.get(LOCATION, {}).get("__typename") == "PythonError":
            pytest.fail(f"the code location did not load: {states[LOCATION]['message']}")
        time.sleep(1)
    pytest.fail(f"the webserver did not answer within {START_TIMEOUT_S:.0f} s\n{dagster.log_tail()}")


def _create_instance_storage(home: Path) -> None:
    """Create the instance's SQLite tables before two processes open them: the webserver and the daemon, started
    together on an empty DAGSTER_HOME, would each run the schema migrations and may both stamp the version."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        instance.get_runs(limit=1)
    finally:
        instance.dispose()


@pytest.fixture(scope="module")
def dagster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("webserver")
    home, storage = folder / "dagster_home", folder / "storage"
    home.mkdir()
    shutil.copy(REPO_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
    _create_instance_storage(home)
    raw = ops_fixtures.tiny_raw_folder(folder / "raw")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DAGSTER_HOME": str(home), "LPD_STORAGE": str(storage), "LPD_RAW_DIR": str(raw),
           # this checkout first, whatever the environment's editable install points at
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONWARNINGS": "ignore::FutureWarning"}
    port = _free_port()
    processes = [
        _start([str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
               env, folder / "webserver.log"),
        _start([str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, folder / "daemon.log"),
    ]
    running = Dagster(f"http://127.0.0.1:{port}", [folder / "webserver.log", folder / "daemon.log"], storage, raw,
                      folder)
    try:
        _wait_until_up(running, processes)
        yield running
    finally:
        for process in processes:
            _stop(process)


# --- what the UI lists ----------------------------------------------------------------------------------------

ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName description kinds owners { __typename ... on TeamAssetOwner { team } }
    dependencyKeys { path } dependedByKeys { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } } }
"""

REPOSITORY_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
    jobs { name } schedules { name } sensors { name } } } } }
"""


def test_every_definition_is_listed_with_its_lineage(dagster):
    from lpd_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    nodes = {"/".join(n["assetKey"]["path"]): n for n in dagster.graphql(ASSETS_QUERY)["assetNodes"]}
    assert set(nodes) == {key.to_user_string() for key in graph.get_all_asset_keys()}
    for key in graph.get_all_asset_keys():
        node = nodes[key.to_user_string()]
        expected_up = {k.to_user_string() for k in graph.get(key).parent_keys}
        assert {"/".join(k["path"]) for k in node["dependencyKeys"]} == expected_up, key
        assert node["description"] and node["kinds"] and node["owners"], key
        assert node["groupName"] in ("ingest", "curate", "train", "evaluate", "render"), key
    # A few edges spelled out, as the graph shows them.
    assert {"/".join(k["path"]) for k in nodes["trained_generator"]["dependedByKeys"]} == {"checkpoint_evaluations"}
    assert {"/".join(k["path"]) for k in nodes["results_page"]["dependencyKeys"]} == {
        "colorized_masterpieces", "backbone_comparison"}
    assert {"/".join(k["path"]) for k in nodes["raw_paintings"]["dependedByKeys"]} == {"deduplicated_paintings"}
    checks = {(key, c["name"]) for key, n in nodes.items()
              if n["assetChecksOrError"]["__typename"] == "AssetChecks" for c in n["assetChecksOrError"]["checks"]}
    assert checks == {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}

    repository = defs.get_repository_def()
    [listed] = [r for r in dagster.graphql(REPOSITORY_QUERY)["repositoriesOrError"]["nodes"]
                if r["location"]["name"] == LOCATION]
    assert {j["name"] for j in listed["jobs"]} >= set(repository.job_names) - {"__ASSET_JOB"}
    assert {s["name"] for s in listed["schedules"]} == {s.name for s in repository.schedule_defs}
    assert {s["name"] for s in listed["sensors"]} == {s.name for s in repository.sensor_defs}
    assert {"full_pipeline", "prepare_dataset", "train_models", "evaluate_checkpoints",
            "render_masterpieces"} <= {j["name"] for j in listed["jobs"]}
    assert {"new_raw_paintings", "lpd_automation"} <= {s["name"] for s in listed["sensors"]}


# --- launching and re-executing runs ----------------------------------------------------------------------

LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on PythonError { message } } }
"""

REEXECUTE = """
mutation Reexecute($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } } }
"""

RUN = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { status parentRunId stepStats { stepKey status } } } }
"""


def _launched(dagster: Dagster, answer: dict) -> str:
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


def _wait_for_run(dagster: Dagster, run_id: str) -> dict:
    """Poll until the run is finished (queued runs need the daemon to dequeue them)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = dagster.graphql(RUN, {"runId": run_id})["runOrError"]
        if run.get("status") in FINISHED:
            return run
        time.sleep(1)
    pytest.fail(f"run {run_id} did not finish within {RUN_TIMEOUT_S:.0f} s (last status {run.get('status')})\n"
                f"{dagster.log_tail()}")


def _steps(run: dict) -> dict[str, str]:
    return {s["stepKey"]: s["status"] for s in run["stepStats"]}


def _params(dagster: Dagster, job: str, **selection) -> dict:
    return {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job,
                         **selection},
            "runConfigData": ops_fixtures.prepare_run_config(dagster.raw, dagster.storage)}


def test_a_materialization_launched_through_graphql_succeeds(dagster):
    """What the UI's "Materialize" button on raw_paintings sends."""
    params = _params(dagster, "__ASSET_JOB", assetSelection=[{"path": ["raw_paintings"]}])
    run = _wait_for_run(dagster, _launched(dagster, dagster.graphql(LAUNCH, {"params": params})["launchRun"]))
    assert run["status"] == "SUCCESS", dagster.log_tail()
    assert set(_steps(run)) == {"raw_paintings"}
    assert (dagster.storage / "dataset" / "rejections" / "ingest.parquet").is_file()


def test_a_failed_run_reexecuted_from_failure_through_graphql(dagster):
    blocker = ops_fixtures.block_tile_folder(dagster.storage)
    answer = dagster.graphql(LAUNCH, {"params": _params(dagster, "prepare_dataset")})["launchRun"]
    parent = _wait_for_run(dagster, _launched(dagster, answer))
    assert parent["status"] == "FAILURE"
    parent_steps = _steps(parent)
    assert {k for k, v in parent_steps.items() if v == "SUCCESS"} == BEFORE_TILES
    assert parent_steps["painting_tiles"] == "FAILURE"

    blocker.unlink()  # repaired; then the UI's "Re-execute from failure"
    parent_id = answer["run"]["runId"]
    child_answer = dagster.graphql(REEXECUTE, {"params": {"parentRunId": parent_id, "strategy": "FROM_FAILURE"}})
    child = _wait_for_run(dagster, _launched(dagster, child_answer["launchRunReexecution"]))
    assert child["status"] == "SUCCESS", dagster.log_tail()
    assert child["parentRunId"] == parent_id
    assert set(_steps(child)) == FROM_TILES  # ingest and dedup were not redone
    assert (dagster.storage / "dataset" / "tiles.parquet").is_file()


# --- the asset graph in a browser -------------------------------------------------------------------------

def _expand_all_groups(driver) -> None:
    """The graph's context menu: "Expand all groups" (the UI remembers it per browser; its shortcut is Alt+E).
    The first-visit dialog ("Join the Dagster community") can appear after the graph has drawn, and it swallows
    the right-click: so each try dismisses it if present, opens the menu if absent, and looks again a second later."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.XPATH, "//*[text()='render']"))  # stage boxes

    def menu_item(d):
        if _skip_community_dialog(d):
            return False
        items = d.find_elements(By.XPATH, "//*[contains(text(), 'Expand all groups')]")
        if items:
            return items
        canvas = max(d.find_elements(By.CSS_SELECTOR, "svg"), key=lambda e: e.size["width"] * e.size["height"])
        ActionChains(d).move_to_element_with_offset(canvas, 0, -canvas.size["height"] // 3).context_click().perform()
        return False

    wait = WebDriverWait(driver, 60, poll_frequency=1.0,
                         ignored_exceptions=(StaleElementReferenceException, WebDriverException))
    item = wait.until(menu_item)[0]
    driver.execute_script("arguments[0].closest('a,button,li,[role=menuitem]').click()", item)


def _skip_community_dialog(driver) -> bool:
    """Click the first-visit dialog's "Skip" (shown once per browser profile); True when it was there."""
    from selenium.webdriver.common.by import By

    buttons = driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']")
    for button in buttons:
        driver.execute_script("arguments[0].click()", button)
    return bool(buttons)


def _click_past_community_dialog(driver, element, timeout: float = 30.0) -> None:
    """Click ``element``; when the first-visit dialog (it comes up late, at a moment of its own) takes the click,
    skip the dialog and click again."""
    from selenium.common.exceptions import ElementClickInterceptedException

    deadline = time.monotonic() + timeout
    while True:
        try:
            element.click()
            return
        except ElementClickInterceptedException:
            if time.monotonic() > deadline:
                raise
            _skip_community_dialog(driver)
            time.sleep(0.5)


def test_screenshot_of_the_global_asset_graph(dagster):
    from lpd_pipeline_tests.test_browser import start_chromium

    driver = start_chromium(dagster.folder / "chromium-profile", dagster.folder / "downloads")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shot = dagster.folder / "asset_graph.png"
    try:
        driver.set_window_size(1800, 1000)
        driver.get(f"{dagster.url}/asset-groups")  # "Global asset lineage"
        try:
            _expand_all_groups(driver)
            nodes = ("raw_paintings", "tile_pairs", "trained_generator", "best_checkpoint", "results_page")
            WebDriverWait(driver, 60).until(lambda d: all(
                d.find_elements(By.XPATH, f"//*[contains(text(), '{name}')]") for name in nodes))
            time.sleep(2)  # let the layout settle (edges are drawn after the nodes)
        finally:
            driver.save_screenshot(str(shot))  # also when it did not render: the picture says why
            print(f"asset graph screenshot: {shot}")
    finally:
        driver.quit()
    assert shot.stat().st_size > 10_000


def test_screenshot_of_an_asset_page_shows_its_preview(dagster):
    """tile_pairs: counts inline on its page; the preview, a picture (markdown over 1,000 characters, which the UI
    puts behind "[Show Markdown]"), opens and loads. The test materializes the dataset itself when no earlier test
    of this module left it (it used to skip then, in about half of the CI runs)."""
    from lpd_pipeline_tests.test_browser import start_chromium

    if not (dagster.storage / "dataset" / "tiles.parquet").is_file():
        answer = dagster.graphql(LAUNCH, {"params": _params(dagster, "prepare_dataset")})["launchRun"]
        run = _wait_for_run(dagster, _launched(dagster, answer))
        assert run["status"] == "SUCCESS", dagster.log_tail()
        assert (dagster.storage / "dataset" / "tiles.parquet").is_file()
    driver = start_chromium(dagster.folder / "chromium-profile", dagster.folder / "downloads")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shot = dagster.folder / "tile_pairs_preview.png"
    try:
        driver.set_window_size(1800, 1000)
        driver.get(f"{dagster.url}/assets/tile_pairs")
        try:
            wait = WebDriverWait(driver, 60)
            [label] = wait.until(lambda d: d.find_elements(By.XPATH, "//tr//*[text()='preview']"))
            time.sleep(1)  # the first-visit dialog, if this profile has not dismissed it yet, comes up late
            _skip_community_dialog(driver)
            assert driver.find_elements(By.XPATH, "//tr//*[text()='train_tiles']")
            row = label.find_element(By.XPATH, "./ancestor::tr")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
            _click_past_community_dialog(driver, row.find_element(By.XPATH, ".//a[contains(text(), 'Show Markdown')]"))
            wait.until(lambda d: [img for img in d.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png']")
                                  if d.execute_script("return arguments[0].naturalWidth", img) > 0])
            time.sleep(1)
        finally:
            driver.save_screenshot(str(shot))
            print(f"tile_pairs preview screenshot: {shot}")
    finally:
        driver.quit()
