"""The learned tile filter: boosted decision stumps over the tile features, one model per drop class, and the
watermark CNN (:mod:`lpd_pipeline.curation.watermark_net`) for overlay text.

The stumps may also read ``text_net``, the text detector's P(inscription) (:mod:`text_net`, a feature appended to
:data:`FEATURE_NAMES` when the model file lists it): loaded from ``text_net.pt`` beside the model file; absent,
every class whose stumps read it is left to its rule.

Rule: a class with a stump model rejects a tile when its probability is above the class's threshold (stored
with the model), or, for the classes whose model says ``with_rule`` (chosen in training where the rule is
precise: it adds what the model misses), when its rule filter fires; watermark, when the CNN is loaded, is the CNN's alone (its rule fires on brush
texture and never caught a real watermark); every other class, and every class when no model file is present or
the tile size is not the one the model was trained on, is the rule filter's (``filters.rejection_reasons``).
The model file is JSON (feature names, per class: a base log-odds, stumps ``[feature, split, left, right]`` and
a threshold), written by ``bench/train_tile_model.py`` from the hand labels' train fold and small enough to ship
(:data:`BUNDLED_MODEL`). Stumps on a logistic loss, not trees or a network: with ~330 labelled tiles they
cross-validated as well as anything tried (a small CNN did worse on good tiles) and cost microseconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lpd_pipeline.curation import filters, text_net
from lpd_pipeline.curation.text_net import TextNet
from lpd_pipeline.curation.tile_features import FEATURE_NAMES
from lpd_pipeline.curation.watermark_net import BUNDLED_WEIGHTS, WatermarkNet
from lpd_pipeline.files import sha256_file, write_text_atomic

if TYPE_CHECKING:
    from lpd_pipeline.curation.trunk_features import TrunkFeatures

log = logging.getLogger(__name__)

BUNDLED_MODEL = Path(__file__).with_name("tile_model.json")
MODEL_FORMAT = 1
# The feature lists a model file may name: the hand-made features, or those and the text detector's P.
WITH_TEXT = (*FEATURE_NAMES, text_net.FEATURE)


class TileModelError(ValueError):
    """A model file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class ClassModel:
    """Boosted stumps for one class: log-odds = base + sum(left if x[feature] < split else right)."""

    base: float
    stumps: tuple[tuple[int, float, float, float], ...]
    threshold: float
    with_rule: bool = False  # the class's rule filter also rejects

    @functools.cached_property
    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The stumps as (feature index, split, left, right) columns, each (stumps, 1)."""
        table = np.array(self.stumps, np.float64).reshape(-1, 4)
        return (table[:, 0].astype(np.intp), *(table[:, k:k + 1] for k in (1, 2, 3)))

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(class) for a (n, features) array. The stumps' values are added in order, base first (a running
        sum, never numpy's pairwise one), so the result is that of adding them one by one, bit for bit."""
        features = np.atleast_2d(features)
        index, split, left, right = self._columns
        terms = np.where(features[:, index].T < split, left, right)
        logit = np.cumsum(np.concatenate([np.full((1, len(features)), self.base), terms]), axis=0)[-1]
        return 1.0 / (1.0 + np.exp(-logit))


@dataclass(frozen=True)
class LinearHead:
    """A logistic head for one class over the standardised model features and the trunk's
    (:class:`LinearInputs`): P = sigmoid(weights . z + bias). Where it is loaded, the class's probability is the
    mean of the stumps' and the head's, and ``threshold`` and ``with_rule`` (chosen for that mean) replace the
    stumps' own."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    with_rule: bool = False

    def probability(self, standardised: np.ndarray) -> np.ndarray:
        """The head's P for (n, inputs) standardised inputs (:meth:`LinearInputs.standardised`)."""
        return 1.0 / (1.0 + np.exp(-(standardised @ np.asarray(self.weights) + self.bias)))


