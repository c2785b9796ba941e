"""Another system's images from a folder: both layouts, refusals that name the prompt, import as a run."""

from __future__ import annotations

import json

import pytest

from drawbench.external import import_external_run, load_external_images
from drawbench.fakes import write_external_folder, write_fake_run
from drawbench.suites import load_suite
from harness.errors import UserError
from harness.formats.manifest import read_manifest, verified_records
from harness.formats.runs import load_run

SUITE = load_suite("drawbench", categories=["Colors", "Text"], limit_per_category=2)  # 4 prompts


def test_by_id_layout_is_loaded_in_suite_and_seed_order(tmp_path):
    write_external_folder(tmp_path / "ext", SUITE)
    images = load_external_images(tmp_path / "ext", SUITE)
    assert len(images) == 4 * 8
    assert [(i.item.prompt_id, i.seed) for i in images[:9]] == [("drawbench-0001", s) for s in range(8)] + [
        ("drawbench-0002", 0)
    ]
    item, seed, path = images[-1]  # unpacks as (PromptItem, seed, Path)
    assert (item.prompt_id, seed, path.name) == ("drawbench-0181", 7, "7.png")


def test_by_index_layout_with_zero_padding_and_jpeg(tmp_path):
    write_external_folder(tmp_path / "ext", SUITE, layout="by_index", index_width=3, ext=".jpg")
    assert (tmp_path / "ext/180/0.jpg").is_file()  # drawbench-0180 is row 180 of the file
    images = load_external_images(tmp_path / "ext", SUITE)
    assert {i.item.prompt_id for i in images} == {
        "drawbench-0001",
        "drawbench-0002",
        "drawbench-0180",
        "drawbench-0181",
    }
    assert images[16].path.parent.name == "180"


def test_missing_image_is_refused_naming_prompt_and_seed(tmp_path):
    write_external_folder(tmp_path / "ext", SUITE)
    (tmp_path / "ext/drawbench-0180/5.png").unlink()
    with pytest.raises(UserError) as err:
        load_external_images(tmp_path / "ext", SUITE)
    msg = str(err.value)
    assert "drawbench-0180" in msg and "A storefront with 'Hello World' written on it." in msg
    assert "seed 5" in msg and "1 of 32 images missing" in msg and "\n" not in msg


def test_missing_prompt_folder_in_index_layout_is_named(tmp_path):
    write_external_folder(tmp_path / "ext", SUITE, layout="by_index")
    for f in (tmp_path / "ext/2").iterdir():
        f.unlink()
    with pytest.raises(UserError, match=r"drawbench-0002 'A black colored car\.' seed 0 .*8 of 32"):
        load_external_images(tmp_path / "ext", SUITE)


def test_unreadable_or_ambiguous_images_are_refused(tmp_path):
    write_external_folder(tmp_path / "ext", SUITE)
    (tmp_path / "ext/drawbench-0002/3.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"0002/3\.png \(drawbench-0002, seed 3\) is not a readable image"):
        load_external_images(tmp_path / "ext", SUITE)
    write_external_folder(tmp_path / "ext", SUITE)
    (tmp_path / "ext/drawbench-0002/3.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="two images for seed 3"):
        load_external_images(tmp_path / "ext", SUITE)


def test_folder_without_a_known_layout_is_refused(tmp_path):
    (tmp_path / "ext/cats").mkdir(parents=True)
    with pytest.raises(UserError, match="neither <prompt_id>/ folders"):
        load_external_images(tmp_path / "ext", SUITE)
    with pytest.raises(UserError, match="does not exist"):
        load_external_images(tmp_path / "nope", SUITE)


def test_import_makes_a_run_that_looks_like_ours(tmp_path):
    write_external_folder(tmp_path / "ext", SUITE, size=24)
    run_dir = import_external_run(tmp_path / "ext", SUITE, None, tmp_path / "runs/dalle2", "dalle2-drawbench")
    records = read_manifest(run_dir)
    assert len(records) == 32 and len(verified_records(run_dir)) == 32  # checksums hold
    rec = records[0]
    assert (rec.stage, rec.resolution, rec.category, rec.path) == (
        "external",
        24,
        "Colors",
        "images/external/drawbench-0001/0.png",
    )
    meta = json.loads((run_dir / "external.json").read_text())
    assert meta["run_id"] == "dalle2-drawbench" and meta["suite"] == "drawbench" and meta["n_images"] == 32
    run = load_run(run_dir)
    assert (run.run_id, run.suite, run.stage) == ("dalle2-drawbench", "drawbench", "external")
    import_external_run(tmp_path / "ext", SUITE, None, run_dir, "dalle2-drawbench")  # replaced, not doubled
    assert len((run_dir / "manifest.jsonl").read_text().splitlines()) == 32


def test_import_refuses_to_overwrite_a_generation_run(tmp_path):
    write_external_folder(tmp_path / "ext", SUITE)
    write_fake_run(tmp_path / "ours", SUITE, stages=[("base64", 16)])
    with pytest.raises(UserError, match="already holds a generation run"):
        import_external_run(tmp_path / "ext", SUITE, None, tmp_path / "ours", "x")
