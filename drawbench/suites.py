"""Prompt suites (DrawBench, PartiPrompts, GenEval, T2I-CompBench, yours): one YAML + one data file.

A suite is described by ``conf/benchmark/<name>.yaml`` (the Hydra ``benchmark=`` group) and loaded
with :func:`load_suite`. The whole file is validated first (columns, empty prompts, categories,
per-category counts, total, duplicate ids, sha256); subsetting (``categories``,
``limit_per_category``, ``prompt_ids``) is applied afterwards, so a subset run can never hide a
broken file.

Prompt ids are ``<id_prefix>-<row:04d>`` by row order (``drawbench-0001`` is the first data row),
or ``<id_prefix>-<category>-<row:04d>`` for a suite made of one file per category. They are only
stable for one exact file, which is why a config may pin the file's ``sha256``: the loader then
refuses any other bytes. A file with its own id column (``id_column``) keeps those ids instead.

Prompt text is returned exactly as stored (misspellings, non-ASCII, inner quotes). Category labels
are stripped of surrounding whitespace (spreadsheet exports often carry ``"Gary Marcus et al. "``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from drawbench.ocr_judge import extract_quoted_text
from harness.cli.hydra_app import CONF_DIR as HYDRA_CONF_DIR
from harness.errors import UserError
from imagen.validation import seed_list

DATA_DIR = Path(__file__).resolve().parent / "data"
CONF_DIR = HYDRA_CONF_DIR / "benchmark"
FORMATS = ("csv", "tsv", "lines", "jsonl")
ID_WIDTH = 4


@dataclass(frozen=True)
class PromptItem:
    """One prompt of a suite. ``index`` is its 1-based position in the whole suite (all files)."""

    prompt_id: str
    prompt: str
    category: str | None
    index: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class SourceFile:
    path: Path
    sha256: str
    category: str | None = None  # set for one-file-per-category suites


@dataclass(frozen=True)
class PromptSuite:
    """A validated suite; ``items`` is the selected subset (all prompts when no subset is asked)."""

    name: str
    items: list[PromptItem]
    total: int  # prompts in the full, validated file(s)
    counts: dict[str, int]  # per category, full file(s)
    sources: list[SourceFile]
    images_per_prompt: int = 8
    seeds: list[int] = field(default_factory=lambda: list(range(8)))
    ocr_categories: list[str] = field(default_factory=list)
    grid: tuple[int, int] = (2, 4)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[PromptItem]:
        return iter(self.items)

    @property
    def is_subset(self) -> bool:
        return len(self.items) != self.total

    @property
    def categories(self) -> list[str]:
        """Categories of the selected items, in file order."""
        return list(dict.fromkeys(i.category for i in self.items if i.category is not None))

    def by_id(self, prompt_id: str) -> PromptItem:
        for item in self.items:
            if item.prompt_id == prompt_id:
                return item
        raise UserError(f"suite {self.name!r} has no prompt {prompt_id!r} in the selection")


# --------------------------------------------------------------------------- configuration

_DEFAULTS: dict[str, Any] = {
    "file": None,
    "files": None,
    "sha256": None,
    "format": None,
    "prompt_column": "prompt",
    "category_column": None,
    "category": None,
    "id_column": None,
    "id_prefix": None,
    "expected_total": None,
    "expected_counts": None,
    "images_per_prompt": 8,
    "seeds": None,
    "ocr_categories": [],
    "grid": {"rows": 2, "cols": 4},
    "categories": None,
    "limit_per_category": None,
    "prompt_ids": None,
}


def suite_config(name: str) -> dict[str, Any]:
    """The YAML of a built-in suite, ``conf/benchmark/<name>.yaml``, as a plain dict."""
    path = CONF_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
        raise UserError(f"no benchmark config {path.name} in {CONF_DIR} (available: {', '.join(known)})")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def _as_dict(cfg: Mapping[str, Any] | DictConfig | str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(_DEFAULTS) - {"name"})
    if unknown:  # a mistyped keyword would otherwise be silently ignored
        raise TypeError(f"load_suite() got unknown setting(s) {', '.join(unknown)}")
    if isinstance(cfg, str):
        raw = suite_config(cfg)
    elif isinstance(cfg, DictConfig):
        raw = OmegaConf.to_container(cfg, resolve=True)
    else:
        raw = dict(cfg)
    conf = {**_DEFAULTS, **raw, **overrides}  # unknown keys (e.g. the command's own) are ignored
    if not conf.get("name"):
        raise UserError("benchmark config has no 'name'")
    if conf["format"] not in FORMATS:
        raise UserError(
            f"benchmark {conf['name']!r}: format must be one of {', '.join(FORMATS)}, got {conf['format']!r}"
        )
    if bool(conf["file"]) == bool(conf["files"]):
        raise UserError(f"benchmark {conf['name']!r}: give exactly one of 'file' or 'files'")
    conf["id_prefix"] = conf["id_prefix"] or conf["name"]
    return conf


def resolve_data_path(file: str | Path) -> Path:
    """Absolute paths as given; relative ones in ``drawbench/data/`` first, then the working dir."""
    p = Path(file).expanduser()
    candidates = [p] if p.is_absolute() else [DATA_DIR / p, Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(f"prompt file {file} not found (looked in {' and '.join(str(c) for c in candidates)})")


def _sources(conf: dict[str, Any]) -> list[SourceFile]:
    if conf["file"]:
        specs = [(None, conf["file"], conf["sha256"])]
    else:
        specs = []
        for cat, spec in conf["files"].items():
            spec = {"file": spec} if isinstance(spec, str) else dict(spec)
            specs.append((str(cat), spec.get("file"), spec.get("sha256")))
    out = []
    for cat, file, expected in specs:
        path = resolve_data_path(file)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if expected and digest != str(expected).lower():
            raise UserError(
                f"{path.name} has sha256 {digest[:12]}…, benchmark {conf['name']!r} expects "
                f"{str(expected)[:12]}…: prompt ids are tied to that exact file; restore it or, if the "
                f"change is deliberate, update sha256 in the benchmark config"
            )
        out.append(SourceFile(path, digest, cat))
    return out


# --------------------------------------------------------------------------- reading rows


@dataclass(frozen=True)
class _Row:
    where: str  # "drawbench_prompts.csv row 12 (line 13)", for error messages
    fields: dict[str, Any]


def _decode(path: Path) -> str:
    try:
        # utf-8-sig: spreadsheet exports often start with a BOM; the sha256 is over raw bytes anyway.
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{path.name} is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None


def _read_table(path: Path, delimiter: str, needed: list[str]) -> list[_Row]:
    text = _decode(path)
    # PartiPrompts is TSV without quoting and one prompt starts with a literal '"': QUOTE_NONE keeps it.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=quoting != csv.QUOTE_NONE
    )
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"{path.name} is empty (expected a header row with {', '.join(needed)})") from None
    header = [h.strip() for h in header]
    missing = [c for c in needed if c not in header]
    if missing:
        raise UserError(
            f"{path.name} row 0 (header) has no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})"
        )
    rows, n = [], 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return rows
        except csv.Error as err:
            raise UserError(f"{path.name} row {n + 1} (line {reader.line_num}): malformed CSV ({err})") from None
        if not values:  # a blank line, not a row
            continue
        n += 1
        where = f"{path.name} row {n} (line {reader.line_num})"
        if len(values) != len(header):
            raise UserError(
                f"{where} has {len(values)} fields, the header has {len(header)}: {delimiter.join(values)[:80]!r}"
            )
        rows.append(_Row(where, dict(zip(header, values))))


def _read_lines(path: Path, prompt_column: str) -> list[_Row]:
    # T2I-CompBench mixes LF and CRLF and may lack a final newline: splitlines() handles all of it.
    rows = []
    for lineno, line in enumerate(_decode(path).splitlines(), start=1):
        if line.strip():
            rows.append(_Row(f"{path.name} row {len(rows) + 1} (line {lineno})", {prompt_column: line}))
    return rows


def _read_jsonl(path: Path) -> list[_Row]:
    rows = []
    for lineno, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} row {len(rows) + 1} (line {lineno})"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where} is not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{where} is not a JSON object")
        rows.append(_Row(where, obj))
    return rows


def _read_rows(src: SourceFile, conf: dict[str, Any]) -> list[_Row]:
    fmt = conf["format"]
    if fmt == "lines":
        return _read_lines(src.path, conf["prompt_column"])
    if fmt == "jsonl":
        return _read_jsonl(src.path)
    needed = [c for c in (conf["prompt_column"], conf["category_column"], conf["id_column"]) if c]
    return _read_table(src.path, "," if fmt == "csv" else "\t", needed)


# --------------------------------------------------------------------------- validation


def _field(row: _Row, column: str) -> Any:
    if column not in row.fields:
        raise UserError(f"{row.where} has no field {column!r}")
    return row.fields[column]


def _make_items(conf: dict[str, Any], sources: list[SourceFile]) -> list[PromptItem]:
    known = set(conf["expected_counts"] or {})
    skip = {conf["prompt_column"], conf["category_column"], conf["id_column"]}
    items: list[PromptItem] = []
    seen: dict[str, str] = {}
    for src in sources:
        for n, row in enumerate(_read_rows(src, conf), start=1):
            prompt = _field(row, conf["prompt_column"])
            if not isinstance(prompt, str) or not prompt.strip():
                raise UserError(f"{row.where}: empty prompt")
            category = _row_category(row, conf, src)
            if known and category not in known:
                raise UserError(
                    f"{row.where}: unknown category {category!r} (expected one of: {', '.join(sorted(known))})"
                )
            pid = _row_id(row, conf, src, n)
            if pid in seen:
                raise UserError(f"{row.where}: duplicate prompt id {pid!r} (first at {seen[pid]})")
            seen[pid] = row.where
            extra = {k: v for k, v in row.fields.items() if k not in skip}
            items.append(PromptItem(pid, prompt, category, len(items) + 1, extra))
    return items


def _row_category(row: _Row, conf: dict[str, Any], src: SourceFile) -> str | None:
    if src.category is not None:
        return src.category
    if conf["category_column"]:
        value = _field(row, conf["category_column"])
        value = str(value).strip() if value is not None else ""
        if not value:
            raise UserError(f"{row.where}: empty category")
        return value
    return conf["category"]


def _row_id(row: _Row, conf: dict[str, Any], src: SourceFile, n: int) -> str:
    if conf["id_column"]:
        pid = str(_field(row, conf["id_column"]) or "").strip()
        if not pid:
            raise UserError(f"{row.where}: empty prompt id")
        return pid
    middle = f"{src.category}-" if src.category is not None else ""
    return f"{conf['id_prefix']}-{middle}{n:0{ID_WIDTH}d}"


def _check_counts(conf: dict[str, Any], items: list[PromptItem], counts: Counter) -> None:
    name = conf["name"]
    total = conf["expected_total"]
    if total is not None and len(items) != int(total):
        last = f"; last prompt read: {items[-1].prompt_id} {items[-1].prompt[:60]!r}" if items else ""
        raise UserError(
            f"benchmark {name!r} has {len(items)} prompts, expected {total}: the file is "
            f"incomplete or has extra rows{last}"
        )
    for cat, n in (conf["expected_counts"] or {}).items():
        if counts.get(cat, 0) != int(n):
            raise UserError(f"benchmark {name!r}: category {cat!r} has {counts.get(cat, 0)} prompts, expected {n}")


def _check_ocr_prompts(conf: dict[str, Any], items: list[PromptItem]) -> None:
    # Fail at load time, not after hours of generation, when an OCR-scored prompt quotes nothing.
    for item in items:
        if item.category in conf["ocr_categories"] and extract_quoted_text(item.prompt) is None:
            raise UserError(f"{item.prompt_id} ({item.category}) quotes no text for the OCR judge: {item.prompt!r}")


# --------------------------------------------------------------------------- subsetting


def _select(conf: dict[str, Any], items: list[PromptItem]) -> list[PromptItem]:
    name = conf["name"]
    if conf["prompt_ids"]:
        ids = [str(p) for p in conf["prompt_ids"]]
        by_id = {i.prompt_id: i for i in items}
        unknown = [p for p in ids if p not in by_id]
        if unknown:
            raise UserError(
                f"benchmark {name!r} has no prompt id {unknown[0]!r} (ids look like {items[0].prompt_id!r})"
            )
        wanted = set(ids)
        items = [i for i in items if i.prompt_id in wanted]
    if conf["categories"]:
        cats = [str(c) for c in conf["categories"]]
        present = list(dict.fromkeys(i.category for i in items))
        unknown = [c for c in cats if c not in present]
        if unknown:
            raise UserError(
                f"benchmark {name!r} has no category {unknown[0]!r} in the selection "
                f"(categories: {', '.join(map(str, present))})"
            )
        items = [i for i in items if i.category in cats]
    limit = conf["limit_per_category"]
    if limit is not None:
        if int(limit) < 1:
            raise UserError(f"limit_per_category must be a positive integer, got {limit}")
        taken: Counter = Counter()
        kept = []
        for i in items:
            if taken[i.category] < int(limit):
                taken[i.category] += 1
                kept.append(i)
        items = kept
    if not items:
        raise UserError(f"the subset of benchmark {name!r} is empty")
    return items


def _seeds(conf: dict[str, Any]) -> list[int]:
    n = int(conf["images_per_prompt"])
    seeds = list(range(n)) if conf["seeds"] is None else seed_list(conf["seeds"], "benchmark.seeds")
    if n < 1 or len(seeds) != n:
        raise UserError(
            f"benchmark {conf['name']!r}: seeds {seeds} must be {n} distinct integers (images_per_prompt={n})"
        )
    return seeds


def load_suite(cfg: Mapping[str, Any] | DictConfig | str, **overrides: Any) -> PromptSuite:
    """Load, validate and subset a suite from its config (a ``benchmark`` config, or a built-in name).

    ``load_suite("drawbench", categories=["Text"], limit_per_category=2)`` is the notebook form;
    the ``drawbench`` command passes ``cfg.benchmark``.
    """
    conf = _as_dict(cfg, overrides)
    sources = _sources(conf)
    items = _make_items(conf, sources)
    counts = Counter(i.category for i in items if i.category is not None)
    _check_counts(conf, items, counts)
    _check_ocr_prompts(conf, items)
    selected = _select(conf, items)
    grid = conf["grid"] or {}
    rows, cols = int(grid.get("rows", 2)), int(grid.get("cols", 4))
    if rows * cols < int(conf["images_per_prompt"]):
        raise UserError(
            f"benchmark {conf['name']!r}: a {rows}×{cols} grid cannot hold "
            f"{conf['images_per_prompt']} images per prompt"
        )
    return PromptSuite(
        name=conf["name"],
        items=selected,
        total=len(items),
        counts=dict(counts),
        sources=sources,
        images_per_prompt=int(conf["images_per_prompt"]),
        seeds=_seeds(conf),
        ocr_categories=[str(c) for c in conf["ocr_categories"] or []],
        grid=(rows, cols),
    )
