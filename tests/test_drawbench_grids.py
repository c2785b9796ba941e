"""Per-prompt 2×4 grids from a run's manifest."""

from __future__ import annotations

import pytest
from PIL import Image

from drawbench.fakes import write_fake_run
from drawbench.suites import load_suite
from harness.errors import UserError
from harness.formats.manifest import read_manifest
from harness.generation.grids import make_grid, write_grids

SUITE = load_suite("drawbench", categories=["Colors", "Text"], limit_per_category=1)
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (9, 9, 9), (128, 64, 32)]


def test_make_grid_lays_images_out_row_by_row():
    images = [Image.new("RGB", (10, 6), c) for c in COLOURS]
    grid = make_grid(images, rows=2, cols=4, pad=2)
    assert grid.size == (4 * 10 + 5 * 2, 2 * 6 + 3 * 2)
    for k, colour in enumerate(COLOURS):
        r, c = divmod(k, 4)
        assert grid.getpixel((2 + c * 12 + 5, 2 + r * 8 + 3)) == colour
    assert grid.getpixel((0, 0)) == (255, 255, 255)  # padding


def test_make_grid_cell_size_and_partial_sets():
    grid = make_grid([Image.new("RGB", (64, 32), "red")] * 3, rows=2, cols=4, pad=0, cell_size=16)
    assert grid.size == (64, 32)
    assert grid.getpixel((8, 8)) == (255, 0, 0) and grid.getpixel((56, 24)) == (255, 255, 255)
    with pytest.raises(ValueError, match="holds 1 to 8 images"):
        make_grid([Image.new("RGB", (4, 4))] * 9)


def test_write_grids_writes_one_sheet_per_prompt_from_the_final_stage(tmp_path):
    records = write_fake_run(tmp_path, SUITE)
    paths = write_grids(tmp_path, records, pad=0)
    assert [p.name for p in paths] == ["drawbench-0001.png", "drawbench-0180.png"]
    with Image.open(paths[0]) as grid:
        assert grid.size == (4 * 32, 2 * 32)  # sr256 fakes are 32 px; base64 ones 16
        with Image.open(tmp_path / "images/sr256/drawbench-0001/5.png") as seed5:
            assert grid.getpixel((32 + 5, 32 + 5)) == seed5.convert("RGB").getpixel((0, 0))
    assert not list((tmp_path / "grids").glob(".*"))  # no temporary files left behind


def test_missing_seed_or_file_is_refused_before_anything_is_written(tmp_path):
    records = write_fake_run(tmp_path, SUITE, stages=[("sr256", 32)])
    partial = [r for r in records if not (r.prompt_id == "drawbench-0180" and r.seed == 6)]
    with pytest.raises(UserError, match=r"drawbench-0180: no image for seed\(s\) 6"):
        write_grids(tmp_path, partial, seeds=list(range(8)))
    with pytest.raises(UserError, match=r"drawbench-0180: it has 7 images"):
        write_grids(tmp_path, partial)
    (tmp_path / "images/sr256/drawbench-0180/3.png").unlink()
    with pytest.raises(UserError, match=r"drawbench-0180: image .*3\.png \(seed 3\) is missing"):
        write_grids(tmp_path, read_manifest(tmp_path))
    assert not (tmp_path / "grids").exists()
