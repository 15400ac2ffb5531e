"""The local folder source: recursive scan, skips, symlinks, and the metadata.csv sidecar."""

from __future__ import annotations

import os

import pytest

from lpd_pipeline.sources.local import scan_local_folder
from lpd_pipeline_tests.http_fixtures import image_bytes


def write(path, data: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "paintings"
    write(root / "b.png", image_bytes("PNG", seed=1))
    write(root / "a" / "z.JPG", image_bytes("JPEG", seed=2))
    write(root / "a" / "deep" / "m.tiff", image_bytes("TIFF", seed=3))
    write(root / "c.WebP", image_bytes("WEBP", seed=4))
    write(root / "d.bmp", image_bytes("BMP", seed=5))
    write(root / ".hidden.png", image_bytes("PNG", seed=6))
    write(root / ".b.k2j3.tmp.png", b"\x89PNG partial")  # our atomic-write temp name
    write(root / "half.jpg.part", b"\xff\xd8\xff partial")
    write(root / ".git" / "inside.png", image_bytes("PNG", seed=7))
    write(root / "notes.txt", b"hello")
    write(root / "anim.gif", image_bytes("GIF", seed=8))
    write(root / "fake.jpg", b"<html>not an image</html>")
    return root


def test_scan_is_recursive_sorted_and_skips_what_it_should(folder):
    paintings, failures = scan_local_folder(folder)
    # fake.jpg is listed: telling bad content apart is the decoder's job (see test_imaging).
    assert [p.source_ref for p in paintings] == ["a/deep/m.tiff", "a/z.JPG", "b.png", "c.WebP", "d.bmp", "fake.jpg"]
    assert all(p.source == "local" and p.kind is None and p.path.is_file() for p in paintings)
    assert all(p.path.is_relative_to(folder.resolve()) for p in paintings)
    assert failures == []
    assert scan_local_folder(folder)[0] == paintings  # deterministic


def test_symlinks_never_lead_out_of_the_root(folder, tmp_path):
    outside = tmp_path / "outside"
    write(outside / "secret.png", image_bytes("PNG", seed=9))
    os.symlink(outside / "secret.png", folder / "link_out.png")
    os.symlink(outside, folder / "linked_dir")
    os.symlink(folder / "b.png", folder / "link_in.png")
    paintings, failures = scan_local_folder(folder)
    refs = [p.source_ref for p in paintings]
    assert "link_in.png" in refs and "link_out.png" not in refs
    assert not any(ref.startswith("linked_dir") for ref in refs)
    assert ("link_out.png", "symlink_outside_root") in [(f.item, f.reason) for f in failures]


def test_metadata_sidecar_fills_fields_and_bad_rows_become_failures(folder):
    (folder / "metadata.csv").write_text(
        "file,title,artist,date,medium,license,kind\n"
        "b.png,Spring Dawn,Qiu Ying,1540,Ink on silk,PD,colored\n"  # explicit kind beats the medium
        "a/z.JPG,River,Ni Zan,1372,Handscroll; ink on paper,CC0,\n"  # kind from medium
        "./c.WebP,Peaks,,,Oil on canvas,,\n"  # no kind anywhere -> decide from the image
        "d.bmp,Bad,,,,,purple\n"
        "../outside.png,Escape,,,,,\n"
        "/etc/passwd,Escape,,,,,\n"
        "missing.png,Ghost,,,,,\n"
        "b.png,Twice,,,,,\n"
        ",,,,,,\n",
        encoding="utf-8",
    )
    paintings, failures = scan_local_folder(folder)
    by_ref = {p.source_ref: p for p in paintings}
    spring = by_ref["b.png"]
    assert (spring.title, spring.artist, spring.date, spring.medium, spring.license, spring.kind) == (
        "Spring Dawn", "Qiu Ying", "1540", "Ink on silk", "PD", "colored"
    )
    assert by_ref["a/z.JPG"].kind == "ink" and by_ref["a/z.JPG"].title == "River"
    assert by_ref["c.WebP"].title == "Peaks" and by_ref["c.WebP"].kind is None
    assert by_ref["d.bmp"].title == "" and by_ref["d.bmp"].kind is None  # its row was rejected
    assert sorted((f.item, f.reason) for f in failures if f.item.startswith("metadata.csv")) == [
        ("metadata.csv:5", "bad_metadata_row"),
        ("metadata.csv:6", "bad_metadata_row"),
        ("metadata.csv:7", "bad_metadata_row"),
        ("metadata.csv:8", "metadata_file_missing"),
        ("metadata.csv:9", "bad_metadata_row"),
    ]


@pytest.mark.parametrize(
    "content",
    [b"name,title\nb.png,X\n", b"\xff\xfe\x00garbage\x00", b"", b"file,title\nb.png,X,extra-cell\n"],
    ids=["no-file-column", "not-utf8", "empty", "extra-cell"],
)
def test_broken_metadata_csv_is_a_failure_not_a_crash(folder, content):
    (folder / "metadata.csv").write_bytes(content)
    paintings, failures = scan_local_folder(folder)
    assert len(paintings) == 6 and all(p.title == "" for p in paintings)
    assert any(f.item.endswith("metadata.csv") or f.item.startswith("metadata.csv") for f in failures)


def test_missing_or_non_folder_root_raises_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        scan_local_folder(tmp_path / "nowhere")
    write(tmp_path / "file.png", b"x")
    with pytest.raises(NotADirectoryError, match="file.png"):
        scan_local_folder(tmp_path / "file.png")


def test_symlink_loops_and_dangling_links_are_failures_not_crashes(folder):
    os.symlink(folder / "loop.png", folder / "loop.png")
    os.symlink(folder / "missing.png", folder / "dangling.png")
    paintings, failures = scan_local_folder(folder)
    assert {"loop.png", "dangling.png"}.isdisjoint(p.source_ref for p in paintings)
    reasons = {(f.item, f.reason) for f in failures}
    assert {("loop.png", "broken_symlink"), ("dangling.png", "broken_symlink")} <= reasons


def test_metadata_cells_may_hold_unusual_line_break_characters(folder):
    (folder / "metadata.csv").write_text(
        "file,title,medium\nb.png,\"Spring\x0cRiver \u2028 at dawn\",ink and color on silk\n", encoding="utf-8")
    paintings, failures = scan_local_folder(folder)
    by_ref = {p.source_ref: p for p in paintings}
    assert failures == []
    assert by_ref["b.png"].kind == "colored" and by_ref["b.png"].title.startswith("Spring\x0cRiver")
