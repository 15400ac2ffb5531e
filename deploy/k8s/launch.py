"""Launch ``full_pipeline`` (or another job) on the cluster through the webserver's GraphQL API.

    kubectl -n dagster port-forward svc/lpd-dagster-webserver 8080:80 &
    python deploy/k8s/launch.py --port 8080                          # resnet9..unet256-colour, paper settings
    python deploy/k8s/launch.py --port 8080 --variants resnet9-lab unet256-lab --config config/demo.yaml
    python deploy/k8s/launch.py --dry-run                            # print the run config and tags, launch nothing

The run config is a config of ``config/`` (default: the paper's settings on a GPU) merged with
``deploy/k8s/run_config.yaml`` (the Kubernetes executor's settings); later files win key by key. The variants
become the partition range tags of the run (one run trains, evaluates and renders each of them, as ``make demo``
does), or one partition tag for one variant. The run is queued; the daemon launches it as a Kubernetes Job.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIGS = (REPO / "config" / "paper_gpu.yaml", REPO / "deploy" / "k8s" / "run_config.yaml")
DEFAULT_LOCATION = "lpd-pipeline"  # the deployment's name in deploy/k8s/values.yaml


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, mappings merged key by key (lists and values replaced)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_config(paths: Sequence[Path]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path in paths:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"error: {path} is not a YAML mapping")
        config = merge(config, loaded)
    return config


def partition_tags(variants: Sequence[str]) -> dict[str, str]:
    """One variant: its partition; several: the range from the first to the last (in VARIANTS order)."""
    from lpd_pipeline.models.options import VARIANTS

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise SystemExit(f"error: unknown variant(s) {unknown or variants}; known: {list(VARIANTS)}")
    ordered = sorted(variants, key=VARIANTS.index)
    span = VARIANTS[VARIANTS.index(ordered[0]):VARIANTS.index(ordered[-1]) + 1]
    if list(span) != ordered:
        raise SystemExit(f"error: {ordered} is not a contiguous range of {list(VARIANTS)} (it would also run "
                         f"{sorted(set(span) - set(ordered))}): launch one run per variant instead")
    if len(ordered) == 1:
        return {"dagster/partition": ordered[0]}
    return {"dagster/asset_partition_range_start": ordered[0], "dagster/asset_partition_range_end": ordered[-1]}


def build_parser() -> argparse.ArgumentParser:
    from lpd_pipeline.models.options import MAIN_VARIANTS

    parser = argparse.ArgumentParser(prog="python deploy/k8s/launch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost", help="webserver host (default: localhost, a port-forward)")
    parser.add_argument("--port", type=int, default=8080, help="webserver port (default: 8080)")
    parser.add_argument("--location", default=DEFAULT_LOCATION, help=f"code location (default: {DEFAULT_LOCATION})")
    parser.add_argument("--job", default="full_pipeline", help="job to run (default: full_pipeline)")
    parser.add_argument("--variants", nargs="+", default=list(MAIN_VARIANTS),
                        help="model variants of the run (default: the full job's "
                             f"{' '.join(MAIN_VARIANTS)}: the paper's two and the colour-quality variant)")
    parser.add_argument("--config", type=Path, action="append", default=None,
                        help="run config file(s), merged in order (default: config/paper_gpu.yaml; "
                             "deploy/k8s/run_config.yaml is always merged last)")
    parser.add_argument("--dry-run", action="store_true", help="print the run config and tags, launch nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = [*(args.config or DEFAULT_CONFIGS[:1]), DEFAULT_CONFIGS[1]]
    config, tags = run_config(paths), partition_tags(args.variants)
    if args.dry_run:
        print(json.dumps({"job": args.job, "location": args.location, "tags": tags, "run_config": config}, indent=2))
        return 0
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    client = DagsterGraphQLClient(args.host, port_number=args.port)
    try:
        run_id = client.submit_job_execution(args.job, repository_location_name=args.location, run_config=config,
                                             tags=tags)
    except DagsterGraphQLClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"queued run {run_id} of {args.job} ({', '.join(f'{k}={v}' for k, v in tags.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
