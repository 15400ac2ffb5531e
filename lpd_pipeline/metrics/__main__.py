"""``python -m lpd_pipeline.metrics REAL_DIR FAKE_DIR`` (see :mod:`lpd_pipeline.metrics.cli`)."""

from lpd_pipeline.metrics.cli import main

raise SystemExit(main())
