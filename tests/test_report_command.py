"""``imagen-bench report``: a guidance sweep over two checkpoints, two DrawBench runs, a synthetic study and a
regression verdict, rendered to HTML + Markdown; bad input is one line, exit 2 and no report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.evaluation.scoring import format_value
from harness.formats.values import MetricValue
from raters_ui.stats import wilson_interval
from tests.helpers.report_runs import SYS1, SYS2, coco_id, fid_value, make_assets


def run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        cli(["report", *args])
        code = 0
    except SystemExit as err:
        code = int(err.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("report-assets"))


@pytest.fixture(scope="module")
def report(assets):
    out = assets.root / "report"
    try:
        cli(
            [
                "report",
                f"runs=[{assets.sweep},{assets.drawbench[0]},{assets.drawbench[1]}]",
                "study=demo",
                f"db={assets.db}",
                f"verdict={assets.verdict}",
                f"out={out}",
                "study_analysis.n_boot=200",
            ]
        )
    except SystemExit as err:
        pytest.fail(f"report exited with {err.code}")
    return out


def md_rows(md: str, first_cell: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in md.splitlines()
        if line.startswith(f"| {first_cell} ")
    ]


def test_report_files_and_every_run_id(report, assets):
    md = (report / "report.md").read_text(encoding="utf-8")
    page = (report / "report.html").read_text(encoding="utf-8")
    plots = sorted(p.name for p in (report / "plots").iterdir())
    assert {
        "pareto-coco_fid30k.png",
        "categories-drawbench-clip_score.png",
        "preference-01.png",
        "metric-agreement-01.png",
    } <= set(plots)
    grids = sorted((report / "grids").iterdir())
    assert len(grids) == 8  # 4 prompts per suite, two suites
    for run_id in assets.run_ids:
        assert run_id in md and run_id in page, run_id
    # every figure is embedded, and the page loads nothing from elsewhere
    srcs = re.findall(r'<img src="([^"]*)"', page)
    assert len(srcs) == len(plots) + len(grids) and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "default-src 'none'" in page
    assert all(
        "![" in md and f"({kind}/{p.name})" in md for kind in ("plots", "grids") for p in (report / kind).iterdir()
    )
    assert not list(report.parent.glob(".report.*"))  # no temporary folder left beside it


def test_the_verdict_comes_first(report):
    md = (report / "report.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", md, flags=re.MULTILINE)
    assert sections[:3] == ["At a glance", "Regression verdict", "Runs"]  # the one-screen summary, then the gate
    glance = md.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    assert "Regression gate: INCONCLUSIVE" in glance and "Every row in Regression verdict" in glance
    assert "INCONCLUSIVE" in md and "1.000 \\[-0.500, 2.500\\]" not in md  # cell text is not Markdown-escaped
    row = md_rows(md, "clip_score")[0]
    assert row[:5] == ["clip_score", "overall", "20", "21", "+1"] and row[5] == "1.000 [-0.500, 2.500]"


def test_runs_table_shows_differing_config_and_recorded_numbers(report, assets):
    md = (report / "report.md").read_text(encoding="utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| run id | model |"))
    assert "model.stages.base16.guidance" in header and "| checkpoint |" in header
    assert "FID" not in header  # the configuration table; the numbers are in one table per metric
    assert "guidance.base" not in header and "paths." not in header and "run_id" not in header
    results = json.loads((assets.sweep / "ckpt1" / "guidance.base=4" / "results.json").read_text())
    fid = MetricValue.from_json(results["metrics"]["base16"]["fid"])
    assert fid.value == fid_value(1, 4.0, "base16")
    rows = md_rows(md, coco_id(1, 4.0).replace("|", "\\|"))
    assert any("4" in row and "/ckpt/model1" in row for row in rows)  # its configuration row
    assert sum(f"{format_value(fid)} n=4" in row for row in rows) == 1  # its base16 FID, in the FID table only


def test_guidance_families_and_their_points_are_named(report):
    md = (report / "report.md").read_text(encoding="utf-8")
    caption = next(line for line in md.splitlines() if line.startswith("**coco\\_fid30k: FID vs CLIP score"))
    assert caption.count("(ckpt base16:") == 2  # each family: its short name, then what sets it apart
    for run_id, w in ((coco_id(0, 1.0), "1"), (coco_id(0, 6.0), "6"), (coco_id(1, 4.0), "4")):
        assert f"{run_id} (w={w})" in caption


def test_study_preferences_agreement_and_metric_link(report):
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "## Human study: demo" in md and "No rater was excluded" in md
    assert f"sys1 = {SYS1}, sys2 = {SYS2}" in md
    pref = [r for r in md_rows(md, "alignment") if r[1] == "overall" and r[2] == "16"]
    assert pref and pref[0][4].startswith("1.000") and pref[0][6].startswith("0.000")  # every rating: sys1
    # CLIP score agrees with the raters on prompts 1-6, not on 7-8 (tests.helpers.report_runs.sys1_clip_higher)
    rows = {(r[1], r[2]): r for r in md_rows(md, "alignment") if len(r) == 9}
    lo, hi = wilson_interval(6, 8)
    assert rows[("clip_score", "overall")][3:5] == ["6/8", f"0.750 [{lo:.3f}, {hi:.3f}]"]
    assert rows[("clip_score", "Positional")][3] == "1/2" and rows[("clip_score", "Colors")][3] == "2/2"
    assert rows[("ocr_exact_match", "Text")][3:8] == ["0/0", "–", "0", "2", "0"]  # both runs score 0: metric ties
    assert ("ocr_exact_match", "Colors") not in rows  # OCR does not score Colors
    fidelity = {(r[1], r[2]): r for r in md_rows(md, "fidelity") if len(r) == 9}
    assert fidelity[("clip_score", "overall")][3] == "0/0" and fidelity[("clip_score", "overall")][5] == "8"


def test_positional_folders_and_a_glob(assets, tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, err = run([str(assets.sweep / "ckpt0"), f"runs_extra_is_not_a_key={1}"], capsys)
    assert code == 2 and "runs_extra_is_not_a_key" in err
    code, stdout, err = run(
        [str(assets.sweep / "ckpt0"), str(assets.sweep / "ckpt1" / "guidance.base=*"), f"out={out}", "grids.prompts=0"],
        capsys,
    )
    assert code == 0, err
    md = (out / "report.md").read_text(encoding="utf-8")
    assert all(coco_id(c, w) in md for c, w in ((0, 1.0), (0, 6.0), (1, 1.0), (1, 4.0)))
    assert SYS1 not in md and not (out / "grids").exists() and "wrote" in stdout


def test_a_second_report_replaces_the_first(assets, tmp_path, capsys):
    out = tmp_path / "again"
    assert run([f"runs={assets.drawbench[0]}", f"out={out}"], capsys)[0] == 0
    first = (out / "report.md").read_text(encoding="utf-8")
    assert run([f"runs=[{assets.drawbench[0]},{assets.drawbench[1]}]", f"out={out}"], capsys)[0] == 0
    second = (out / "report.md").read_text(encoding="utf-8")
    assert SYS2 not in first and SYS2 in second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]


def _bad_results(root: Path) -> Path:
    run_dir = root / "old"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps({"format": "imagen-bench.results", "version": 1}))
    return run_dir


@pytest.mark.parametrize(
    "case",
    [
        "missing_run",
        "old_version",
        "unknown_study",
        "missing_db",
        "out_under_a_file",
        "out_not_ours",
        "same_run_id_twice",
        "damaged_samples",
        "empty_glob",
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_report(assets, tmp_path, capsys, case):
    out = tmp_path / "out"
    runs = f"runs={assets.drawbench[0]}"
    extra: list[str] = []
    expect = {
        "missing_run": "does not exist",
        "old_version": "version 1",
        "unknown_study": "no study named",
        "missing_db": "no study database",
        "out_under_a_file": "cannot write the report",
        "out_not_ours": "holds other files",
        "same_run_id_twice": "share the run id",
        "damaged_samples": "is not JSON",
        "empty_glob": "nothing matches",
    }[case]
    if case == "missing_run":
        runs = f"runs={tmp_path / 'nope'}"
    elif case == "old_version":
        runs = f"runs={_bad_results(tmp_path)}"
    elif case == "unknown_study":
        extra = ["study=nosuch", f"db={assets.db}"]
    elif case == "missing_db":
        extra = ["study=demo", f"studies_dir={tmp_path / 'studies'}"]
    elif case == "out_under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    elif case == "out_not_ours":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "same_run_id_twice":
        copy = tmp_path / "copy"
        copy.mkdir()
        (copy / "results.json").write_bytes((assets.drawbench[0] / "results.json").read_bytes())
        runs = f"runs=[{assets.drawbench[0]},{copy}]"
    elif case == "damaged_samples":
        copy = tmp_path / "damaged"
        copy.mkdir()
        (copy / "results.json").write_bytes((assets.drawbench[0] / "results.json").read_bytes())
        (copy / "samples.jsonl").write_text('{"prompt_id": "x", "seed": 0}\n{not json\n')
        runs = f"runs={copy}"
    elif case == "empty_glob":
        runs = f"runs={tmp_path / 'nothing-*'}"
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run([runs, f"out={out}", *extra], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("imagen-bench report: error:"), err
    assert expect in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new: no report, no temporary folder
    if case == "out_not_ours":
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_a_verdict_in_a_folder_given_as_runs_is_shown(assets, tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run(
        [f"runs=[{assets.verdict.parent},{assets.drawbench[0]}]", f"out={out}", "grids.prompts=0"], capsys
    )
    assert code == 0, err
    md = (out / "report.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", md, flags=re.MULTILINE)[:3] == ["At a glance", "Regression verdict", "Runs"]
    assert str(assets.verdict) in md


def test_a_study_without_ratings_and_a_study_with_an_excluded_rater(assets, tmp_path, capsys):
    from raters_ui.controls import ControlSpec
    from raters_ui.synthetic import make_study, side_of
    from tests.helpers.report_runs import simulate

    db, _ = make_study(tmp_path / "s0", name="empty", n_prompts=4, n_images=1, raters=1)
    db.dispose()
    runs = f"runs=[{assets.drawbench[0]},{assets.drawbench[1]}]"
    code, _, err = run([runs, "study=empty", f"db={tmp_path / 's0' / 'study.db'}", f"out={tmp_path / 'r0'}"], capsys)
    assert code == 0, err
    assert "No ratings of main items yet." in (tmp_path / "r0" / "report.md").read_text(encoding="utf-8")

    db, made = make_study(
        tmp_path / "s1",
        name="ctl",
        n_prompts=4,
        n_images=1,
        raters=2,
        ratings_per_item=2,
        controls=ControlSpec(count=2, every=1),
    )

    def choose(label, aid, kind, rng):
        if kind == "control":
            good = side_of(db, aid, "good")
            right = good if label == "rater-001" else ("B" if good == "A" else "A")
            return right, right
        return side_of(db, aid, "sys2"), side_of(db, aid, "sys2")

    simulate(db, made, choose)
    db.dispose()
    code, _, err = run([runs, "study=ctl", f"db={tmp_path / 's1' / 'study.db'}", f"out={tmp_path / 'r1'}"], capsys)
    assert code == 0, err
    md = (tmp_path / "r1" / "report.md").read_text(encoding="utf-8")
    assert "Excluded raters (control accuracy below 80%): rater-002." in md
    assert md_rows(md, "rater-002")[0][3:] == ["0.000", "no"]
