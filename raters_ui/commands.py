"""``imagen-bench study <action> [STUDY] key=value ...``: human preference studies.

Actions (the first positional argument; the second, if any, is the study name):

* ``create``: ``pairs=<study-pairs.json>`` or ``runs=[dirA,dirB,...]``; filters ``prompts=``,
  ``categories=``; ``ratings_per_item=``, ``raters=``, ``controls.count=`` etc. (conf/study.yaml).
  Prints the admin and rater tokens and appends them to the private tokens file.
* ``add-raters``: ``raters=N`` more tokens. ``rotate-admin``: a new admin token.
  ``rotate-tokens``: ``rater=rater-002`` (a label, a list, or ``all``): new links for raters,
  who keep their ratings (the old links stop working).
* ``export``: ``out=ratings.csv`` or ``.parquet``.
* ``export-labels``: ``out=labels.jsonl [question=alignment]``: the votes as a human-label file for
  ``imagen-bench meta-eval`` (:mod:`raters_ui.labels`).
* ``analyze``: preference rates, Bradley–Terry, agreement and control accuracy; ``out=<folder>``
  also writes analysis.json and CSV tables.
* ``configure``: ``instructions=``/``instructions_file=`` and ``consent=`` of a study (raters who
  have not started yet see the new text; ``""`` restores the paper's wording / drops the consent line).
* ``simulate``: ``simulate.raters=3 simulate.score=world_accuracy``: raters named ``simulated-NNN`` answer
  from an automatic per-prompt score of each system's run (demos; never mistaken for people).
* ``sample-size``: ``rate_a=0.45 rate_b=0.35`` -> ratings needed (no study needed).

Every value is checked before anything is written (:mod:`harness.validation`, :mod:`raters_ui.inputs`), and a ``create``
that fails removes what it made (database file, tokens file, image store, study folder), so bad
input is one line, exit 2 and nothing on disk. The Python entry points are in
``raters_ui.studies`` and ``raters_ui.analysis``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from harness.cli.hydra_app import command, positional_to_overrides
from harness.errors import UserError
from harness.formats.study_pairs import StudyPairs, build_study_pairs, read_pairs
from harness.registry import Registry, load_target
from harness.validation import INT32, as_bool, as_float, as_int
from raters_ui.inputs import check_study_name

if TYPE_CHECKING:
    from raters_ui.db import StudyDB
    from raters_ui.simulate import SimulationSpec
    from raters_ui.tokens import Tokens, TokenSink

CLUSTER_COLUMNS = ("prompt_id", "rater")


def study_args(args: list[str]) -> list[str]:
    """``imagen-bench study <action> [STUDY] ...``: the leading positionals are the action and study."""
    out = positional_to_overrides(args, ("action", "study"))
    for a in out:
        if a.startswith("action="):
            STUDY_ACTIONS[a.split("=", 1)[1]]  # an unknown action: one line naming those that exist
    return out


def as_list(value: Any) -> list[str] | None:
    """A Hydra list, or a comma-separated string, as a list of strings (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def study_folder(cfg: DictConfig) -> Path:
    return Path(cfg.studies_dir) / check_study_name(cfg.study)


def db_location(cfg: DictConfig) -> str:
    if cfg.db:
        return str(cfg.db)
    if not cfg.get("study"):
        raise UserError("give db=<file or URL> or study=<name>")
    return str(study_folder(cfg) / "study.db")


def sqlite_file(location: str) -> Path | None:
    """The file of a SQLite location (None for a server URL)."""
    from sqlalchemy import exc

    from raters_ui.db import normalize_url, sqlite_path

    try:
        return sqlite_path(normalize_url(location))
    except exc.ArgumentError:
        return None  # open_db says what is wrong with it


def home_folder(cfg: DictConfig, location: str) -> Path:
    """Where a study's tokens file and store live by default: beside a SQLite file, else the
    study's folder under ``studies_dir``."""
    path = sqlite_file(location)
    return path.parent if path is not None else study_folder(cfg)


def tokens_path(cfg: DictConfig, location: str) -> Path:
    if cfg.tokens_file:
        return Path(str(cfg.tokens_file))
    return home_folder(cfg, location) / "tokens.csv"


def _print_tokens(tokens: Tokens, path: Path) -> None:
    if tokens.admin:
        print(f"admin link:  ?admin={tokens.admin}")
    for label, tok in tokens.raters.items():
        print(f"{label}:   ?token={tok}")
    print(f"tokens appended to {path} (readable by you only); `imagen-bench raters {tokens.study}` prints full links")


def _load_pairs(cfg: DictConfig) -> StudyPairs:
    if bool(cfg.pairs) == bool(cfg.runs):
        raise UserError("study create needs exactly one of pairs=<study-pairs.json> or runs=[dirA,dirB,...]")
    if cfg.pairs:
        return read_pairs(str(cfg.pairs))
    runs = as_list(cfg.runs) or []
    if len(runs) < 2:
        raise UserError(f"runs= needs at least two run folders, got {runs}")
    return build_study_pairs(
        [Path(r) for r in runs], prompt_ids=as_list(cfg.prompts), categories=as_list(cfg.categories), stage=cfg.stage
    )


def instructions_text(cfg: DictConfig) -> str | None:
    """``instructions=`` or the text of ``instructions_file=`` (not both)."""
    if cfg.get("instructions") is not None and cfg.get("instructions_file"):
        raise UserError("give instructions= or instructions_file=, not both")
    if cfg.get("instructions_file"):
        path = Path(str(cfg.instructions_file))
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"cannot read instructions_file={path}: {getattr(err, 'strerror', None) or err}") from None
    return None if cfg.get("instructions") is None else str(cfg.instructions)


