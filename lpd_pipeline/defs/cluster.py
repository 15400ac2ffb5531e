"""Running on a Kubernetes cluster: which executor the jobs use, and what the training step asks of a node.

Rule: the executor is chosen once, here, by ``LPD_EXECUTOR`` (read here only): ``local`` (the default) keeps every
job as it is on one machine (prepare_dataset and full_pipeline in one process, the others Dagster's default);
``k8s`` (set on the cluster's code location, deploy/k8s/values.yaml) runs every step of full_pipeline, train_models,
evaluate_checkpoints and render_masterpieces as a Kubernetes Job of its own (``dagster_k8s.k8s_job_executor``,
imported only then: ``pip install -e '.[k8s]'``); prepare_dataset, CPU only, stays in its run's one pod. Each training
step then asks for one GPU through its ``dagster-k8s/config`` op tag (:data:`TRAINING_STEP_K8S_CONFIG`, ignored by
the local executors), and the ``gpu`` concurrency pool (``pool=`` on ``trained_generator``) caps how many
trainings run at once across all runs: set its limit to the number of GPUs. docs/DEPLOY.md shows the whole setup.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

EXECUTOR_ENV = "LPD_EXECUTOR"
EXECUTORS = ("local", "k8s")
K8S_CONFIG_TAG = "dagster-k8s/config"  # dagster-k8s reads a step's pod settings from this op tag
GPU_POOL = "gpu"

# The training step's pod on Kubernetes (dagster-k8s's UserDefinedDagsterK8sConfig, Kubernetes API field names in
# snake_case): one NVIDIA GPU (extended resources are requested through the limit), scheduled onto GPU nodes even
# where they carry the usual nvidia.com/gpu taint, and a RAM-backed /dev/shm (Kubernetes' default is 64 MiB, too
# small for NCCL and DataLoader workers).
TRAINING_STEP_K8S_CONFIG: dict[str, Any] = {
    "container_config": {
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
        "volume_mounts": [{"name": "dshm", "mount_path": "/dev/shm"}],
    },
    "pod_spec_config": {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "dshm", "empty_dir": {"medium": "Memory"}}],
    },
}


def executor_kind() -> str:
    """``LPD_EXECUTOR``: ``local`` (default) or ``k8s``; anything else is an error naming the variable."""
    value = os.environ.get(EXECUTOR_ENV, "").strip() or "local"
    if value not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={value!r}: expected one of {list(EXECUTORS)}")
    return value


def cluster_executor() -> dg.ExecutorDefinition | None:
    """``dagster_k8s.k8s_job_executor`` when ``LPD_EXECUTOR=k8s``, else None (stay on this machine)."""
    if executor_kind() != "k8s":
        return None
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError as exc:
        raise ImportError(f"{EXECUTOR_ENV}=k8s needs dagster-k8s: pip install -e '.[k8s]'") from exc
    return k8s_job_executor


def job_executor(local: dg.ExecutorDefinition | None) -> dg.ExecutorDefinition | None:
    """A job's executor: ``local`` on one machine, the Kubernetes one on the cluster."""
    return cluster_executor() or local


# Jobs without an executor of their own (train_models, evaluate_checkpoints, render_masterpieces) take this one.
defs = dg.Definitions(executor=cluster_executor())
