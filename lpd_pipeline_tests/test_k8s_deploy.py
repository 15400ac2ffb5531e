"""The Kubernetes sample (deploy/k8s/, docs/DEPLOY.md) checked without a cluster: its YAML parses, the executor
config validates against dagster-k8s's schema for the real full_pipeline job, the training step's pod config is
valid Kubernetes and is what the doc shows, and the launcher builds the documented run."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import lpd_pipeline.definitions as local
from lpd_pipeline.defs import cluster

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "k8s"
DEPLOY_DOC = REPO / "docs" / "DEPLOY.md"
NEEDS_K8S = "dagster-k8s is not installed: pip install -e '.[k8s]'"


def _launch_module():
    spec = importlib.util.spec_from_file_location("lpd_k8s_launch", DEPLOY / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_yaml_file_parses():
    files = sorted(DEPLOY.glob("*.yaml"))
    assert {p.name for p in files} >= {"values.yaml", "run_config.yaml", "storage.yaml"}
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path.name


def test_helm_values_select_the_kubernetes_executor_launcher_and_postgres():
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env[cluster.EXECUTOR_ENV] == "k8s"
    mounts = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    assert env["LPD_STORAGE"].startswith(mounts["lpd-storage"] + "/")  # the storage root is on the shared volume
    claims = [v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]]
    assert claims == [yaml.safe_load((DEPLOY / "storage.yaml").read_text())["metadata"]["name"]]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["--module-name", "lpd_pipeline.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    assert values["concurrency"]["runs"]["tagConcurrencyLimits"] == [
        {"key": "lpd/writes", "value": "dataset", "limit": 1}]  # as config/dagster.yaml
    assert _launch_module().DEFAULT_LOCATION == deployment["name"]


# Run in a fresh process with LPD_EXECUTOR=k8s: the executor is chosen when the definitions are loaded.
_CHECK_ON_K8S = """
import json, sys, dagster as dg
sys.path.insert(0, sys.argv[1])
import launch
import lpd_pipeline.definitions as d

def errors(job, config):
    try:
        dg.validate_run_config(job, config)
    except dg.DagsterInvalidConfigError as exc:
        return [str(exc)]
    return []

jobs = ("full_pipeline", "prepare_dataset", "train_models", "evaluate_checkpoints", "render_masterpieces")
config = launch.run_config(launch.DEFAULT_CONFIGS)
typo = launch.merge(config, {"execution": {"config": {"max_concurent": 2}}})
full = d.defs.resolve_job_def("full_pipeline")
print(json.dumps({"executors": {j: d.defs.resolve_job_def(j).executor_def.name for j in jobs},
                  "valid": dg.validate_run_config(full, config)["execution"]["k8s"]["max_concurrent"],
                  "typo": errors(full, typo)}))
"""


def test_on_kubernetes_full_pipeline_takes_the_k8s_executor_and_its_run_config():
    pytest.importorskip("dagster_k8s", reason=NEEDS_K8S)
    env = {**os.environ, cluster.EXECUTOR_ENV: "k8s", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", _CHECK_ON_K8S, str(DEPLOY)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["executors"] == {"full_pipeline": "k8s", "prepare_dataset": "in_process", "train_models": "k8s",
                                   "evaluate_checkpoints": "k8s", "render_masterpieces": "k8s"}
    assert report["valid"] == yaml.safe_load((DEPLOY / "run_config.yaml").read_text())[
        "execution"]["config"]["max_concurrent"]
    assert report["typo"] and "max_concurent" in report["typo"][0]  # the schema check can fail


def test_locally_the_jobs_keep_their_executors(monkeypatch):
    assert os.environ.get(cluster.EXECUTOR_ENV, "local") == "local", "tests run on one machine"
    assert local.defs.resolve_job_def("full_pipeline").executor_def.name == "in_process"
    monkeypatch.setenv(cluster.EXECUTOR_ENV, "slurm")
    with pytest.raises(ValueError, match="LPD_EXECUTOR='slurm'"):
        cluster.executor_kind()


def test_training_step_asks_for_one_gpu_in_the_gpu_pool():
    pytest.importorskip("dagster_k8s", reason=NEEDS_K8S)
    from dagster_k8s.job import get_user_defined_k8s_config
    from dagster_k8s.models import k8s_model_from_dict
    from kubernetes.client import V1Container, V1PodSpec

    training = local.defs.resolve_assets_def("trained_generator")
    assert training.op.pool == cluster.GPU_POOL == "gpu"
    parsed = get_user_defined_k8s_config(training.op.tags)  # dagster-k8s's own schema check of the op tag
    assert parsed.container_config["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    # Kubernetes' own models accept every key (an unknown one raises).
    container = k8s_model_from_dict(V1Container, {"name": "step", **parsed.container_config})
    pod = k8s_model_from_dict(V1PodSpec, {"containers": [{"name": "step"}], **parsed.pod_spec_config})
    assert container.volume_mounts[0].mount_path == "/dev/shm" and pod.volumes[0].empty_dir.medium == "Memory"


def test_the_doc_shows_the_training_tags_the_asset_has():
    text = DEPLOY_DOC.read_text()
    block = re.search(r"<!-- training-step-tags -->\s*```yaml\n(.*?)```", text, re.S)
    assert block, "docs/DEPLOY.md lacks the training step's tags block"
    shown = yaml.safe_load(block.group(1))
    training = local.defs.resolve_assets_def("trained_generator")
    assert shown == {"pool": training.op.pool,
                     "op_tags": {cluster.K8S_CONFIG_TAG: json.loads(training.op.tags[cluster.K8S_CONFIG_TAG])}}


def test_launcher_builds_the_documented_run(capsys):
    launch = _launch_module()
    assert launch.main(["--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["job"] == "full_pipeline"
    assert plan["tags"] == {"dagster/asset_partition_range_start": "resnet9",
                            "dagster/asset_partition_range_end": "unet256-colour"}  # the full job's three
    assert plan["run_config"]["ops"]["trained_generator"]["config"]["device"] == "cuda"  # config/paper_gpu.yaml
    assert plan["run_config"]["execution"]["config"]["max_concurrent"] >= 1          # + run_config.yaml
    assert launch.partition_tags(["unet256-lab"]) == {"dagster/partition": "unet256-lab"}
    with pytest.raises(SystemExit, match="not a contiguous range"):
        launch.partition_tags(["resnet9", "resnet9-lab"])
