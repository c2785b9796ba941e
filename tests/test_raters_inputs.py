"""Bad input to `imagen-bench study` / `raters`: one line, exit 2, and nothing left behind.

Every case runs the real command line (Hydra app included) and compares the whole test folder
before and after: a failed `create` must leave no study.db, tokens file, store or study folder
(it used to leave a schema-only database, after which `raters` said the wrong thing), and a
failed `export`/`analyze` no output. The PostgreSQL cases check that what SQLite would accept
but PostgreSQL refuses is refused up front, the same on both back-ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from raters_ui.db import Study, open_db
from raters_ui.synthetic import make_pairs, make_study
from tests.helpers.cli import exit_code
from tests.test_raters_db import pg_url  # noqa: F401  (fixture: a fresh PostgreSQL schema)


def tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its size (folders -1). An existing SQLite database is only
    listed: opening it to read moves its WAL files without changing its content."""

    def size(p: Path) -> int:
        if not p.is_file() or p.name.endswith((".db", ".db-wal", ".db-shm")):
            return -1
        return p.stat().st_size

    found = {str(p.relative_to(root)): size(p) for p in root.rglob("*")}
    return {k: v for k, v in found.items() if not k.endswith((".db-wal", ".db-shm"))}


def pairs_with(tmp_path: Path, mutate: Callable[[dict], None]) -> Path:
    """A valid synthetic pairs file, changed by ``mutate`` and written beside it."""
    src = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    doc = json.loads(src.read_text())
    mutate(doc)
    out = tmp_path / "src" / "bad-pairs.json"
    out.write_text(json.dumps(doc))
    return out


def rename_system(doc: dict, new: str) -> None:
    old = doc["systems"][0]["id"]
    doc["systems"][0]["id"] = new
    for item in doc["items"]:
        item["images"][new] = item["images"].pop(old)


def set_item(key: str, value) -> Callable[[dict], None]:
    return lambda doc: doc["items"][0].__setitem__(key, value)


PAIRS_CASES = {
    "prompt-null": (set_item("prompt", None), "items[0].prompt must be a string, got null"),
    "prompt-id-list": (set_item("prompt_id", ["x"]), "items[0].prompt_id must be a string, got list"),
    "category-dict": (set_item("category", {"a": 1}), "must be a string or null, got dict"),
    "system-id-null": (lambda d: d["systems"][0].__setitem__("id", None), "systems[0].id must be a string"),
    "image-path-null": (lambda d: d["items"][0]["images"]["sys1"].__setitem__(0, None), "must be a string"),
    "seeds-strings": (set_item("seeds", ["a", "b"]), "must be an integer"),
    "systems-object": (lambda d: d.__setitem__("systems", {}), "systems must be a list, got dict"),
    "prompt-id-201": (set_item("prompt_id", "p" * 201), "stores at most 200"),
    "system-id-201": (lambda d: rename_system(d, "s" * 201), "stores at most 200"),
    "category-201": (set_item("category", "c" * 201), "stores at most 200"),
    "run-id-301": (lambda d: d["systems"][0].__setitem__("run_id", "r" * 301), "stores at most 300"),
    "suite-101": (lambda d: d.__setitem__("suite", "s" * 101), "stores at most 100"),
    "nul-in-prompt": (set_item("prompt", "a red\x00car"), "NUL character"),
    "nul-in-category": (set_item("category", "Co\x00lors"), "NUL character"),
    "surrogate-in-prompt": (set_item("prompt", "a \ud800 car"), "lone surrogate"),
    "newline-in-prompt-id": (set_item("prompt_id", "p\n1"), "control character"),
    "empty-prompt": (set_item("prompt", "  "), "is empty"),
}


@pytest.fixture
def studies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "studies"


def check_fails_cleanly(tmp_path: Path, capsys, args: list[str], message: str, command: str = "study") -> str:
    before = tree(tmp_path)
    assert exit_code(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"imagen-bench {command}: error: "), err
    assert message in err, err
    assert tree(tmp_path) == before  # nothing made, nothing changed
    return err


@pytest.mark.parametrize("case", list(PAIRS_CASES))
def test_bad_pairs_file_is_one_line_and_leaves_nothing(tmp_path: Path, studies: Path, capsys, case: str):
    mutate, message = PAIRS_CASES[case]
    pairs = pairs_with(tmp_path, mutate)
    check_fails_cleanly(tmp_path, capsys, ["study", "create", "demo", f"pairs={pairs}"], message)


