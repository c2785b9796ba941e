"""Reading runs for the report: finding results.json, config differences, guidance families, samples, grids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.formats.values import OutputInfo
from reports import grids, plots
from reports.collect import differing_keys, families, find_results, load_runs, read_sample_frame
from tests.helpers.report_runs import DRAWBENCH, write_coco_run, write_drawbench_run


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    for ckpt, weights in {0: (1.0, 3.0, 6.0), 1: (2.0,)}.items():
        for w in weights:
            write_coco_run(
                tmp_path / "sweep" / f"c{ckpt}" / f"guidance.base={w:g}", f"c{ckpt}-w{w:g}", ckpt=ckpt, guidance=w
            )
    return tmp_path / "sweep"


def test_a_sweep_folder_is_searched_but_not_inside_runs(sweep: Path):
    # a results.json inside a run's images would be a run nested in a run: not looked for
    (sweep / "c0" / "guidance.base=1" / "images" / "results.json").write_text("{}")
    found = find_results([str(sweep)])
    assert [p.parent.name for p in found] == [
        "guidance.base=1",
        "guidance.base=3",
        "guidance.base=6",
        "guidance.base=2",
    ]
    assert find_results([str(sweep / "c0" / "guidance.base=*"), str(sweep / "c0")]) == found[:3]  # no duplicates
    with pytest.raises(UserError, match="no results.json in or under"):
        find_results([str(sweep / "c0" / "guidance.base=1" / "images" / "base16")])


def test_families_differ_only_in_guidance_and_points_are_labelled(sweep: Path):
    runs = load_runs([str(sweep)])
    fams = families(runs)
    assert [[r.run_id for r in f.runs] for f in fams] == [["c0-w1", "c0-w3", "c0-w6"], ["c1-w2"]]
    assert [f.label for f in fams] == ["c0", "c1-w2"]  # short: the run ids' common part; the full difference ...
    assert all(f.differs.startswith("ckpt base16:") for f in fams) and fams[0].differs != fams[1].differs
    assert [fams[0].point_label(r) for r in fams[0].runs] == ["w=1", "w=3", "w=6"]
    assert fams[1].point_label(fams[1].runs[0]) == "w=2"  # a family of one run is one point
    keys = differing_keys(runs)
    assert "checkpoint" in keys and "model.stages.base16.guidance" in keys and "guidance.base" in keys
    assert not [k for k in keys if k.startswith(("run_id", "paths.", "task_name"))]
    # one checkpoint, different sampler steps: two families, labelled by the field that differs
    other = json.loads((sweep / "c0" / "guidance.base=3" / "results.json").read_text())
    other["config"]["sampler"]["steps"] = 50
    other["run_id"] = "c0-w3-steps50"
    (sweep / "steps50").mkdir()
    (sweep / "steps50" / "results.json").write_text(json.dumps(other))
    fams = families(load_runs([str(sweep / "c0"), str(sweep / "steps50")]))
    assert [f.label for f in fams] == ["c0", "c0-w3-steps50"]
    assert [f.differs for f in fams] == ["sampler.steps=3", "sampler.steps=50"]


def test_samples_are_read_in_one_pass_with_only_the_needed_fields(tmp_path: Path):
    path = tmp_path / "samples.jsonl"
    n = 30_000
    with path.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "prompt_id": f"p{i // 4}",
                        "prompt": "x",
                        "seed": i % 4,
                        "stage": "sr32",
                        "path": f"images/{i}.png",
                        "sha256": "f" * 64,
                        "clip_score": i / n,
                        "clip_truncated": False,
                    }
                )
                + "\n"
            )
    frame = read_sample_frame(path, ["clip_score"])
    assert len(frame) == n and "sha256" not in frame.columns and frame["clip_score"].iloc[-1] == (n - 1) / n
    assert read_sample_frame(tmp_path / "absent.jsonl", ["clip_score"]).empty


def test_grids_open_only_the_images_they_show(tmp_path: Path, monkeypatch):
    run_dirs = [write_drawbench_run(tmp_path / f"r{k}", f"run-{k}", ckpt=k, guidance=3.0).parent for k in range(3)]
    runs = load_runs([str(d) for d in run_dirs])
    prompts, index = grids.choose_prompts(runs, n_prompts=3, n_seeds=1)
    cats = {pid: cat for pid, _, cat in DRAWBENCH}
    assert [cats[p.prompt_id] for p in prompts] == ["Colors", "Counting", "Positional"]  # one per category
    opened: list[str] = []
    real = grids.open_rgb
    monkeypatch.setattr(grids, "open_rgb", lambda p, *a: opened.append(str(p)) or real(p, *a))
    png, missing = grids.render_grid(prompts[0], runs, index, side=64)
    assert len(opened) == 3 and missing == [] and png.startswith(b"\x89PNG")
    (run_dirs[1] / "images" / "sr32" / prompts[0].prompt_id / "0.png").unlink()
    _, missing = grids.render_grid(prompts[0], runs, index, side=64)
    assert len(missing) == 1 and "r1" in missing[0]  # drawn crossed and named, not a crash


def test_cell_size_keeps_grids_within_the_pixel_budget():
    assert grids.cell_size(8, 160, 2.0) == 160
    side = grids.cell_size(26 * 2 * 4, 160, 2.0)
    assert side < 160 and 26 * 2 * 4 * side * side <= 2.0e6
    assert grids.cell_size(10**6, 160, 2.0) == grids.MIN_CELL


def test_series_differ_by_more_than_colour():
    styles = [plots.style(k) for k in range(8)]
    assert len({s["marker"] for s in styles}) == 8 and len({s["hatch"] for s in styles}) == 8
    assert plots.axis_label(OutputInfo("fid", "1", False, label="FID"), "y") == "FID (lower is better ↓)"
    assert (
        plots.axis_label(OutputInfo("clip_score", "1", True, label="CLIP score", unit="×100 cos"), "x")
        == "CLIP score [×100 cos] (higher is better →)"
    )


def test_a_legend_of_long_family_labels_wraps_into_fewer_columns_within_the_figure():
    short = ["w sweep a", "w sweep b", "w sweep c", "w sweep d"]
    assert plots.legend_layout(short, width_in=5.2) == (3, short)
    long = ["sampler=ddpm steps=50 thresholding=dynamic(p=0.995) " * 2, "sampler=ddpm steps=50 thresholding=static"]
    ncol, wrapped = plots.legend_layout(long, width_in=5.2)
    assert ncol == 1 and "\n" in wrapped[0] and wrapped[1] == long[1]
    assert max(len(line) for label in wrapped for line in label.split("\n")) <= 5.2 * 72 / (0.6 * 8)
    # a run id is never split inside itself, even when it alone is wider than a line
    assert plots.legend_layout(["run-" + "x" * 120], width_in=5.2) == (1, ["run-" + "x" * 120])
