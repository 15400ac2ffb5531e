"""An exponential moving average of the generator's weights (``TrainConfig.ema_decay``; off by default).

The rule: after every generator update t (0, 1, ...), each averaged parameter moves towards the trained one,
``avg <- avg + (1 - d_t) (param - avg)`` with ``d_t = min(decay, (1 + t) / (10 + t))``: the warm-up keeps the
average from remembering the random initialisation in short runs (after 100 updates it spans about the last 10,
after 10,000 it is ``decay`` itself). Buffers (BatchNorm statistics, the ab bins, prior and temperature, palette
presets) are the trained network's, copied at every update. A GAN generator's weights wander from step to step;
their average is what checkpoints, exports and inference use (a checkpoint keeps the trained weights beside it,
so a resumed run continues exactly).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

WARMUP = 10


class WeightAverage:
    """The averaged copy of ``net`` (``average``, never trained itself) and its update counter."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.average = copy.deepcopy(net).requires_grad_(False)

    def decay_at(self, update: int) -> float:
        return min(self.decay, (1 + update) / (WARMUP + update))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """One step towards ``net``'s current weights (the first one starts from them: a change made to ``net``
        after construction, such as a head started at the colour prior, is not averaged away)."""
        params = [p.detach() for p in net.parameters()]
        averaged = list(self.average.parameters())
        if self.updates == 0:
            torch._foreach_copy_(averaged, params)
        else:
            torch._foreach_lerp_(averaged, params, 1.0 - self.decay_at(self.updates))
        for mine, theirs in zip(self.average.buffers(), net.buffers()):
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"weights": self.average.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.average.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
