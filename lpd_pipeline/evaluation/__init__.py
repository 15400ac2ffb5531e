"""Checkpoint evaluation (no Dagster): score every checkpoint, choose the best, compare variants, thin checkpoints.

Modules: ``settings`` (EvaluationSettings), ``testsets`` (decoded test tiles + fingerprint), ``generation`` (the
shared inference path on test tiles), ``leakage`` (refuse checkpoints trained on today's test tiles),
``evaluate`` (rows per checkpoint, cached by content), ``samples`` (sample sheets), ``selection`` (best-epoch
rules), ``store`` (files and best_checkpoint.json), ``comparison`` (the method's table and plots),
``retention`` (evaluation-aware checkpoint thinning).
"""

from lpd_pipeline.evaluation.settings import EvaluationSettings
from lpd_pipeline.evaluation.store import EvaluationError, read_best_checkpoint

__all__ = ["EvaluationError", "EvaluationSettings", "read_best_checkpoint"]