def _file(tmp_path: Path) -> Path:
    f = tmp_path / "a-file.txt"
    f.write_text("not a database, not a folder\n")
    return f


CREATE_CASES = {
    "pairs-folder": (lambda t: [f"pairs={t / 'src'}"], "is a folder, not a study pairs file"),
    "raters-abc": (lambda t: ["raters=abc"], "raters must be an integer in [0, 10000], got 'abc'"),
    "raters-2.5": (lambda t: ["raters=2.5"], "raters must be an integer"),
    "raters-negative": (lambda t: ["raters=-1"], "raters must be an integer"),
    "ratings-per-item-0": (lambda t: ["ratings_per_item=0"], "ratings_per_item must be an integer"),
    "items-per-rater-0": (lambda t: ["items_per_rater=0"], "items_per_rater must be an integer"),
    "seed-negative": (lambda t: ["seed=-1"], "seed must be an integer"),
    "seed-over-int32": (lambda t: ["seed=2147483648"], "seed must be an integer"),
    "max-side-0": (lambda t: ["max_side=0"], "max_side must be an integer in [16, 1440]"),
    "max-side-negative": (lambda t: ["max_side=-5"], "max_side must be an integer"),
    "image-size-huge": (lambda t: ["image_size=100000"], "image_size must be an integer"),
    "controls-count-negative": (lambda t: ["controls.count=-1"], "controls.count must be an integer"),
    "controls-every-0": (lambda t: ["controls.every=0"], "controls.every must be an integer"),
    "controls-mode": (lambda t: ["controls.mode=bogus"], "controls.mode must be one of"),
    "controls-threshold": (lambda t: ["controls.threshold=1.5"], "controls.threshold must be a number"),
    "baseline-unknown": (lambda t: ["baseline=q"], "baseline 'q' is not one of the systems"),
    "prompts-unknown": (lambda t: ["prompts=[nope]"], "unknown prompt ids"),
    "categories-unknown": (lambda t: ["categories=[Nope]"], "unknown categories"),
    "db-not-a-database": (lambda t: [f"db={_file(t)}"], "cannot open study database"),
    "db-unreachable": (lambda t: [f"db={_file(t)}/sub/study.db"], "cannot create the study database"),
    "db-folder": (lambda t: [f"db={t / 'src'}"], "is not a file"),
    "db-in-memory": (lambda t: ["db=sqlite://"], "in-memory"),
    "db-unreachable-server": (lambda t: ["db=postgresql+psycopg://nobody@127.0.0.1:1/none"], "cannot open"),
    "tokens-unwritable": (lambda t: [f"tokens_file={_file(t)}/sub/tokens.csv"], "cannot write the tokens file"),
    "tokens-a-folder": (lambda t: [f"tokens_file={t / 'src'}"], "cannot write the tokens file"),
    "store-unwritable": (lambda t: [f"store={_file(t)}/store"], "cannot write to the image store"),
    "practice-3": (lambda t: ["practice=3"], "practice must be an integer in [0, 2]"),
    "min-seconds-negative": (lambda t: ["min_seconds=-1"], "min_seconds must be a number in [0, 3600]"),
    "instructions-both": (
        lambda t: ["instructions=hi", f"instructions_file={_file(t)}"],
        "give instructions= or instructions_file=, not both",
    ),
    "instructions-file-missing": (lambda t: [f"instructions_file={t}/none.md"], "cannot read instructions_file="),
    "instructions-too-long": (lambda t: ["instructions=" + "x" * 20_001], "instructions must be text of at most"),
}


@pytest.mark.parametrize("case", list(CREATE_CASES))
def test_bad_create_options_are_one_line_and_leave_nothing(tmp_path: Path, studies: Path, capsys, case: str):
    extra, message = CREATE_CASES[case]
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    args = extra(tmp_path)
    if not any(a.startswith("pairs=") for a in args):
        args = [f"pairs={pairs}", *args]
    check_fails_cleanly(tmp_path, capsys, ["study", "create", "demo", *args], message)