@dataclass(frozen=True)
class LinearInputs:
    """What the heads read: ``columns`` of the model's features followed by the trunk's (``trunk``:
    :data:`trunk_features.NAME`; a column constant on the train fold, such as a rule ingest skips, is left out),
    each standardised by the train fold's mean and standard deviation."""

    trunk: str
    columns: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @functools.cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self.columns, np.intp), np.array(self.mean), np.array(self.std)

    def standardised(self, features: np.ndarray) -> np.ndarray:
        columns, mean, std = self._arrays
        return (features[:, columns] - mean) / std


@dataclass(frozen=True)
class TileModel:
    tile_size: int
    classes: Mapping[str, ClassModel]
    feature_names: tuple[str, ...] = FEATURE_NAMES
    trained_on: str = ""
    heads: Mapping[str, LinearHead] = field(default_factory=dict)
    linear_inputs: LinearInputs | None = None
    watermark: WatermarkNet | None = field(default=None, compare=False)
    text: TextNet | None = field(default=None, compare=False)
    # The loaded ImageNet trunk (trunk_features.TrunkFeatures): the heads decide with the stumps only where it is.
    trunk: TrunkFeatures | None = field(default=None, compare=False)

    def text_readers(self) -> list[str]:
        """The classes whose stumps read the text detector's feature (the one after :data:`FEATURE_NAMES`)."""
        return sorted(n for n, m in self.classes.items() if any(s[0] == len(FEATURE_NAMES) for s in m.stumps))

    def reads_text(self) -> bool:
        return bool(self.text_readers())

    def without_text(self) -> TileModel:
        """The model without the classes whose stumps read ``text_net`` (their rules decide instead)."""
        readers = self.text_readers()
        return replace(self, classes={n: m for n, m in self.classes.items() if n not in readers}, text=None,
                       heads={}, linear_inputs=None, trunk=None)

    def without_heads(self) -> TileModel:
        """The stumps alone, with their own thresholds (the heads read ``text_net`` and the trunk's features)."""
        return replace(self, heads={}, linear_inputs=None, trunk=None)

    def uses_heads(self) -> bool:
        return self.trunk is not None and bool(self.heads)

    def tile_probabilities(self, features: np.ndarray, tiles: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """P(class) per tile (``features``: one row per tile, :func:`tile_features`) for every class the model
        decides; the watermark CNN and the text detector (whose P becomes the last feature) see the tiles
        themselves, in batches."""
        features = np.atleast_2d(features)
        if self.reads_text():
            if self.text is None:
                raise ValueError("the model reads text_net but no text detector is loaded (use without_text)")
            features = np.concatenate([features, self.text.probabilities(list(tiles))[:, None]], axis=1)
        columns = {name: model.probability(features) for name, model in self.classes.items()}
        if self.uses_heads():
            z = self.linear_inputs.standardised(np.concatenate([features, self.trunk.features(list(tiles))], axis=1))
            for name, head in self.heads.items():
                if name in columns:
                    columns[name] = 0.5 * (columns[name] + head.probability(z))
        if self.watermark is not None and len(tiles):
            columns["watermark"] = self.watermark.probabilities(list(tiles))
        return [{name: float(values[i]) for name, values in columns.items()} for i in range(len(features))]

    def decides(self, name: str) -> bool:
        return name in self.classes or (name == "watermark" and self.watermark is not None)

    def rules_needed(self) -> tuple[str, ...]:
        """The rule filters whose decision counts: those of the classes the model does not decide and of its
        ``with_rule`` classes."""
        return tuple(n for n in filters.FILTER_NAMES
                     if not self.decides(n) or (n in self.classes and self.with_rule(n)))

    def rules_to_skip(self) -> tuple[str, ...]:
        """Rule filters not worth computing: neither their decision nor their score (as a feature) is used.
        Watermark, when the CNN decides it and no stump reads ``rule_watermark`` (its rule costs as much as all
        the others together)."""
        used = {self.feature_names[s[0]] for m in self.classes.values() for s in m.stumps}
        if self.uses_heads():
            used |= {self.feature_names[j] for j in self.linear_inputs.columns if j < len(self.feature_names)}
        return tuple(n for n in filters.FILTER_NAMES
                     if n not in self.rules_needed() and n not in self.classes and f"rule_{n}" not in used)

    def _decision(self, name: str) -> ClassModel | LinearHead:
        return self.heads[name] if self.uses_heads() and name in self.heads else self.classes[name]

    def threshold(self, name: str) -> float:
        """The probability above which the class rejects: the watermark CNN's, the heads' where they are loaded
        (for the mean of stumps and head), else the stumps'."""
        if name == "watermark" and self.watermark is not None:
            return self.watermark.threshold
        return self._decision(name).threshold

    def with_rule(self, name: str) -> bool:
        """Whether the class's rule also rejects (chosen with the thresholds, so it follows them)."""
        return name in self.classes and self._decision(name).with_rule

    def reasons(self, rule_scores: Mapping[str, float], probabilities: Mapping[str, float],
                thresholds: filters.FilterThresholds) -> list[str]:
        """The classes that reject this tile, in ``FILTER_NAMES`` order: a stump-modelled class when its
        probability is above its threshold (or, ``with_rule``, its rule fires); watermark by the CNN alone when
        loaded; the rule elsewhere."""
        by_rule = set(filters.rejection_reasons(rule_scores, thresholds, self.rules_needed()))
        reasons = []
        for name in filters.FILTER_NAMES:
            if self.decides(name):
                value = float(probabilities[name])
                if math.isnan(value):
                    raise ValueError(f"model probability for {name!r} is NaN")
                rule_too = self.with_rule(name) and name in by_rule
                if value > self.threshold(name) or rule_too:
                    reasons.append(name)
            elif name in by_rule:
                reasons.append(name)
        return reasons

    def to_json(self) -> str:
        payload = {
            "format": MODEL_FORMAT, "tile_size": self.tile_size, "feature_names": list(self.feature_names),
            "trained_on": self.trained_on,
            "classes": {name: {"base": m.base, "threshold": m.threshold, "with_rule": m.with_rule,
                               "stumps": [list(s) for s in m.stumps]} for name, m in self.classes.items()},
        }
        if self.linear_inputs is not None:
            payload["linear"] = {
                "trunk": self.linear_inputs.trunk, "columns": list(self.linear_inputs.columns),
                "mean": list(self.linear_inputs.mean),
                "std": list(self.linear_inputs.std),
                "classes": {name: {"weights": list(h.weights), "bias": h.bias, "threshold": h.threshold,
                                   "with_rule": h.with_rule} for name, h in self.heads.items()},
            }
        return json.dumps(payload, indent=1, sort_keys=True)

    def fingerprint(self) -> str:
        """A short hash of the model (and the watermark weights): score caches of another model are not reused.
        Computed once per model object (ingest asks for it per painting; the JSON and the hash take ~20 ms)."""
        return self._fingerprint

    @functools.cached_property
    def _fingerprint(self) -> str:
        digest = hashlib.sha256(self.to_json().encode())
        if self.watermark is not None:
            digest.update(sha256_file(self.watermark.path).encode())
        if self.text is not None:
            digest.update(sha256_file(self.text.path).encode())
        if self.uses_heads():  # the trunk's weights are hash-pinned by their provisioning: the name says which
            digest.update(f"trunk {self.trunk.path.name}".encode())
        return digest.hexdigest()[:12]

    def save(self, path: Path) -> Path:
        return write_text_atomic(Path(path), self.to_json() + "\n")


def load_model(path: Path | str) -> TileModel:
    """Read a model file; :class:`TileModelError` naming the file and the reason when it is unusable."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TileModelError(f"{path}: cannot read the tile model ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise TileModelError(f"{path}: not a tile model of format {MODEL_FORMAT}")
    names = tuple(payload.get("feature_names", ()))
    if names not in (FEATURE_NAMES, WITH_TEXT):
        raise TileModelError(f"{path}: trained on other features than this code computes; retrain it with "
                             "bench/train_tile_model.py")
    try:
        classes = {name: ClassModel(float(c["base"]), tuple((int(i), float(s), float(l), float(r))
                                                              for i, s, l, r in c["stumps"]), float(c["threshold"]),
                                    bool(c.get("with_rule", False)))
                   for name, c in payload["classes"].items()}
        tile_size = int(payload["tile_size"])
    except (KeyError, TypeError, ValueError) as error:
        raise TileModelError(f"{path}: malformed tile model ({error!r})") from None
    unknown = sorted(set(classes) - set(filters.FILTER_NAMES))
    bad_index = [n for n, m in classes.items() if any(not 0 <= s[0] < len(names) for s in m.stumps)]
    if unknown or bad_index:
        raise TileModelError(f"{path}: unknown classes {unknown} or feature indices out of range in {bad_index}")
    inputs, heads = _linear_part(path, payload.get("linear"), names, classes)
    return TileModel(tile_size, classes, names, str(payload.get("trained_on", "")), heads, inputs)


def _linear_part(path: Path, linear: object, names: Sequence[str], classes: Mapping[str, ClassModel]
                 ) -> tuple[LinearInputs | None, dict[str, LinearHead]]:
    """The optional ``linear`` block of a model file: the heads and what they read, checked against this code's
    trunk features."""
    if linear is None:
        return None, {}
    from lpd_pipeline.curation import trunk_features

    try:
        inputs = LinearInputs(str(linear["trunk"]), tuple(int(v) for v in linear["columns"]),
                              tuple(float(v) for v in linear["mean"]), tuple(float(v) for v in linear["std"]))
        heads = {name: LinearHead(tuple(float(v) for v in h["weights"]), float(h["bias"]), float(h["threshold"]),
                                  bool(h.get("with_rule", False)))
                 for name, h in linear["classes"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise TileModelError(f"{path}: malformed linear heads ({error!r})") from None
    if inputs.trunk != trunk_features.NAME:
        raise TileModelError(f"{path}: linear heads fitted on trunk features {inputs.trunk!r}, this code computes "
                             f"{trunk_features.NAME!r}; retrain it with bench/train_tile_model.py")
    width, available = len(inputs.columns), len(names) + trunk_features.FEATURE_COUNT
    wrong = [n for n, h in heads.items() if len(h.weights) != width or n not in classes]
    if (len(inputs.mean) != width or len(inputs.std) != width or wrong or min(inputs.std, default=1.0) <= 0
            or any(not 0 <= j < available for j in inputs.columns)):
        raise TileModelError(f"{path}: linear heads of the wrong width, columns out of range or heads for "
                             f"classes without stumps ({wrong})")
    return inputs, heads


@functools.cache
def resolve_model(setting: str, tile_size: int) -> TileModel | None:
    """The model a curation setting names (``bundled``, ``none`` or the path of a model JSON, with the watermark
    weights beside it as ``watermark_net.pt`` and the text detector's as ``text_net.pt`` when present), or None
    for the rules: also when the bundled file is absent or the model was trained on another tile size. Without
    ``text_net.pt``, the classes whose stumps read it are left to their rules (and the linear heads are off);
    without the AlexNet weights (the metric weights), the heads are off and the stumps decide with their own
    thresholds. Loaded once per process."""
    if setting == "none":
        return None
    path = BUNDLED_MODEL if setting == "bundled" else Path(setting)
    if setting == "bundled" and not path.is_file():
        return None
    model = load_model(path)
    if model.tile_size != tile_size:
        return None
    weights, text_weights = path.with_name(BUNDLED_WEIGHTS.name), path.with_name(text_net.BUNDLED_WEIGHTS.name)
    if model.reads_text() and text_weights.is_file():
        model = replace(model, text=TextNet(text_weights))
    elif model.reads_text():
        log.warning("%s not found: the tile model's %s classes are decided by their rules instead", text_weights,
                    ", ".join(model.text_readers()))
        model = model.without_text()
    if model.heads:
        model = _with_trunk(model)
    if not weights.is_file():
        log.warning("%s not found: watermarks are decided by the watermark rule instead of the CNN", weights)
        return model
    return replace(model, watermark=WatermarkNet(weights))


def _with_trunk(model: TileModel) -> TileModel:
    """The model with the ImageNet trunk its heads read, or its stumps alone (their own thresholds) when the
    AlexNet weights are not provisioned."""
    from lpd_pipeline.curation.trunk_features import TrunkFeatures
    from lpd_pipeline.metrics.alexnet import AlexNetWeightsMissing

    try:
        return replace(model, trunk=TrunkFeatures())
    except AlexNetWeightsMissing as error:
        log.warning("%s; until then the tile model's stumps decide alone, with their own thresholds", error)
        return model.without_heads()


# --------------------------------------------------------------------------------------------------------------
# Fitting (used by bench/train_tile_model.py)


def _bin_edges(features: np.ndarray, bins: int) -> list[np.ndarray]:
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    return [np.unique(np.quantile(features[:, j], quantiles)) for j in range(features.shape[1])]


def fit_class(features: np.ndarray, labels: np.ndarray, *, rounds: int = 150, learning_rate: float = 0.1,
              l2: float = 1.0, bins: int = 32, threshold: float = 0.5, with_rule: bool = False,
              weights: np.ndarray | None = None) -> ClassModel:
    """Gradient-boosted stumps on the logistic loss (Newton steps, L2 on leaf values, quantile splits);
    ``weights``: per-tile weights of the loss (default 1)."""
    labels = np.asarray(labels, np.float64)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    edges = _bin_edges(features, bins)
    binned = np.stack([np.searchsorted(e, features[:, j], side="right") for j, e in enumerate(edges)], axis=1)
    width = max(len(e) for e in edges) + 1
    prior = float(np.clip((labels * weights).sum() / weights.sum(), 1e-3, 1 - 1e-3))
    base = math.log(prior / (1 - prior))
    logit = np.full(len(labels), base)
    stumps = []
    for _ in range(rounds):
        best = _best_stump(binned, edges, labels, weights, logit, width, l2)
        if best is None:
            break
        index, split, left, right = best
        stumps.append((index, split, learning_rate * left, learning_rate * right))
        logit += np.where(features[:, index] < split, learning_rate * left, learning_rate * right)
    return ClassModel(base, tuple(stumps), threshold, with_rule)


def _best_stump(binned: np.ndarray, edges: Sequence[np.ndarray], labels: np.ndarray, weights: np.ndarray,
                logit: np.ndarray, width: int, l2: float) -> tuple[int, float, float, float] | None:
    p = 1.0 / (1.0 + np.exp(-logit))
    grad, hess = weights * (p - labels), weights * p * (1 - p)
    total_g, total_h = grad.sum(), hess.sum()
    parent = total_g**2 / (total_h + l2)
    best_gain, best = 1e-12, None
    for j in range(binned.shape[1]):
        g_left = np.cumsum(np.bincount(binned[:, j], grad, width))[:-1]
        h_left = np.cumsum(np.bincount(binned[:, j], hess, width))[:-1]
        g_right, h_right = total_g - g_left, total_h - h_left
        ok = (h_left > 1.0) & (h_right > 1.0)
        gain = np.where(ok, g_left**2 / (h_left + l2) + g_right**2 / (h_right + l2) - parent, -1.0)
        k = int(np.argmax(gain))
        if gain[k] > best_gain and k < len(edges[j]):
            best_gain = float(gain[k])
            best = (j, float(edges[j][k]), float(-g_left[k] / (h_left[k] + l2)),
                    float(-g_right[k] / (h_right[k] + l2)))
    return best


def fit_linear(inputs: np.ndarray, labels: np.ndarray, *, l2: float = 0.01, weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, float]:
    """A logistic head on standardised ``inputs``: (weights, bias) minimising the weighted mean logistic loss
    plus ``l2`` times the squared weights (L-BFGS in float64; deterministic on one torch thread)."""
    import torch

    x = torch.tensor(np.asarray(inputs, np.float64))
    y = torch.tensor(np.asarray(labels, np.float64))
    w = torch.ones(len(y), dtype=torch.float64) if weights is None else torch.tensor(np.asarray(weights, np.float64))
    coef = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([coef, bias], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = (w * torch.nn.functional.binary_cross_entropy_with_logits(x @ coef + bias, y, reduction="none")
                 ).sum() / w.sum() + l2 * coef.pow(2).sum()
        value.backward()
        return value

    optimiser.step(loss)
    return coef.detach().numpy().copy(), float(bias.detach()[0])
