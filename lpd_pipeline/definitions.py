"""The Dagster Definitions of lpd-pipeline (``dagster dev`` / ``dg dev`` / ``dagster job execute -m lpd_pipeline``).

Rule: nothing is listed here. Every module under :mod:`lpd_pipeline.defs` is loaded by Dagster's
``load_from_defs_folder`` (the project is described by ``[tool.dg]`` in pyproject.toml); each module's
module-level assets, asset checks, jobs, schedules and sensors are picked up, and the resources are the
``Definitions`` of ``defs/resources.py``. A new module under ``defs/`` needs no entry anywhere.
"""

import warnings
from pathlib import Path

import dagster as dg

# Dagster's own Pipes client calls an API it marks "preview", and warns on every launch; the user can do nothing
# about it, so it is not shown (any other warning is).
warnings.filterwarnings("ignore", message=r".*PipesMessageReader\.expected_writer_count.*")
defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
