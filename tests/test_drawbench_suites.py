"""Prompt suites: the shipped files load with their published counts; malformed files are refused by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drawbench.suites import CONF_DIR, DATA_DIR, load_suite, suite_config
from harness.errors import UserError

DRAWBENCH_COUNTS = {
    "Colors": 25,
    "Conflicting": 10,
    "Counting": 19,
    "DALL-E": 20,
    "Descriptions": 20,
    "Gary Marcus et al.": 10,
    "Misspellings": 10,
    "Positional": 20,
    "Rare Words": 7,
    "Reddit": 38,
    "Text": 21,
}
CSV_LINES = (DATA_DIR / "drawbench_prompts.csv").read_text(encoding="utf-8").splitlines(keepends=True)


def drawbench_variant(tmp_path: Path, lines: list[str], **overrides) -> dict:
    """The drawbench config pointed at a modified copy of its CSV (no sha256 pin)."""
    path = tmp_path / "prompts.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return {**suite_config("drawbench"), "file": str(path), "sha256": None, **overrides}


# --------------------------------------------------------------------------- the shipped suites


def test_drawbench_has_200_prompts_in_the_11_published_counts():
    suite = load_suite("drawbench")
    assert len(suite) == suite.total == 200
    assert suite.counts == DRAWBENCH_COUNTS
    assert sum(1 for i in suite if i.category == "Text") == 21
    assert not suite.is_subset


def test_drawbench_ids_follow_row_order_and_text_is_unchanged():
    suite = load_suite("drawbench")
    ids = [i.prompt_id for i in suite]
    assert ids[0] == "drawbench-0001" and ids[-1] == "drawbench-0200" and len(set(ids)) == 200
    assert suite.by_id("drawbench-0001").prompt == "A red colored car."
    assert suite.by_id("drawbench-0181").prompt == "A storefront with 'Diffusion' written on it."
    assert [i.index for i in suite] == list(range(1, 201))
    texts = [i.prompt for i in suite]
    assert any("Bismarck-Schönhausen" in t for t in texts)  # non-ASCII kept
    assert "A smafml vessef epropoeilled on watvewr by ors, sauls, or han engie." in texts  # misspelling kept


def test_parti_counts_and_the_prompt_that_starts_with_a_quote():
    suite = load_suite("parti")
    assert suite.total == 1632
    assert suite.counts["Animals"] == 314 and suite.counts["Indoor Scenes"] == 40 and len(suite.counts) == 12
    giggle = suite.by_id("parti-1561")
    assert giggle.prompt.startswith('"G I G G L E" painted')  # QUOTE_NONE keeps the literal quotes
    assert giggle.extra["Challenge"] == "Writing & Symbols"


def test_geneval_counts_and_metadata():
    suite = load_suite("geneval")
    assert suite.total == 553
    assert suite.counts == {
        "single_object": 80,
        "two_object": 99,
        "counting": 80,
        "colors": 94,
        "position": 100,
        "color_attr": 100,
    }
    assert suite.items[0].prompt == "a photo of a bench"
    assert suite.items[0].extra["include"] == [{"class": "bench", "count": 1}]
    lines = (DATA_DIR / "geneval/generation_prompts.txt").read_text(encoding="utf-8").splitlines()
    assert [i.prompt for i in suite] == lines


@pytest.mark.parametrize(
    "name,prefix", [("t2i_compbench", "t2i_compbench"), ("t2i_compbench_2023", "t2i_compbench_2023")]
)
def test_t2i_compbench_val_sets(name, prefix):
    suite = load_suite(name)
    assert suite.total == 2400 and set(suite.counts.values()) == {300} and len(suite.counts) == 8
    assert not any("\r" in i.prompt or i.prompt != i.prompt.strip() for i in suite)  # CRLF files
    assert suite.items[0].prompt_id == f"{prefix}-3d_spatial-0001"
    color = [i.prompt for i in suite if i.category == "color"]
    assert len(color) - len(set(color)) == (5 if name.endswith("2023") else 0)


def test_the_two_t2i_compbench_versions_differ_only_in_color():
    new, old = load_suite("t2i_compbench"), load_suite("t2i_compbench_2023")
    diff = {a.category for a, b in zip(new, old) if a.prompt != b.prompt}
    assert diff == {"color"}


def test_sha256_pins_the_file(tmp_path):
    lines = list(CSV_LINES)
    lines[1] = "A red colored cat.,Colors\n"  # one changed word
    cfg = drawbench_variant(tmp_path, lines, sha256=suite_config("drawbench")["sha256"])
    with pytest.raises(UserError, match="sha256.*prompt ids are tied"):
        load_suite(cfg)


# --------------------------------------------------------------------------- malformed files


def test_incomplete_file_is_refused_naming_the_last_row(tmp_path):
    with pytest.raises(UserError, match=r"has 195 prompts, expected 200.*drawbench-0195"):
        load_suite(drawbench_variant(tmp_path, CSV_LINES[:-5]))


def test_empty_prompt_names_the_row(tmp_path):
    lines = list(CSV_LINES)
    lines[42] = ",Counting\n"  # data row 42 is on line 43
    with pytest.raises(UserError, match=r"prompts\.csv row 42 \(line 43\): empty prompt"):
        load_suite(drawbench_variant(tmp_path, lines))


def test_unknown_category_names_the_row(tmp_path):
    lines = list(CSV_LINES)
    lines[3] = "A pink colored car.,Colours\n"
    with pytest.raises(UserError, match=r"row 3 \(line 4\): unknown category 'Colours'"):
        load_suite(drawbench_variant(tmp_path, lines))


def test_category_whitespace_is_stripped_like_the_spreadsheet_export(tmp_path):
    lines = [ln.replace(",Gary Marcus et al.\n", ",Gary Marcus et al. \n") for ln in CSV_LINES]
    assert load_suite(drawbench_variant(tmp_path, lines)).counts["Gary Marcus et al."] == 10


def test_wrong_category_count_is_refused(tmp_path):
    lines = list(CSV_LINES)
    lines[1] = "A red colored car.,Counting\n"  # one Colors prompt relabelled: total still 200
    with pytest.raises(UserError, match=r"category 'Colors' has 24 prompts, expected 25"):
        load_suite(drawbench_variant(tmp_path, lines))


def test_missing_column_is_refused(tmp_path):
    lines = ["prompt,label\n", *CSV_LINES[1:]]
    with pytest.raises(UserError, match=r"header\) has no column 'category' \(columns: prompt, label\)"):
        load_suite(drawbench_variant(tmp_path, lines))


def test_row_with_extra_fields_names_the_row(tmp_path):
    lines = list(CSV_LINES)
    lines[7] = "A red, blue car.,Colors\n"  # unquoted comma
    with pytest.raises(UserError, match=r"row 7 \(line 8\) has 3 fields, the header has 2"):
        load_suite(drawbench_variant(tmp_path, lines))


def test_unterminated_quote_is_refused(tmp_path):
    lines = list(CSV_LINES[:11]) + ['"A red car.,Colors\n']
    with pytest.raises(UserError, match=r"row 11 .*malformed CSV"):
        load_suite(drawbench_variant(tmp_path, lines))


def test_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("".join(CSV_LINES).encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_suite({**suite_config("drawbench"), "file": str(path), "sha256": None})


def test_duplicate_ids_from_an_id_column_name_both_rows(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,prompt,category\na,A red car.,x\nb,A blue car.,x\na,A green car.,y\n")
    cfg = {"name": "mine", "file": str(path), "format": "csv", "category_column": "category", "id_column": "id"}
    with pytest.raises(
        UserError,
        match=r"row 3 \(line 4\): duplicate prompt id 'a' "
        r"\(first at mine.csv row 1 ",
    ):
        load_suite(cfg)


def test_jsonl_bad_line_and_missing_field(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a cat", "tag": "x"}\n\n{"prompt": "a dog"\n', encoding="utf-8")
    cfg = {"name": "p", "file": str(path), "format": "jsonl", "category_column": "tag"}
    with pytest.raises(UserError, match=r"row 2 \(line 3\) is not valid JSON"):
        load_suite(cfg)
    path.write_text('{"prompt": "a cat", "tag": "x"}\n{"text": "a dog", "tag": "x"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"row 2 \(line 2\) has no field 'prompt'"):
        load_suite(cfg)


def test_missing_file_and_bad_format_are_refused(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_suite({"name": "x", "file": "nope.csv", "format": "csv"})
    with pytest.raises(UserError, match="format must be one of"):
        load_suite({"name": "x", "file": "drawbench_prompts.csv", "format": "xlsx"})


def test_text_prompt_without_quotes_is_refused_at_load_time(tmp_path):
    lines = [ln.replace("A sign that says 'Diffusion'.", "A sign that says Diffusion.") for ln in CSV_LINES]
    with pytest.raises(UserError, match=r"drawbench-0188 \(Text\) quotes no text for the OCR judge"):
        load_suite(drawbench_variant(tmp_path, lines))


# --------------------------------------------------------------------------- a user's own suite


def test_a_user_suite_is_a_csv_and_a_config(tmp_path, monkeypatch):
    (tmp_path / "mine.csv").write_text("prompt\nA cat.\n\nA dog.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # relative paths fall back to the working directory
    suite = load_suite(
        {
            "name": "mine",
            "file": "mine.csv",
            "format": "csv",
            "category": "all",
            "images_per_prompt": 4,
            "expected_total": 2,
        }
    )
    assert [(i.prompt_id, i.prompt, i.category) for i in suite] == [
        ("mine-0001", "A cat.", "all"),
        ("mine-0002", "A dog.", "all"),
    ]
    assert suite.seeds == [0, 1, 2, 3]


def test_mistyped_keyword_is_not_ignored():
    with pytest.raises(TypeError, match="limit_per_categroy"):
        load_suite("drawbench", limit_per_categroy=2)


def test_seeds_must_match_images_per_prompt():
    with pytest.raises(UserError, match="must be 8 distinct integers"):
        load_suite("drawbench", seeds=[0, 1, 2])


# --------------------------------------------------------------------------- subsets


def test_subset_by_categories_and_limit():
    suite = load_suite("drawbench", categories=["Colors", "Text"], limit_per_category=2)
    assert [i.prompt_id for i in suite] == ["drawbench-0001", "drawbench-0002", "drawbench-0180", "drawbench-0181"]
    assert suite.is_subset and suite.total == 200 and suite.categories == ["Colors", "Text"]


def test_subset_by_prompt_ids_keeps_file_order():
    suite = load_suite("drawbench", prompt_ids=["drawbench-0188", "drawbench-0003"])
    assert [i.prompt_id for i in suite] == ["drawbench-0003", "drawbench-0188"]


def test_unknown_subset_values_are_refused():
    with pytest.raises(UserError, match="no category 'Colours'"):
        load_suite("drawbench", categories=["Colours"])
    with pytest.raises(UserError, match="no prompt id 'drawbench-0201'"):
        load_suite("drawbench", prompt_ids=["drawbench-0201"])
    with pytest.raises(UserError, match="positive integer"):
        load_suite("drawbench", limit_per_category=0)


def test_subset_is_applied_after_validating_the_whole_file(tmp_path):
    lines = list(CSV_LINES)
    lines[199] = ",Text\n"  # broken row far outside the requested subset
    with pytest.raises(UserError, match="row 199"):
        load_suite(drawbench_variant(tmp_path, lines, categories=["Colors"], limit_per_category=1))


def test_hydra_overrides_reach_the_loader():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR.parent), version_base="1.3"):
        cfg = compose(
            overrides=["+benchmark=drawbench", "benchmark.categories=[Colors,Text]", "benchmark.limit_per_category=2"]
        )
    suite = load_suite(cfg.benchmark)
    assert len(suite) == 4 and suite.seeds == list(range(8)) and suite.grid == (2, 4)
    assert json.dumps(suite.counts)  # plain types, JSON-ready
