"""The survey kit (a static "spot the machine" quiz, as in the method's user study) and its scorer.

The rule: each question shows four images, exactly one generated; the three real ones are real coloured test
images of other paintings than the one whose gray the generated image was made from, and no painting is shown
real in one question and generated in another (so no real image gives its fake away); the four come from four
different paintings where the pool allows. Questions cycle through
the model variants; the question order and the positions are drawn from ``seed``. Survey copies are re-encoded
PNGs of the pixels only (no text chunks, no EXIF), all ``size`` x ``size``, named by random ids. The answer key
lives in its own JSON file, which must lie outside the published folder. Respondents download their answers as
CSV (``survey_id, respondent, question, choice``); :func:`score_survey` reads a folder of them and reports, per
variant, how often the fake was spotted, with a 95% Wilson interval, against the 25% chance level, and one-sided
binomial p-values. A malformed CSV is reported by name and left out; the others are still scored.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy import stats

from lpd_pipeline import imaging
from lpd_pipeline.curation.previews import markdown_text
from lpd_pipeline.files import write_bytes_atomic, write_text_atomic
from lpd_pipeline.reports.publish import build_folder
from lpd_pipeline.reports.site import variant_order, copy_static, template_environment

CHOICES = 4
CHANCE = 1.0 / CHOICES
ANSWER_COLUMNS = ("survey_id", "respondent", "question", "choice")
SCORE_COLUMNS = ("variant", "answers", "respondents", "fakes_spotted", "rate", "ci_low", "ci_high", "chance",
                 "p_above_chance", "p_below_chance")
KEY_FORMAT = "lpd-survey-key-v1"


@dataclass
class SurveyKit:
    index: Path
    key_path: Path
    survey_id: str
    questions: int
    variants: tuple[str, ...]
    skipped: list[str] = field(default_factory=list)  # images left out (unreadable), with the reason

    @property
    def url(self) -> str:
        return self.index.as_uri()


@dataclass(frozen=True)
class SurveyFileError:
    """An answers CSV left out, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class SurveyScores:
    table: pd.DataFrame  # SCORE_COLUMNS: one row per variant, then "all"
    respondents: int
    files: list[Path] = field(default_factory=list)  # the CSVs scored
    errors: list[SurveyFileError] = field(default_factory=list)  # each CSV left out, with the reason