def min_seconds(cfg: DictConfig) -> float | None:
    value = cfg.get("min_seconds")
    return None if value is None else as_float(value, "min_seconds", 0.0, 3600.0)


def _spec(cfg: DictConfig):
    from raters_ui.controls import ControlSpec
    from raters_ui.storage import MAX_SIDE, MIN_SIDE
    from raters_ui.studies import StudySpec

    c = cfg.controls
    controls = ControlSpec(
        count=as_int(c.count, "controls.count", 0, 100_000),
        every=as_int(c.every, "controls.every", 1, INT32),
        mode=str(c.mode),
        threshold=as_float(c.threshold, "controls.threshold", 0.0, 1.0),
    )
    return StudySpec(
        name=check_study_name(cfg.study),
        ratings_per_item=as_int(cfg.ratings_per_item, "ratings_per_item", 1, 10_000),
        raters=as_int(cfg.raters, "raters", 0, 10_000),
        prompt_ids=as_list(cfg.prompts),
        categories=as_list(cfg.categories),
        baseline=None if cfg.baseline is None else str(cfg.baseline),
        items_per_rater=as_int(cfg.items_per_rater, "items_per_rater", 1, INT32, nullable=True),
        controls=controls,
        max_side=as_int(cfg.max_side, "max_side", MIN_SIDE, MAX_SIDE, nullable=True),
        image_size=as_int(cfg.image_size, "image_size", MIN_SIDE, MAX_SIDE, nullable=True),
        seed=as_int(cfg.seed, "seed", 0, INT32),
        instructions=instructions_text(cfg),
        consent=None if cfg.consent is None else str(cfg.consent),
        practice=as_int(cfg.practice, "practice", 0, 2),
        min_seconds=min_seconds(cfg),
    )