@pytest.mark.parametrize("name", ["../escaped", "/tmp/absolute-study", "a/b", ".hidden", "x" * 101, "-dash"])
def test_a_study_name_is_a_name_not_a_path(tmp_path: Path, studies: Path, capsys, name: str):
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    for args in (
        ["study", "create", f"study={name}", f"pairs={pairs}"],
        ["study", "analyze", f"study={name}"],
        ["study", "export", f"study={name}", "out=x.csv"],
    ):
        check_fails_cleanly(tmp_path, capsys, ["study", args[1], *args[2:]], "a study name is")
    check_fails_cleanly(tmp_path, capsys, ["raters", f"study={name}", "dry_run=true"], "a study name is", "raters")
    assert not Path("/tmp/absolute-study").exists() and not (tmp_path / "escaped").exists()


def test_unreadable_image_leaves_nothing(tmp_path: Path, studies: Path, capsys):
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    next((tmp_path / "src").rglob("drawbench-0002_1.png")).write_bytes(b"not a png")
    check_fails_cleanly(tmp_path, capsys, ["study", "create", "demo", f"pairs={pairs}"], "cannot read image")


@pytest.fixture
def existing(tmp_path: Path, studies: Path):
    """A study made by the command line (so that the non-create cases have one)."""
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    assert exit_code(["study", "create", "demo", f"pairs={pairs}", "raters=1"]) == 0
    return studies / "demo"


OTHER_CASES = {
    "analyze-n-boot-0": (["study", "analyze", "demo", "n_boot=0"], "n_boot must be an integer"),
    "analyze-n-boot-abc": (["study", "analyze", "demo", "n_boot=abc"], "n_boot must be an integer"),
    "analyze-level-1.5": (["study", "analyze", "demo", "level=1.5"], "level must be a number in (0, 1)"),
    "analyze-level-0": (["study", "analyze", "demo", "level=0"], "level must be a number in (0, 1)"),
    "analyze-clusters": (["study", "analyze", "demo", "clusters=[foo]"], "clusters must list prompt_id"),
    "analyze-clusters-twice": (["study", "analyze", "demo", "clusters=[rater,rater]"], "clusters must list"),
    "analyze-exclude": (["study", "analyze", "demo", "exclude=maybe"], "exclude must be true or false"),
    "analyze-out-unwritable": (["study", "analyze", "demo", "out={file}/sub"], "cannot write the analysis"),
    "analyze-out-a-file": (["study", "analyze", "demo", "out={file}"], "is a file"),
    "export-out-unwritable": (["study", "export", "demo", "out={file}/sub/r.csv"], "cannot write"),
    "export-out-folder": (["study", "export", "demo", "out={src}"], "is a folder"),
    "export-db-not-a-database": (["study", "export", "demo", "db={file}", "out=r.csv"], "cannot open study"),
    "add-raters-abc": (["study", "add-raters", "demo", "raters=abc"], "raters must be an integer"),
    "add-raters-0": (["study", "add-raters", "demo", "raters=0"], "raters must be an integer in [1, 10000]"),
    "rotate-tokens-no-rater": (["study", "rotate-tokens", "demo"], "rotate-tokens needs rater="),
    "rotate-tokens-unknown": (["study", "rotate-tokens", "demo", "rater=nobody"], "no rater 'nobody'"),
    "rotate-tokens-unwritable": (
        ["study", "rotate-tokens", "demo", "rater=all", "tokens_file={file}/sub/t.csv"],
        "cannot write the tokens file",
    ),
    "sample-size-power-1": (
        ["study", "sample-size", "rate_a=0.6", "rate_b=0.4", "power=1"],
        "power must be a number in (0, 1)",
    ),
    "sample-size-alpha-0": (
        ["study", "sample-size", "rate_a=0.6", "rate_b=0.4", "alpha=0"],
        "alpha must be a number in (0, 1)",
    ),
    "sample-size-deff-0": (
        ["study", "sample-size", "rate_a=0.6", "rate_b=0.4", "design_effect=0"],
        "design_effect must be a number in (0, 1000]",
    ),
    "sample-size-deff-negative": (
        ["study", "sample-size", "rate_a=0.6", "rate_b=0.4", "design_effect=-1.5"],
        "design_effect must be a number",
    ),
    "sample-size-rate-abc": (["study", "sample-size", "rate_a=abc", "rate_b=0.4"], "rate_a must be a number"),
    "raters-port-abc": (["raters", "demo", "port=abc", "dry_run=true"], "port must be an integer in [1, 65535]"),
    "raters-port-70000": (["raters", "demo", "port=70000", "dry_run=true"], "port must be an integer"),
    "raters-port-0": (["raters", "demo", "port=0", "dry_run=true"], "port must be an integer"),
    "raters-dry-run": (["raters", "demo", "dry_run=maybe"], "dry_run must be true or false"),
    "raters-db-not-a-database": (["raters", "demo", "db={file}", "dry_run=true"], "cannot open study"),
    "analyze-min-seconds": (["study", "analyze", "demo", "min_seconds=abc"], "min_seconds must be a number"),
    "analyze-same-side": (
        ["study", "analyze", "demo", "quality.same_side=0.3"],
        "quality.same_side must be a number in (0.5, 1]",
    ),
    "analyze-min-items": (["study", "analyze", "demo", "quality.min_items=0"], "quality.min_items must be an integer"),
    "export-views-txt": (
        ["study", "export", "demo", "out={src}/r.csv", "views_out={src}/v.txt"],
        "views_out must be a .csv or .parquet file",
    ),
    "configure-nothing": (["study", "configure", "demo"], "configure needs instructions="),
    "configure-unknown-study": (
        ["study", "configure", "nostudy", "consent=x", "db={src}/../studies/demo/study.db"],
        "no study named 'nostudy'",
    ),
}


