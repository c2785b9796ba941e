"""``verdict.json``: what ``imagen-bench regress`` decided, typed and versioned like ``results.json``.

Schema (``format: imagen-bench.verdict``, ``version: 1``)::

    baseline, candidate  {run_id, run_dir, fingerprint, checkpoint_sha256, model}: the two runs compared
    benchmark            benchmark name; prompts {count, sha256}; seeds
    level                confidence level of every interval (0.95)
    n_boot, seed         paired-bootstrap replicates and their seed
    thresholds           {output: {max_worse}} as applied, with the default for outputs not named
    rows                 one per (output, group): see :class:`VerdictRow`
    overall              pass | fail | inconclusive: fail if any row fails, else inconclusive if any row is,
                         else pass
    exit_code            0 pass, 1 fail, 3 inconclusive
    created, git, environment

A row's ``delta`` is candidate − baseline in the metric's own units; ``improvement`` is the same number
signed so that positive is better (``delta`` for higher-is-better metrics, ``-delta`` otherwise), and
``ci_low``/``ci_high`` bound the improvement. With threshold ``max_worse`` = m: **pass** when the interval
excludes a regression larger than m (``ci_low > -m``), **fail** when it lies wholly beyond it
(``ci_high < -m``), **inconclusive** otherwise, with ``prompts_to_decide`` from a power estimate.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from harness.formats.jsonio import in_folder, read_versioned_json
from harness.formats.results import finite_json

VERDICT_NAME = "verdict.json"
FORMAT = "imagen-bench.verdict"
VERSION = 1
VERDICTS = ("pass", "fail", "inconclusive")
EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3}


@dataclass
class VerdictRow:
    output: str  # the number compared (fid, clip_score, world_accuracy, ...)
    group: str  # stage (COCO) or category / overall (suites)
    metric: str  # the registered metric that reports it, and its version
    metric_version: str
    higher_is_better: bool
    baseline: float
    candidate: float
    delta: float  # candidate − baseline
    improvement: float  # delta signed so that positive is better
    ci_low: float | None  # interval of the improvement (paired bootstrap over prompts)
    ci_high: float | None
    n_prompts: int
    max_worse: float  # the regression that is tolerated, in the metric's units
    verdict: str  # pass | fail | inconclusive
    prompts_to_decide: int | None = None  # extra prompts a power estimate says would decide it
    method: str = "paired bootstrap over prompts"
    note: str | None = None


@dataclass
class Verdict:
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    benchmark: str
    prompts: dict[str, Any]
    seeds: Any
    level: float
    n_boot: int
    seed: int
    thresholds: dict[str, Any]
    rows: list[VerdictRow]
    overall: str
    exit_code: int
    environment: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    format: str = FORMAT
    version: int = VERSION


def overall_verdict(rows: list[VerdictRow]) -> str:
    verdicts = {r.verdict for r in rows}
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts or not rows:
        return "inconclusive"
    return "pass"


def write_verdict(folder: str | Path, verdict: Verdict) -> Path:
    path = Path(folder) / VERDICT_NAME
    data = json.dumps(finite_json(asdict(verdict)), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(path, data.encode("utf-8"))
    return path


def read_verdict(path: str | Path) -> Verdict:
    path = in_folder(path, VERDICT_NAME)
    raw = read_versioned_json(path, FORMAT, VERSION, "regression verdict")
    try:
        rows = [VerdictRow(**r) for r in raw.pop("rows")]
        known = set(Verdict.__dataclass_fields__)
        return Verdict(rows=rows, **{k: v for k, v in raw.items() if k in known})
    except (TypeError, KeyError) as err:
        raise UserError(f"{path} is not a complete verdict ({err})") from None


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def verdict_table(verdict: Verdict) -> str:
    """The verdict as a Markdown table (readable as plain text), worst rows first."""
    order = {"fail": 0, "inconclusive": 1, "pass": 2}
    lines = [
        (
            f"regress: candidate {verdict.candidate['run_id']} vs baseline {verdict.baseline['run_id']} on "
            f"{verdict.benchmark} ({verdict.prompts.get('count')} prompts; {verdict.level:.0%} paired-bootstrap "
            "intervals; improvement > 0 means the candidate is better)"
        ),
        "",
        "| metric | group | baseline | candidate | improvement [CI] | tolerated | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in sorted(verdict.rows, key=lambda r: (order[r.verdict], r.output, r.group)):
        arrow = "↑" if r.higher_is_better else "↓"
        ci = f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if r.ci_low is not None else "[undefined]"
        more = f" (+{r.prompts_to_decide} prompts to decide)" if r.prompts_to_decide else ""
        lines.append(
            f"| {r.output} {arrow} | {r.group} | {_fmt(r.baseline)} | {_fmt(r.candidate)} | "
            f"{_fmt(r.improvement)} {ci} | -{_fmt(r.max_worse)} | {r.verdict.upper()}{more} |"
        )
    lines += ["", f"overall: {verdict.overall.upper()} (exit code {verdict.exit_code})"]
    return "\n".join(lines)


def junit_xml(verdict: Verdict) -> str:
    """JUnit XML (one test case per row) for CI systems: fail → <failure>, inconclusive → <skipped>."""
    from xml.sax.saxutils import quoteattr

    fails = sum(r.verdict == "fail" for r in verdict.rows)
    skipped = sum(r.verdict == "inconclusive" for r in verdict.rows)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (
            f'<testsuites name="imagen-bench regress" tests="{len(verdict.rows)}" failures="{fails}" '
            f'skipped="{skipped}">'
        ),
        (
            f'  <testsuite name={quoteattr(verdict.benchmark)} tests="{len(verdict.rows)}" failures="{fails}" '
            f'skipped="{skipped}" timestamp={quoteattr(verdict.created)}>'
        ),
    ]
    for r in verdict.rows:
        msg = (
            f"{r.output} {r.group}: improvement {_fmt(r.improvement)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], "
            f"tolerated regression {_fmt(r.max_worse)}; baseline {_fmt(r.baseline)}, candidate {_fmt(r.candidate)}"
        )
        case = f"    <testcase classname={quoteattr(verdict.benchmark + '.' + r.group)} name={quoteattr(r.output)}"
        if r.verdict == "pass":
            out.append(case + "/>")
        else:
            tag = "failure" if r.verdict == "fail" else "skipped"
            out += [case + ">", f"      <{tag} message={quoteattr(msg)}/>", "    </testcase>"]
    out += ["  </testsuite>", "</testsuites>", ""]
    return "\n".join(out)