class _Made:
    """What a ``create`` makes on disk, so that a failed one can remove it all again."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.dirs: list[Path] = []

    def note(self, path: Path, kind: str) -> None:
        """Remember ``path`` (a "dir", "file" or "sqlite" file about to be made, unless it exists)
        and its missing parent folders."""
        path = path.absolute()
        for parent in reversed(path.parents):
            if not parent.exists():
                self.dirs.append(parent)  # the outermost missing folder takes everything below it
                return
        if path.exists():
            return
        if kind == "dir":
            self.dirs.append(path)
        else:
            self.files.append(path)
        if kind == "sqlite":  # SQLite's companions, and our writers' lock file
            self.files += [Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal", ".writelock")]

    def remove(self) -> None:
        for f in self.files:
            f.unlink(missing_ok=True)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


def create(cfg: DictConfig) -> None:
    from raters_ui.db import display_url, open_db
    from raters_ui.studies import create_study, plan_study
    from raters_ui.tokens import TokenSink

    spec = _spec(cfg)
    pairs = _load_pairs(cfg)
    plan = plan_study(pairs, spec)  # every check that needs no database, before anything is made
    location = db_location(cfg)
    db_file = sqlite_file(location)
    store = Path(str(cfg.store)) if cfg.store else home_folder(cfg, location) / "store"
    made, sink, db = _Made(), None, None
    made.note(store, "dir")
    if db_file is not None:
        made.note(db_file, "sqlite")
    try:
        db = open_db(location, create=True)
        sink = TokenSink(tokens_path(cfg, location))  # an unwritable tokens file fails here, before any commit
        result = create_study(db, pairs, spec, store, plan=plan, sink=sink)
    except BaseException:
        if db is not None:
            db.dispose()
        if sink is not None:
            sink.undo()
        made.remove()
        raise
    sink.close()
    print(
        f"created study {result.name!r} in {display_url(db.url)}: {result.n_items} items from "
        f"{len(pairs.systems)} systems, {result.n_controls} controls, {len(result.tokens.raters)} raters"
    )
    print(f"image store: {result.store_dir}; {result.size.describe()}")
    _print_tokens(result.tokens, sink.path)


def _with_sink(cfg: DictConfig, location: str, fn: Callable[[TokenSink], Tokens]) -> None:
    """Run ``fn(sink)`` (a transaction writing tokens) with the tokens file opened first."""
    from raters_ui.tokens import TokenSink

    sink = TokenSink(tokens_path(cfg, location))
    try:
        tokens = fn(sink)
    except BaseException:
        sink.undo()
        raise
    sink.close()
    _print_tokens(tokens, sink.path)


def _run(target: str) -> Callable[[DictConfig, StudyDB, str, Any], None]:
    """An action that lives in its own module (``module:function(cfg, db)``), imported when it runs."""
    return lambda cfg, db, location, _: load_target(target, "study action")(cfg, db)


def analysis_options(cfg: DictConfig) -> dict:
    """The checked options of ``study analyze``."""
    clusters = as_list(cfg.clusters) or []
    if any(c not in CLUSTER_COLUMNS for c in clusters) or len(set(clusters)) != len(clusters):
        raise UserError(f"clusters must list prompt_id and/or rater once each (e.g. [prompt_id]), got {clusters}")
    if cfg.out and Path(str(cfg.out)).exists() and not Path(str(cfg.out)).is_dir():
        raise UserError(f"out={cfg.out} is a file; analyze writes a folder of tables")
    return {
        "exclude": as_bool(cfg.exclude, "exclude"),
        "n_boot": as_int(cfg.n_boot, "n_boot", 10, 1_000_000),
        "level": as_float(cfg.level, "level", 0.0, 1.0, open_lo=True, open_hi=True),
        "seed": as_int(cfg.seed, "seed", 0, INT32),
        "clusters": tuple(clusters),
    }


def quality_options(cfg: DictConfig) -> dict:
    """The checked rater-check settings of ``study analyze`` (``min_seconds``, ``quality.*``)."""
    q = cfg.get("quality") or {}
    return {
        "min_seconds": min_seconds(cfg),
        "floor_fraction": as_float(q.get("floor_fraction", 0.25), "quality.floor_fraction", 0.0, 1.0),
        "floor_min": as_float(q.get("floor_min", 2.0), "quality.floor_min", 0.0, 3600.0),
        "same_side": as_float(q.get("same_side", 0.9), "quality.same_side", 0.5, 1.0, open_lo=True),
        "side_alpha": as_float(q.get("side_alpha", 0.01), "quality.side_alpha", 0.0, 1.0, open_lo=True, open_hi=True),
        "min_items": as_int(q.get("min_items", 3), "quality.min_items", 1, INT32),
    }


def analyze(cfg: DictConfig, db: StudyDB) -> None:
    from raters_ui import analysis
    from raters_ui.admin import progress_by_category, study_overview
    from raters_ui.quality import QualityRules
    from raters_ui.ratings import load_ratings

    options = analysis_options(cfg)
    checks = quality_options(cfg)
    info = study_overview(db, str(cfg.study))
    if checks["min_seconds"] is None:  # the study's own floor, if its owner set one
        checks["min_seconds"] = info.get("min_seconds")
    ratings = load_ratings(db, str(cfg.study))
    print(progress_by_category(db, str(cfg.study)).to_string(index=False))
    result = analysis.analyze(
        ratings,
        threshold=info["control_threshold"],
        ratings_per_item=info["ratings_per_item"],
        names=info["names"],
        quality=QualityRules(**checks, control_threshold=info["control_threshold"]),
        **options,
    )
    print(analysis.format_analysis(result))
    table, notes = analysis.metric_agreement_tables(
        ratings,
        study_run_folders(db, str(cfg.study), info["names"]),
        threshold=info["control_threshold"],
        exclude=options["exclude"],
        ratings_per_item=info["ratings_per_item"],
        names=info["names"],
        level=options["level"],
    )
    print(analysis.format_metric_agreement(table, notes, options["level"]))
    if cfg.out:
        print(f"wrote {analysis.write_analysis(result, str(cfg.out))}")
        if (written := analysis.write_metric_agreement(table, str(cfg.out))) is not None:
            print(f"wrote {written}")


def study_run_folders(db: StudyDB, study: str, names: dict[str, str]) -> dict[str, str]:
    """System name (its run id) -> the run folder the study-pairs file recorded for it."""
    from sqlalchemy import select

    from raters_ui.db import System
    from raters_ui.studies import get_study

    with db.read() as s:
        found = get_study(s, study)
        rows = s.execute(select(System.label, System.source).where(System.study_id == found.id)).all()
    return {names.get(label, label): source for label, source in rows if source}


def sample_size(cfg: DictConfig) -> None:
    from raters_ui.stats import ratings_needed, simulated_power

    if cfg.rate_a is None or cfg.rate_b is None:
        raise UserError("sample-size needs rate_a= and rate_b= (expected preference rates of A and B)")
    a, b = as_float(cfg.rate_a, "rate_a", 0.0, 1.0), as_float(cfg.rate_b, "rate_b", 0.0, 1.0)
    alpha = as_float(cfg.alpha, "alpha", 0.0, 1.0, open_lo=True, open_hi=True)
    power = as_float(cfg.power, "power", 0.0, 1.0, open_lo=True, open_hi=True)
    deff = as_float(cfg.design_effect, "design_effect", 0.0, 1000.0, open_lo=True)
    try:
        n = ratings_needed(a, b, alpha=alpha, power=power, design_effect=deff)
    except ValueError as err:
        raise UserError(str(err)) from None
    check = simulated_power(a, b, max(1, round(n / deff)), alpha=alpha)
    print(
        f"{n} ratings to detect A {a:.3f} vs B {b:.3f} (ties {1 - a - b:.3f}) at alpha {alpha:g}, "
        f"power {power:g}, design effect {deff:g} (simulated power without clustering: {check:.3f})"
    )


def rotate_tokens(cfg: DictConfig, db: StudyDB, location: str) -> None:
    from raters_ui.studies import rotate_rater_tokens

    wanted = as_list(cfg.rater)
    if not wanted:
        raise UserError("rotate-tokens needs rater=<label>, rater=[rater-001,rater-002] or rater=all")
    labels = None if wanted == ["all"] else wanted
    _with_sink(cfg, location, lambda sink: rotate_rater_tokens(db, str(cfg.study), labels, sink))


def simulation_spec(cfg: DictConfig) -> SimulationSpec:
    """``simulate.*`` checked before the database is opened."""
    from raters_ui.simulate import SimulationSpec

    node = cfg.simulate
    seconds = [float(x) for x in node.seconds] if node.seconds is not None else []
    if len(seconds) != 2 or not 0 < seconds[0] <= seconds[1]:
        raise UserError(f"simulate.seconds must be [low, high] with 0 < low <= high, got {node.seconds}")
    temperature = float(node.temperature)
    if not temperature > 0:
        raise UserError(f"simulate.temperature must be > 0, got {node.temperature}")
    return SimulationSpec(
        raters=as_int(node.raters, "simulate.raters", 1, 100),
        score=str(node.score),
        temperature=temperature,
        tie_margin=float(node.tie_margin),
        seconds=tuple(seconds),
        seed=as_int(node.seed, "simulate.seed", 0, 2**31 - 1),
    )


def _simulate(cfg: DictConfig, db: StudyDB, location: str, sim: SimulationSpec) -> None:
    from raters_ui.simulate import simulate_raters

    done = simulate_raters(db, str(cfg.study), sim)
    print(
        f"SIMULATED raters (answers follow {sim.score}, not people): "
        + ", ".join(f"{k} rated {v}" for k, v in done.items())
    )


def _configure(cfg: DictConfig, db: StudyDB, location: str, text: str | None) -> None:
    from raters_ui.studies import configure_study

    print(
        configure_study(
            db, str(cfg.study), instructions=text, consent=None if cfg.consent is None else str(cfg.consent)
        )
    )


def _add_raters(cfg: DictConfig, db: StudyDB, location: str, n: int) -> None:
    from raters_ui.studies import add_raters

    _with_sink(cfg, location, lambda sink: add_raters(db, str(cfg.study), n, sink))


def _rotate_admin(cfg: DictConfig, db: StudyDB, location: str, _: None) -> None:
    from raters_ui.studies import Tokens, rotate_admin_token

    _with_sink(cfg, location, lambda sink: Tokens(str(cfg.study), rotate_admin_token(db, str(cfg.study), sink), {}))


def _check_analysis(cfg: DictConfig) -> None:
    analysis_options(cfg)
    quality_options(cfg)


@dataclass(frozen=True)
class StudyAction:
    """One ``imagen-bench study <action>``: ``check(cfg)`` runs before the database is opened (bad options
    fail first, touching nothing) and its value goes to ``apply(cfg, db, location, checked)``. An action
    without a database (``create`` makes one, ``sample-size`` needs none) has ``alone(cfg)`` instead."""

    apply: Callable[[DictConfig, Any, str, Any], None] | None = None
    check: Callable[[DictConfig], Any] = lambda cfg: None
    alone: Callable[[DictConfig], None] | None = None
    needs_study: bool = True


STUDY_ACTIONS: Registry[StudyAction] = Registry(
    "study action",
    {
        "create": StudyAction(alone=create),
        "export": StudyAction(_run("raters_ui.ratings:export_command")),
        "export-labels": StudyAction(_run("raters_ui.labels:export_labels_command")),
        "analyze": StudyAction(lambda cfg, db, location, _: analyze(cfg, db), check=_check_analysis),
        "add-raters": StudyAction(_add_raters, check=lambda cfg: as_int(cfg.raters, "raters", 1, 10_000)),
        "rotate-admin": StudyAction(_rotate_admin),
        "rotate-tokens": StudyAction(lambda cfg, db, location, _: rotate_tokens(cfg, db, location)),
        "configure": StudyAction(_configure, check=instructions_text),
        "simulate": StudyAction(_simulate, check=simulation_spec),
        "sample-size": StudyAction(alone=sample_size, needs_study=False),
    },
    check=lambda a: isinstance(a, StudyAction),
    expected="a raters_ui.commands.StudyAction",
)


def run(cfg: DictConfig) -> None:
    """The notebook entry: the same as the command line, with a composed config."""
    from raters_ui.db import open_db

    usage = f"use imagen-bench study <{'|'.join(STUDY_ACTIONS)}> <study> key=value ..."
    if OmegaConf.is_missing(cfg, "action"):
        raise UserError(f"missing action: {usage}")
    action = STUDY_ACTIONS[str(cfg.action)]
    if action.needs_study:
        if OmegaConf.is_missing(cfg, "study"):
            raise UserError(f"missing study: {usage}")
        check_study_name(cfg.study)
    if action.alone is not None:
        action.alone(cfg)
        return
    checked = action.check(cfg)  # bad options fail before the database is opened
    location = db_location(cfg)
    action.apply(cfg, open_db(location), location, checked)


@command("study")
def study_main(cfg: DictConfig) -> None:
    run(cfg)


# --- imagen-bench raters ---------------------------------------------------------------------

APP = Path(__file__).resolve().with_name("app.py")


def raters_args(args: list[str]) -> list[str]:
    """``imagen-bench raters [STUDY] ...``: the leading positional is the study."""
    return positional_to_overrides(args, ("study",))


def streamlit_command(host: str, port: int) -> list[str]:
    """The server command line (also used by the browser test), with the app's AA-contrast theme."""
    from raters_ui import theme

    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.address",
        str(host),
        "--server.port",
        str(int(port)),
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--global.developmentMode",
        "false",
        *theme.streamlit_options(),
    ]