def _square(rgb: np.ndarray, size: int) -> np.ndarray:
    """The centred square crop of ``rgb``, resized to ``size`` pixels (area averaging when shrinking)."""
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = rgb[top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(crop)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def _fake_pool(real: pd.DataFrame, generated: pd.DataFrame, need: dict[str, int], questions: int,
               rng: np.random.Generator) -> set[str]:
    """The paintings whose generated images are used; every other painting may be shown real. About a quarter
    of the paintings (variety among the fakes), more or fewer when the pool needs it."""
    paintings = sorted(set(generated["painting_id"].astype(str)))
    paintings = [paintings[i] for i in rng.permutation(len(paintings))]
    target = max(1, round(len(set(real["painting_id"].astype(str)) | set(paintings)) / CHOICES))
    target = min(target, len(paintings))
    for size in [*range(target, len(paintings) + 1), *range(target - 1, 0, -1)]:
        pool = set(paintings[:size])
        in_pool = generated["painting_id"].astype(str).isin(pool)
        enough_fakes = all((in_pool & (generated["variant"].astype(str) == v)).sum() >= n for v, n in need.items())
        if enough_fakes and (~real["painting_id"].astype(str).isin(pool)).sum() >= questions * (CHOICES - 1):
            return pool
    raise ValueError(
        f"cannot build {questions} questions: they need {', '.join(f'{n} generated {v}' for v, n in need.items())} "
        f"image(s) and {questions * (CHOICES - 1)} real images of other paintings than the generated ones; have "
        f"{len(real)} real images and {len(generated)} generated ones of {len(paintings)} paintings")


def _assign(real: pd.DataFrame, generated: pd.DataFrame, questions: int, rng: np.random.Generator
            ) -> list[tuple[pd.Series, list[pd.Series]]]:
    variants = variant_order(sorted(set(generated["variant"].astype(str))))
    plan = [variants[i % len(variants)] for i in range(questions)]
    plan = [plan[i] for i in rng.permutation(questions)]
    pool = _fake_pool(real, generated, {v: plan.count(v) for v in variants}, questions, rng)
    generated = generated[generated["painting_id"].astype(str).isin(pool)]
    real = real[~real["painting_id"].astype(str).isin(pool)]
    fakes = {v: [row for _, row in rows.iloc[rng.permutation(len(rows))].iterrows()]
             for v, rows in generated.groupby(generated["variant"].astype(str))}
    reals = [row for _, row in real.iloc[rng.permutation(len(real))].iterrows()]
    # Reals of a question come from different paintings when possible, and the paintings just shown go to the
    # back of the queue, so the survey shows as many paintings as it can.
    remaining = reals
    assigned = []
    for number, variant in enumerate(plan, start=1):
        fake = fakes[variant][plan[:number - 1].count(variant)]
        picks: list[pd.Series] = []
        for distinct in (True, False):
            for candidate in remaining:
                if len(picks) == CHOICES - 1:
                    break
                if any(candidate is p for p in picks):
                    continue
                if distinct and str(candidate["painting_id"]) in {str(p["painting_id"]) for p in picks}:
                    continue
                picks.append(candidate)
        shown = {str(p["painting_id"]) for p in picks}
        left = [r for r in remaining if not any(r is p for p in picks)]
        remaining = [r for r in left if str(r["painting_id"]) not in shown] + [
            r for r in left if str(r["painting_id"]) in shown]
        assigned.append((fake, picks))
    return assigned


def build_survey_kit(
    published_dir: str | os.PathLike,
    key_path: str | os.PathLike,
    real: pd.DataFrame,
    generated: pd.DataFrame,
    *,
    questions: int = 10,
    seed: int = 0,
    size: int = 256,
    title: str = "Which one was colorized by a machine?",
    max_pixels: int = imaging.DEFAULT_MAX_PIXELS,
) -> SurveyKit:
    """Publish the quiz in ``published_dir`` (replaced whole) and write its answer key to ``key_path``.

    ``real``: columns ``path``, ``painting_id`` (real coloured test images). ``generated``: ``path``,
    ``painting_id`` (the painting whose gray was colorized), ``variant``.
    """
    for name, frame, needed in (("real", real, ("path", "painting_id")),
                                ("generated", generated, ("path", "painting_id", "variant"))):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} images table lacks column(s) {missing}")
    if questions < 1 or size < 16:
        raise ValueError(f"questions must be >= 1 and size >= 16, got {questions}, {size}")
    if generated.empty:
        raise ValueError("no generated images to put in the survey")
    published_dir, key_path = Path(published_dir).resolve(), Path(key_path).resolve()
    if key_path == published_dir or published_dir in key_path.parents:
        raise ValueError(f"the answer key {key_path} must lie outside the published folder {published_dir}")
    skipped: list[str] = []
    real, generated = _readable(real, max_pixels, skipped), _readable(generated, max_pixels, skipped)
    rng = np.random.default_rng(seed)
    assigned = _assign(real, generated, questions, rng)
    survey_id = secrets.token_hex(6)
    key_questions, page_questions = [], []
    with build_folder(published_dir) as build:
        copy_static(build / "assets", "survey.css", "survey.js")
        (build / "img").mkdir()
        for number, (fake, reals) in enumerate(assigned, start=1):
            items = [(fake, True), *((r, False) for r in reals)]
            items = [items[i] for i in rng.permutation(CHOICES)]
            ids = []
            for row, _ in items:
                image_id = secrets.token_hex(8)
                pixels = _square(imaging.decode_image(row["path"], max_pixels), size)
                # encode_png writes pixels only: no text chunks, no EXIF, nothing naming the source.
                write_bytes_atomic(build / "img" / f"{image_id}.png", imaging.encode_png(pixels))
                ids.append(image_id)
            fake_id = ids[[is_fake for _, is_fake in items].index(True)]
            key_questions.append({
                "number": number, "variant": str(fake["variant"]), "fake": fake_id, "images": ids,
                "fake_painting": str(fake["painting_id"]), "fake_source": str(fake["path"]),
                "real_paintings": [str(r["painting_id"]) for r in reals],
                "real_sources": [str(r["path"]) for r in reals],
            })
            page_questions.append({"number": number, "images": ids})
        html = template_environment().get_template("survey.html.j2").render(
            title=title, survey_id=survey_id, questions=page_questions, choices=CHOICES,
            columns=list(ANSWER_COLUMNS))
        write_text_atomic(build / "index.html", html)
        key = {"format": KEY_FORMAT, "survey_id": survey_id, "seed": seed, "size": size,
               "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "published_dir": str(published_dir), "questions": key_questions}
        write_text_atomic(key_path, json.dumps(key, indent=1))
    variants = tuple(variant_order(sorted({q["variant"] for q in key_questions})))
    return SurveyKit(published_dir / "index.html", key_path, survey_id, len(key_questions), variants, skipped)


def _readable(frame: pd.DataFrame, max_pixels: int, skipped: list[str]) -> pd.DataFrame:
    """Rows whose image file opens (header check); the others are listed in ``skipped`` with the reason."""
    keep = []
    for path in frame["path"]:
        try:
            imaging.image_size(path, max_pixels)
            keep.append(True)
        except (imaging.ImageDecodeError, OSError) as exc:
            skipped.append(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
            keep.append(False)
    return frame[keep]


def read_survey_key(key_path: str | os.PathLike) -> dict:
    """The answer key, checked; a clear error naming the file otherwise."""
    key_path = Path(key_path)
    try:
        key = json.loads(key_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"survey answer key {key_path} does not exist: build the survey kit first") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"survey answer key {key_path} cannot be read: {exc}") from exc
    try:
        if key["format"] != KEY_FORMAT:
            raise ValueError(f"format {key['format']!r}, expected {KEY_FORMAT!r}")
        for question in key["questions"]:
            if question["fake"] not in question["images"] or len(question["images"]) != CHOICES:
                raise ValueError(f"question {question['number']} is inconsistent")
            str(question["variant"])
        str(key["survey_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"survey answer key {key_path} is not a valid key: {exc!r}") from exc
    return key


def _read_answers(path: Path, key: dict, questions: dict[int, dict]) -> list[tuple[str, int, bool]]:
    """``(respondent, question, spotted)`` rows of one answers CSV; ValueError with the reason if malformed."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ANSWER_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"missing column(s) {missing}; expected a header {','.join(ANSWER_COLUMNS)}")
    rows, seen = [], set()
    try:
        for line, record in enumerate(reader, start=2):
            if record["survey_id"] != key["survey_id"]:
                raise ValueError(f"line {line}: answers to survey {record['survey_id']!r}, but the key is for "
                                 f"survey {key['survey_id']!r}")
            try:
                number = int(record["question"])
            except (TypeError, ValueError):
                raise ValueError(f"line {line}: question {record['question']!r} is not a number") from None
            if number not in questions:
                raise ValueError(f"line {line}: no question {number} in this survey")
            if record["choice"] not in questions[number]["images"]:
                raise ValueError(f"line {line}: choice {record['choice']!r} is not an image of question {number}")
            respondent = (record["respondent"] or "").strip()
            if not respondent:
                raise ValueError(f"line {line}: empty respondent")
            if (respondent, number) in seen:
                raise ValueError(f"line {line}: respondent {respondent!r} answers question {number} twice")
            seen.add((respondent, number))
            rows.append((respondent, number, record["choice"] == questions[number]["fake"]))
    except csv.Error as exc:
        raise ValueError(f"not a valid CSV: {exc}") from None
    if not rows:
        raise ValueError("no answers in the file")
    return rows


def binomial_summary(spotted: int, answers: int, chance: float = CHANCE) -> dict:
    """Rate, 95% Wilson interval and one-sided binomial p-values against ``chance``.

    ``p_above_chance``: P(X >= spotted) under chance (small: people spot the fakes more often than guessing).
    ``p_below_chance``: P(X <= spotted) (small: the fakes fool people more than guessing would).
    """
    if answers == 0:
        nan = float("nan")
        return {"rate": nan, "ci_low": nan, "ci_high": nan, "p_above_chance": nan, "p_below_chance": nan}
    test = stats.binomtest(spotted, answers, chance)
    interval = test.proportion_ci(confidence_level=0.95, method="wilson")
    return {"rate": spotted / answers, "ci_low": float(interval.low), "ci_high": float(interval.high),
            "p_above_chance": float(stats.binomtest(spotted, answers, chance, alternative="greater").pvalue),
            "p_below_chance": float(stats.binomtest(spotted, answers, chance, alternative="less").pvalue)}


def score_survey(answers_dir: str | os.PathLike, key_path: str | os.PathLike) -> SurveyScores:
    """Score every ``*.csv`` in ``answers_dir`` (sorted by name) against the key.

    A respondent's answer to a question counts once: a later file repeating it is reported and left out.
    """
    key = read_survey_key(key_path)
    answers_dir = Path(answers_dir)
    if not answers_dir.is_dir():
        raise FileNotFoundError(f"survey answers folder {answers_dir} does not exist")
    questions = {int(q["number"]): q for q in key["questions"]}
    counted: dict[tuple[str, int], Path] = {}
    records, files, errors = [], [], []
    for path in sorted(answers_dir.glob("*.csv")):
        try:
            rows = _read_answers(path, key, questions)
            repeated = [(r, q) for r, q, _ in rows if (r, q) in counted]
            if repeated:
                respondent, number = repeated[0]
                raise ValueError(f"respondent {respondent!r} question {number} already counted from "
                                 f"{counted[(respondent, number)].name} (a second copy of the same answers?)")
        except (OSError, ValueError) as exc:
            errors.append(SurveyFileError(path, str(exc)))
            continue
        files.append(path)
        for respondent, number, spotted in rows:
            counted[(respondent, number)] = path
            records.append({"respondent": respondent, "variant": questions[number]["variant"], "spotted": spotted})
    frame = pd.DataFrame(records, columns=["respondent", "variant", "spotted"])
    table = []
    variants = variant_order(sorted({str(q["variant"]) for q in key["questions"]}))
    for variant, rows in [*((v, frame[frame["variant"] == v]) for v in variants), ("all", frame)]:
        spotted, answers = int(rows["spotted"].sum()), len(rows)
        table.append({"variant": variant, "answers": answers, "respondents": rows["respondent"].nunique(),
                      "fakes_spotted": spotted, "chance": CHANCE, **binomial_summary(spotted, answers)})
    table = pd.DataFrame(table)[list(SCORE_COLUMNS)]
    return SurveyScores(table, int(frame["respondent"].nunique()), files, errors)


def scores_markdown(table: pd.DataFrame) -> str:
    """The score table as markdown (numbers only, so nothing needs escaping beyond the variant names)."""
    lines = ["| variant | answers | spotted | rate | 95% CI (Wilson) | p (> 25%) | p (< 25%) |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    for row in table.itertuples(index=False):
        rate = "–" if math.isnan(row.rate) else f"{row.rate:.1%}"
        interval = "–" if math.isnan(row.ci_low) else f"{row.ci_low:.1%} – {row.ci_high:.1%}"
        p_above = "–" if math.isnan(row.p_above_chance) else f"{row.p_above_chance:.3g}"
        p_below = "–" if math.isnan(row.p_below_chance) else f"{row.p_below_chance:.3g}"
        lines.append(f"| {markdown_text(row.variant)} | {row.answers} | {row.fakes_spotted} | {rate} | {interval} "
                     f"| {p_above} | {p_below} |")
    return "\n".join(lines)