@pytest.mark.parametrize("case", list(OTHER_CASES))
def test_bad_options_of_other_commands(tmp_path: Path, existing: Path, capsys, case: str):
    args, message = OTHER_CASES[case]
    capsys.readouterr()
    file = _file(tmp_path)
    args = [a.format(file=file, src=tmp_path / "src") for a in args]
    check_fails_cleanly(tmp_path, capsys, args, message, args[0])


def test_after_a_failed_create_raters_says_there_is_no_study(tmp_path: Path, studies: Path, capsys):
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    assert exit_code(["study", "create", "demo", f"pairs={pairs}", "ratings_per_item=0"]) == 2
    capsys.readouterr()
    assert exit_code(["raters", "demo", "dry_run=true"]) == 2
    assert "no study database at" in capsys.readouterr().err


def test_a_failed_create_in_an_existing_database_keeps_it(tmp_path: Path, studies: Path, capsys):
    db, _ = make_study(tmp_path / "old", n_prompts=2, n_images=2)
    db.dispose()
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    db_file = tmp_path / "old" / "study.db"
    before = tree(tmp_path)
    assert (
        exit_code(
            ["study", "create", "second", f"pairs={pairs}", f"db={db_file}", f"tokens_file={_file(tmp_path)}/t.csv"]
        )
        == 2
    )
    assert "cannot write the tokens file" in capsys.readouterr().err
    after = tree(tmp_path)
    assert {k for k in after if not k.startswith("old/study.db")} == {
        k for k in before if not k.startswith("old/study.db")
    } | {"a-file.txt"}
    with open_db(db_file).read() as s:
        assert s.scalars(select(Study.name)).all() == ["demo"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "case", ["prompt-id-201", "system-id-201", "category-201", "run-id-301", "nul-in-prompt", "surrogate-in-prompt"]
)
def test_postgres_refuses_nothing_that_sqlite_accepts(tmp_path: Path, studies: Path, capsys, pg_url: str, case: str):  # noqa: F811
    mutate, message = PAIRS_CASES[case]
    pairs = pairs_with(tmp_path, mutate)
    for db in (pg_url, str(tmp_path / "lite.db")):
        check_fails_cleanly(tmp_path, capsys, ["study", "create", "demo", f"pairs={pairs}", f'db="{db}"'], message)
    with open_db(pg_url).read() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == 0


@pytest.mark.postgres
def test_the_longest_valid_ids_fit_postgres(tmp_path: Path, studies: Path, capsys, pg_url: str):  # noqa: F811
    def longest(doc: dict) -> None:
        rename_system(doc, "s" * 200)
        doc["systems"][0]["run_id"] = "r" * 300
        doc["suite"] = "u" * 100
        for k, item in enumerate(doc["items"]):
            item["prompt_id"] = f"{k}" + "p" * 199
            item["category"] = "c" * 200
            item["prompt"] = "a prompt with\ttabs,\nnewlines and unicode: é 猫 🐈"

    pairs = pairs_with(tmp_path, longest)
    assert (
        exit_code(
            [
                "study",
                "create",
                "long",
                f"pairs={pairs}",
                f'db="{pg_url}"',
                "raters=1",
                f"store={tmp_path / 'store'}",
                f"tokens_file={tmp_path / 't.csv'}",
            ]
        )
        == 0
    )
    assert "created study 'long'" in capsys.readouterr().out
