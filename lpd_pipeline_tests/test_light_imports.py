"""Loading the Dagster definitions (the UI, every sensor tick, every run launch) never imports torch: the model
code is imported inside the steps that need it."""

import subprocess
import sys


def test_definitions_load_without_torch():
    code = ("import sys; import lpd_pipeline.definitions as d; d.defs.resolve_job_def('full_pipeline'); "
            "heavy = [m for m in ('torch', 'torchvision', 'lpips', 'pytorch_fid') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"definitions imported {result.stdout.strip()}: {result.stderr[-2000:]}"
