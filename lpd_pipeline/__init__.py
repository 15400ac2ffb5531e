"""lpd-pipeline: colorize Chinese ink landscape paintings with pix2pix, run as a Dagster asset graph.

The package is a functional core (imaging, curation, sources, models, training) that imports nothing from
Dagster, plus a thin orchestration shell in :mod:`lpd_pipeline.defs`. ``dagster job execute -m lpd_pipeline``
finds the Definitions through the lazy attribute below, so ``import lpd_pipeline.imaging`` stays Dagster-free.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that plain-Python users and training subprocesses never pay for importing Dagster.
    # Not named "defs": that name is the lpd_pipeline.defs subpackage, which would shadow it once imported.
    if name == "dagster_definitions":
        from lpd_pipeline.definitions import defs

        return defs
    raise AttributeError(f"module 'lpd_pipeline' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["dagster_definitions"])
