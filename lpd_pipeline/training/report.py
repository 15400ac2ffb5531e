"""Pictures of a training run for people: the loss curves."""

from __future__ import annotations

import io

import pandas as pd

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")


def loss_curve_png(history: pd.DataFrame, title: str) -> bytes:
    """PNG bytes of the per-epoch losses (generator and discriminator on separate axes)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, (ax_g, ax_d) = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
    for name, axis in (("G_GAN", ax_g), ("G_L1", ax_g), ("D_real", ax_d), ("D_fake", ax_d)):
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
