"""Provenance: what the sources know (URL, page, licence, sidecar columns) reaches paintings.parquet and the
UI's table, with URLs redacted and every cell escaped."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lpd_pipeline.curation import dataset as curation
from lpd_pipeline.curation.previews import provenance_markdown
from lpd_pipeline.sources.local import scan_local_folder
from lpd_pipeline.sources.records import RawPainting, provenance_json
from lpd_pipeline_tests.http_fixtures import image_bytes

SECRET_URL = "https://user:hunter2@images.example/a.jpg?token=abc123def456ghi789jkl012mno&size=large"


def _folder(tmp_path):
    root = tmp_path / "paintings"
    (root / "web").mkdir(parents=True)
    (root / "a.png").write_bytes(image_bytes("PNG", seed=1, size=(96, 80)))
    (root / "web" / "b.png").write_bytes(image_bytes("PNG", seed=2, size=(96, 80)))
    (root / "metadata.csv").write_text(
        "file,title,license,url,page,collector\n"
        f'a.png,Autumn <b>hills</b>,CC0,"{SECRET_URL}",https://museum.example/object/7,Wang [link](http://x)\n',
        encoding="utf-8")
    (root / "web" / "MANIFEST.tsv").write_text(
        "group\tfile\trepo\tnote\nink\tb.png\towner/repo\tweb-crawled | may carry a watermark\n"
        "ink\tgone.png\towner/repo\tnot here\n", encoding="utf-8")
    return root


def test_sidecar_columns_become_provenance(tmp_path):
    paintings, failures = scan_local_folder(_folder(tmp_path))
    assert failures == []
    by_ref = {p.source_ref: p for p in paintings}
    a, b = by_ref["a.png"], by_ref["web/b.png"]
    assert a.title == "Autumn <b>hills</b>" and a.license == "CC0"
    assert a.source_url == SECRET_URL and a.source_page == "https://museum.example/object/7"
    assert a.extra == {"collector": "Wang [link](http://x)"}
    # The TSV's columns are provenance only: its "group" never sets the kind.
    assert b.kind is None and b.extra == {"group": "ink", "repo": "owner/repo",
                                          "note": "web-crawled | may carry a watermark"}


def test_provenance_reaches_paintings_table_redacted(tmp_path):
    items, _ = scan_local_folder(_folder(tmp_path))
    paintings, rejections = curation.ingest_paintings(items, curation.CurationConfig(workers=1))
    assert rejections.empty
    row = paintings.set_index("source_ref").loc["a.png"]
    assert "hunter2" not in row["source_url"] and "abc123def456" not in row["source_url"]
    assert row["source_url"].startswith("https://***@images.example/a.jpg?") and "size=large" in row["source_url"]
    assert row["source_page"] == "https://museum.example/object/7"
    assert json.loads(row["provenance"]) == {"collector": "Wang [link](http://x)"}
    assert json.loads(paintings.set_index("source_ref").loc["web/b.png", "provenance"])["repo"] == "owner/repo"


def test_provenance_json_redacts_urls_and_drops_empty_values():
    text = provenance_json({"image_url": SECRET_URL, "b": "", "a": 3})
    assert json.loads(text) == {"a": "3", "image_url": json.loads(text)["image_url"]}
    assert "hunter2" not in text and "REDACTED" in text
    record = RawPainting(path=Path("/nonexistent/x.png"), source="met", source_ref="7", source_url=SECRET_URL)
    assert "hunter2" not in record.to_row()["source_url"]


def test_provenance_markdown_escapes_every_cell(tmp_path):
    items, _ = scan_local_folder(_folder(tmp_path))
    paintings, _ = curation.ingest_paintings(items, curation.CurationConfig(workers=1))
    table = provenance_markdown(paintings)
    assert "<b>" not in table and "&lt;b&gt;" in table
    assert "](" not in table  # no link survives: brackets and parentheses are escaped
    assert "hunter2" not in table
    assert table.count("\n") >= 3
    assert provenance_markdown(pd.DataFrame()) == "No provenance recorded."
