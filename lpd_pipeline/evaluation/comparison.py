"""The method's comparison of variants: best epoch and its metrics per variant, and every metric vs epoch.

Reads each variant's results from disk (``evaluation/<variant>/best_checkpoint.json`` and ``evaluations.parquet``)
so it needs no Dagster inputs; variants without a best checkpoint are left out. Writes
``<storage>/reports/backbone_comparison.csv`` and ``backbone_comparison.png``.
"""

from __future__ import annotations

import io

import pandas as pd

from lpd_pipeline.evaluation import store
from lpd_pipeline.files import write_bytes_atomic, write_text_atomic
from lpd_pipeline.models.options import VARIANTS
from lpd_pipeline.settings import StorageLayout

TABLE_COLUMNS = ["variant", "best_epoch", "fid", "fid_lo", "fid_hi", "kid", "lpips", "delta_e", "delta_cf",
                 "psnr", "ssim", "ink_fid", "n_color", "n_ink", "chosen_by"]
# (column, label, lower is better)
PLOTTED = [("fid", "FID", True), ("kid", "KID", True), ("lpips", "LPIPS", True), ("delta_e", "ΔE (CIEDE2000)", True),
           ("delta_cf", "ΔCF (colourfulness gap)", True), ("ink_fid", "FID of ink tiles vs real colour", True)]


def comparison_table(layout: StorageLayout) -> pd.DataFrame:
    """One row per variant with a best checkpoint (the method's table)."""
    records = []
    for variant in VARIANTS:
        try:
            best = store.read_best_checkpoint(layout, variant)
        except store.EvaluationError:  # its checkpoint is gone: the variant needs evaluating again
            best = None
        if best is None:
            continue
        records.append({"variant": variant, "best_epoch": best["epoch"],
                        **{c: best.get(c) for c in TABLE_COLUMNS if c not in ("variant", "best_epoch")}})
    return pd.DataFrame(records, columns=TABLE_COLUMNS)


def epoch_curves(layout: StorageLayout, variants) -> pd.DataFrame:
    """The scored rows (status ok) of each variant's current checkpoints, for the metric-vs-epoch plot."""
    frames = []
    for variant in variants:
        rows = store.read_evaluations(layout, variant)
        frames.append(rows[rows["status"] == "ok"])
    if not frames:
        return store.empty_rows()
    return pd.concat(frames, ignore_index=True).sort_values(["variant", "epoch"])


def curves_png(curves: pd.DataFrame, best: pd.DataFrame) -> bytes:
    """PNG: one panel per metric, one line per variant, the FID 95% band, the chosen epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(12, 6.5), dpi=90)
    for axis, (column, label, lower) in zip(axes.flat, PLOTTED):
        for variant, group in curves.groupby("variant", sort=True):
            values = pd.to_numeric(group[column], errors="coerce")
            if values.notna().sum() == 0:
                continue
            line, = axis.plot(group["epoch"], values, marker="o", markersize=3, label=variant)
            if column == "fid":
                lo, hi = (pd.to_numeric(group[c], errors="coerce") for c in ("fid_lo", "fid_hi"))
                axis.fill_between(group["epoch"], lo, hi, color=line.get_color(), alpha=0.15)
            chosen = best[best["variant"] == variant]
            if len(chosen) and chosen[column].notna().any():
                axis.plot(chosen["best_epoch"], chosen[column], marker="*", markersize=12, color=line.get_color(),
                          linestyle="none")
        axis.set_title(f"{label} ({'lower' if lower else 'higher'} is better)", fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    figure.suptitle("checkpoint metrics per epoch (★ = chosen checkpoint; band = FID 95% bootstrap interval)",
                    fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def write_comparison(layout: StorageLayout) -> tuple[pd.DataFrame, bytes, dict[str, str]]:
    """Build the table and plot, write them under ``<storage>/reports/``; (table, png bytes, written paths)."""
    table = comparison_table(layout)
    curves = epoch_curves(layout, table["variant"].tolist())
    png = curves_png(curves, table)
    out = store.reports_dir(layout)
    csv_path = write_text_atomic(out / "backbone_comparison.csv", table.to_csv(index=False))
    curves_csv = write_text_atomic(out / "backbone_comparison_epochs.csv", curves[
        ["variant", "epoch", *[c for c, _, _ in PLOTTED], "fid_lo", "fid_hi", "psnr", "ssim"]].to_csv(index=False))
    png_path = write_bytes_atomic(out / "backbone_comparison.png", png)
    return table, png, {"table_csv": str(csv_path), "epochs_csv": str(curves_csv), "plot_png": str(png_path)}