def app_env(db_url: str, study: str | None) -> dict[str, str]:
    from raters_ui import ENV_DB, ENV_STUDY

    env = dict(os.environ)
    env[ENV_DB] = db_url
    env.pop(ENV_STUDY, None)
    if study:
        env[ENV_STUDY] = study
    return env


def links(rows: list[dict[str, str]], base: str) -> list[str]:
    out = []
    for r in rows:
        key = "admin" if r["role"] == "admin" else "token"
        who = f"{r['study']} admin" if r["role"] == "admin" else f"{r['study']} {r['label']}"
        out.append(f"{who:<28} {base}/?{key}={r['token']}")
    return out


def launch(cfg: DictConfig) -> int:
    """Check the database, print the links valid in it and run the server until it stops (or just print)."""
    from raters_ui.db import open_db
    from raters_ui.studies import get_study
    from raters_ui.tokens import current_links, missing_links, read_tokens_file

    study = check_study_name(cfg.study) if cfg.study is not None else None
    port = as_int(cfg.port, "port", 1, 65535)
    dry_run = as_bool(cfg.dry_run, "dry_run")
    if not str(cfg.host or "").strip():
        raise UserError("host must be an address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    location = db_location(cfg)
    db = open_db(location)
    if study:
        with db.read() as s:
            get_study(s, study)
    base = (str(cfg.public_url) if cfg.public_url else f"http://{cfg.host}:{port}").rstrip("/")
    tokens = tokens_path(cfg, location) if (cfg.tokens_file or sqlite_file(location) or study) else None
    rows = current_links(db, read_tokens_file(tokens, study), study) if tokens else []
    print(f"rater app for {'study ' + repr(study) if study else 'every study'} at {base}/")
    for line in links(rows, base):
        print("  " + line)
    if not rows:
        print(
            f"  (no valid links in {tokens or 'a tokens file'}; issue new ones with "
            "`imagen-bench study rotate-tokens <study> rater=all` or `study add-raters`)"
        )
    elif study and (lost := missing_links(db, rows, study)):
        print(
            f"  ({len(lost)} rater(s) without a link in {tokens}: {', '.join(lost[:5])}"
            f"{' ...' if len(lost) > 5 else ''}; `imagen-bench study rotate-tokens {study} rater=<label>` "
            "issues a new one)"
        )
    cmd = streamlit_command(cfg.host, port)
    if dry_run:
        print(" ".join(cmd))
        return 0
    db.dispose()
    proc = subprocess.Popen(cmd, env=app_env(db.url, study))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


@command("raters")
def raters_main(cfg: DictConfig) -> None:
    code = launch(cfg)
    if code:
        raise SystemExit(code)
