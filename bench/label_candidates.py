"""Candidate tiles for hand labelling, drawn as numbered contact sheets (issue 12, fourth pass).

    .venv/bin/python bench/label_candidates.py --out DIR [--shared ../shared] [--per-class 16] [--seed 0]
        [--text-count N] [--top CLASS=N ...] [--near CLASS,...]

Only paintings whose fold (``filter_accuracy.assign_fold``) is ``train`` are looked at, and only tiles not
labelled yet, so the frozen test fold never changes. Every grid tile (256 px, cut as the pipeline cuts them) is
decided by the bundled learned filter; a web painting with a side below 256 px gives the square crops of its short
side (as in docs/FILTER_RULES.md), scored by the watermark CNN only. Pools, at most two tiles per painting each:

- ``watermark_cnn``: the highest P(watermark) of the CNN (real site marks are rare: the CNN points at them);
- ``learned_score``: per stump-modelled class, the tiles whose probability lies nearest the class's threshold,
  from both sides (the hard cases: faint seals, red foliage, small calligraphy, texture strokes); ``--near``
  names the classes to look near (default all);
- ``web_random``: grid tiles of web paintings drawn at random (the collection's own mix, vivid web colour);
- ``text_net`` (``--text-count N``, issue 12 sixth pass): the N tiles the text detector (``text_net.pt``) rates
  highest: real calligraphy, and the brush textures, branches and signatures it confuses with it;
- ``<class>_top`` (``--top CLASS=N``, issue 12 seventh pass; the sixth pass drew ``inscription_top`` by hand the
  same way): the N tiles with the highest learned-filter P(class): for odd colour, casts of paintings not
  labelled yet and the aged silk and vivid pigment grounds the model confuses with them.

Writes ``DIR/candidates.csv`` (folder, file, x, y, size, selected_by, sheet, index, and each probability) and
``DIR/<pool>_<n>.png``: 12 tiles a sheet, numbered. The label comes from looking at the tile, never from the
score; the pool only says why it was looked at (``bench/labels/tile_selection.csv``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from filter_accuracy import read_labels, train_fold_paintings  # noqa: E402
from lpd_pipeline.curation import filters, text_net, tile_model  # noqa: E402
from lpd_pipeline.curation.tile_features import tile_features  # noqa: E402
from lpd_pipeline.curation.tiling import tile_origins  # noqa: E402
from lpd_pipeline.imaging import decode_image, save_image  # noqa: E402

TILE = 256
PER_SHEET = 12


def score_paintings(shared: Path, model: tile_model.TileModel, text: text_net.TextNet | None = None) -> list[dict]:
    """One row per unlabelled tile of a train-fold painting: where it is and the learned filter's probabilities
    (and ``p_text``, the text detector's, when ``text`` is given)."""
    labelled = {(row.painting, row.x, row.y, row.size) for row in read_labels()}
    rows = []
    for painting in train_fold_paintings(shared / "paintings"):
        folder, path = painting.rsplit("/", 1)[0], shared / "paintings" / painting
        rgb = decode_image(path)
        size = min(TILE, *rgb.shape[:2])
        tiles, keys = [], []
        for x, y in tile_origins(rgb.shape[0], rgb.shape[1], size, size):
            if (painting, x, y, size) not in labelled:
                tiles.append(np.ascontiguousarray(rgb[y:y + size, x:x + size]))
                keys.append({"folder": folder, "file": path.name, "x": x, "y": y, "size": size})
        if not tiles:
            continue
        watermark = model.watermark.probabilities(tiles)
        for key, tile, p_watermark in zip(keys, tiles, watermark):
            key["p_watermark"] = float(p_watermark)
            if size == TILE:
                images = filters._Tile(tile)
                scores = filters.scores_of(images, model.rules_to_skip())
                p = model.tile_probabilities(tile_features(tile, scores, images), [tile])[0]
                key.update({f"p_{n}": v for n, v in p.items() if n != "watermark"})
                if text is not None:  # (computed twice where the stumps read it: a bench tool)
                    key["p_text"] = float(text.probabilities([tile])[0])
            rows.append(key)
    return rows


def pick(rows: list[dict], order: np.ndarray, count: int, taken: set) -> list[dict]:
    """The first ``count`` rows in ``order`` not taken yet, at most two per painting."""
    per_painting: dict[str, int] = {}
    out: list[dict] = []
    if count <= 0:
        return out
    for i in order:
        row = rows[i]
        key, painting = (row["folder"], row["file"], row["x"], row["y"]), f"{row['folder']}/{row['file']}"
        if key in taken or per_painting.get(painting, 0) >= 2:
            continue
        taken.add(key)
        per_painting[painting] = per_painting.get(painting, 0) + 1
        out.append(row)
        if len(out) == count:
            break
    return out


def choose(rows: list[dict], model: tile_model.TileModel, per_class: int, seed: int,
           text_count: int = 0, top: dict[str, int] | None = None,
           near: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """The pools of candidates (module docstring); ``near``: the classes whose thresholds ``learned_score``
    looks near (default: every stump-modelled class)."""
    taken: set = set()
    pools = {f"{name}_top": pick(rows, np.argsort([-r.get(f"p_{name}", -1.0) for r in rows]), count, taken)
             for name, count in (top or {}).items()}
    pools["watermark_cnn"] = pick(rows, np.argsort([-r["p_watermark"] for r in rows]), per_class, taken)
    hard = []
    for name, class_model in model.classes.items():
        if near is not None and name not in near:
            continue
        distance = np.array([abs(np.log(r[f"p_{name}"] / class_model.threshold)) if f"p_{name}" in r else np.inf
                             for r in rows])
        hard += [dict(r, near=name) for r in pick(rows, np.argsort(distance), per_class, taken)]
    pools["learned_score"] = hard
    if any("p_text" in r for r in rows):  # the text detector's highest-rated tiles (issue 12, sixth pass)
        pools["text_net"] = pick(rows, np.argsort([-r.get("p_text", -1.0) for r in rows]), text_count, taken)
    web = [i for i, r in enumerate(rows) if r["folder"].startswith("web/") and r["size"] == TILE]
    pools["web_random"] = pick(rows, np.random.default_rng(seed).permutation(web), per_class, taken)
    return pools


def parse_top(specs: list[str]) -> dict[str, int]:
    """``["odd_colour=36"]`` -> ``{"odd_colour": 36}``; an error naming the spec for an unknown class or count."""
    top = {}
    for spec in specs:
        name, _, count = spec.partition("=")
        if name not in filters.FILTER_NAMES or name == "watermark" or not count.isdigit():
            raise SystemExit(f"--top {spec!r}: want CLASS=N with CLASS a stump-modelled filter "
                             f"({', '.join(n for n in filters.FILTER_NAMES if n != 'watermark')})")
        top[name] = int(count)
    return top


def contact_sheet(shared: Path, rows: list[dict], path: Path) -> None:
    """Up to 12 tiles at full size, 4 by 3, each with its number in the corner (outside the tile's pixels)."""
    sheet = np.full((3 * (TILE + 20), 4 * (TILE + 4), 3), 255, np.uint8)
    for index, row in enumerate(rows):
        rgb = decode_image(shared / "paintings" / row["folder"] / row["file"])
        tile = rgb[row["y"]:row["y"] + row["size"], row["x"]:row["x"] + row["size"]]
        top, left = (index // 4) * (TILE + 20) + 20, (index % 4) * (TILE + 4)
        sheet[top:top + tile.shape[0], left:left + tile.shape[1]] = tile
        cv2.putText(sheet, str(index), (left + 2, top - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    save_image(path, sheet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-count", type=int, default=0,
                        help="also the tiles the text detector rates highest (pool text_net), this many")
    parser.add_argument("--top", action="append", default=[], metavar="CLASS=N",
                        help="also the N tiles with the highest P(CLASS) of the learned filter (pool CLASS_top); "
                             "repeatable")
    parser.add_argument("--near", default=None, metavar="CLASS,...",
                        help="learned_score looks near these classes' thresholds only (default: all)")
    args = parser.parse_args()
    top = parse_top(args.top)
    near = None if args.near is None else args.near.split(",")
    if near is not None and set(near) - set(filters.FILTER_NAMES):
        sys.exit(f"--near {args.near!r}: unknown classes {sorted(set(near) - set(filters.FILTER_NAMES))}")
    model = tile_model.resolve_model("bundled", TILE)
    if model is None or model.watermark is None:
        sys.exit("the bundled learned filter (tile_model.json, watermark_net.pt) is needed")
    text = model.text or (text_net.TextNet() if args.text_count and text_net.BUNDLED_WEIGHTS.is_file() else None)
    rows = score_paintings(args.shared, model, text)
    args.out.mkdir(parents=True, exist_ok=True)
    fields = ["folder", "file", "x", "y", "size", "selected_by", "near", "sheet", "index",
              *(f"p_{n}" for n in filters.FILTER_NAMES), "p_text"]
    with open(args.out / "candidates.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields, extrasaction="ignore")
        writer.writeheader()
        for pool, chosen in choose(rows, model, args.per_class, args.seed, args.text_count, top, near).items():
            for start in range(0, len(chosen), PER_SHEET):
                sheet = f"{pool}_{start // PER_SHEET}"
                contact_sheet(args.shared, chosen[start:start + PER_SHEET], args.out / f"{sheet}.png")
                for index, row in enumerate(chosen[start:start + PER_SHEET]):
                    writer.writerow(dict(row, selected_by=pool, sheet=sheet, index=index))
    print(f"{len(rows)} unlabelled train-fold tiles scored; sheets and candidates.csv in {args.out}")


if __name__ == "__main__":
    main()
