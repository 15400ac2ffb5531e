"""The one partitioning of the model half: by model variant (see lpd_pipeline.models.options.VARIANTS).

Training, evaluation and best-checkpoint choice share this definition, so a variant's evaluation maps to its own
training partition one to one.
"""

from typing import Any, Callable

import dagster as dg

from lpd_pipeline.models.options import VARIANTS

VARIANT_PARTITIONS = dg.StaticPartitionsDefinition(list(VARIANTS))


def for_each_variant(context: dg.AssetExecutionContext, what: str,
                     work: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work(variant)`` for every partition of this run (one, or several in a single-run backfill) and
    return the metadata it reported.

    A variant that fails does not stop the others; the step fails at the end naming each failure. Metadata keys
    get a ``<variant>/`` prefix when the run has several variants."""
    variants = list(context.partition_keys)
    metadata: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for number, variant in enumerate(variants, start=1):
        if len(variants) > 1:
            context.log.info(f"{what}: variant {variant} ({number} of {len(variants)})")
        try:
            result = work(variant)
        except dg.Failure as exc:
            if len(variants) == 1:
                raise
            failures[variant] = exc.description or str(exc)
            context.log.error(f"{what} {variant}: {failures[variant]}")
            continue
        prefix = "" if len(variants) == 1 else f"{variant}/"
        metadata.update({f"{prefix}{key}": value for key, value in result.items()})
    if failures:
        raise dg.Failure(description=f"{what} failed for " + "; ".join(f"{v}: {m}" for v, m in failures.items()))
    return metadata
