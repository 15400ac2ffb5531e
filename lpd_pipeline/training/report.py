"""Pictures of a training run for people: the loss curves."""

from __future__ import annotations

import io

import pandas as pd

from lpd_pipeline.training.config import LOSS_NAMES


def loss_curve_png(history: pd.DataFrame, title: str) -> bytes:
    """PNG bytes of the per-epoch losses (generator and discriminator on separate axes)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, (ax_g, ax_d) = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
    for name in LOSS_NAMES:
        axis = ax_g if name.startswith("G_") else ax_d
        if name in history:
            axis.plot(history["epoch"], history[name], marker="o" if len(history) < 30 else None,
                      markersize=3, label=name)
    for axis, label in ((ax_g, "generator"), (ax_d, "discriminator")):
        axis.set_xlabel("epoch")
        axis.set_title(label, fontsize=9)
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
