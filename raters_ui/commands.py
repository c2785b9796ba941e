"""``imagen-bench study <action> [STUDY] key=value ...``: human preference studies.

Actions (the first positional argument; the second, if any, is the study name):

* ``create``: ``pairs=<study-pairs.json>`` or ``runs=[dirA,dirB,...]``; filters ``prompts=``,
  ``categories=``; ``ratings_per_item=``, ``raters=``, ``controls.count=`` etc. (conf/study.yaml).
  Prints the admin and rater tokens and appends them to the private tokens file.
* ``add-raters``: ``raters=N`` more tokens. ``rotate-admin``: a new admin token.
* ``export``: ``out=ratings.csv`` or ``.parquet``.
* ``analyze``: preference rates, Bradley–Terry, agreement and control accuracy; ``out=<folder>``
  also writes analysis.json and CSV tables.
* ``sample-size``: ``rate_a=0.45 rate_b=0.35`` -> ratings needed (no study needed).

The Python entry points are in ``raters_ui.studies`` and ``raters_ui.analysis``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from harness.errors import UserError
from harness.formats.study_pairs import StudyPairs, build_study_pairs, read_pairs
from harness.hydra_app import command, positional_to_overrides

ACTIONS = ("create", "export", "analyze", "add-raters", "rotate-admin", "sample-size")


def study_args(args: list[str]) -> list[str]:
    """``imagen-bench study <action> [STUDY] ...``: the leading positionals are the action and study."""
    out = positional_to_overrides(args, ("action", "study"))
    for a in out:
        if a.startswith("action=") and a.split("=", 1)[1] not in ACTIONS:
            raise UserError(f"unknown study action {a.split('=', 1)[1]!r}; use one of {', '.join(ACTIONS)}")
    return out


def as_list(value: Any) -> list[str] | None:
    """A Hydra list, or a comma-separated string, as a list of strings (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def study_folder(cfg: DictConfig) -> Path:
    return Path(cfg.studies_dir) / str(cfg.study)


def db_location(cfg: DictConfig) -> str:
    if cfg.db:
        return str(cfg.db)
    if not cfg.get("study"):
        raise UserError("give db=<file or URL> or study=<name>")
    return str(study_folder(cfg) / "study.db")


def tokens_path(cfg: DictConfig, db) -> Path:
    if cfg.tokens_file:
        return Path(cfg.tokens_file)
    return (db.folder if db.folder is not None else study_folder(cfg)) / "tokens.csv"


def _print_tokens(tokens, path: Path) -> None:
    if tokens.admin:
        print(f"admin link:  ?admin={tokens.admin}")
    for label, tok in tokens.raters.items():
        print(f"{label}:   ?token={tok}")
    print(f"tokens appended to {path} (readable by you only); `imagen-bench raters {tokens.study}` "
          "prints full links")


def _load_pairs(cfg: DictConfig) -> StudyPairs:
    if bool(cfg.pairs) == bool(cfg.runs):
        raise UserError("study create needs exactly one of pairs=<study-pairs.json> or runs=[dirA,dirB,...]")
    if cfg.pairs:
        return read_pairs(cfg.pairs)
    runs = as_list(cfg.runs) or []
    if len(runs) < 2:
        raise UserError(f"runs= needs at least two run folders, got {runs}")
    return build_study_pairs([Path(r) for r in runs], prompt_ids=as_list(cfg.prompts),
                             categories=as_list(cfg.categories), stage=cfg.stage)


def create(cfg: DictConfig) -> None:
    from raters_ui.controls import ControlSpec
    from raters_ui.db import display_url, open_db
    from raters_ui.studies import StudySpec, create_study, write_tokens_file

    pairs = _load_pairs(cfg)
    spec = StudySpec(name=str(cfg.study), ratings_per_item=int(cfg.ratings_per_item), raters=int(cfg.raters),
                     prompt_ids=as_list(cfg.prompts), categories=as_list(cfg.categories),
                     baseline=cfg.baseline, items_per_rater=cfg.items_per_rater,
                     controls=ControlSpec(**OmegaConf.to_container(cfg.controls)),
                     max_side=cfg.max_side, seed=int(cfg.seed))
    db = open_db(db_location(cfg), create=True)
    if cfg.store:
        store = Path(cfg.store)
    else:
        store = (db.folder if db.folder is not None else study_folder(cfg)) / "store"
    made = create_study(db, pairs, spec, store)
    print(f"created study {made.name!r} in {display_url(db.url)}: {made.n_items} items from "
          f"{len(pairs.systems)} systems, {made.n_controls} controls, {len(made.tokens.raters)} raters")
    print(f"image store: {made.store_dir}")
    _print_tokens(made.tokens, write_tokens_file(tokens_path(cfg, db), made.tokens))


def export(cfg: DictConfig, db) -> None:
    from raters_ui.studies import export_ratings

    if not cfg.out:
        raise UserError("study export needs out=<file.csv> or out=<file.parquet>")
    path = export_ratings(db, str(cfg.study), cfg.out, include_controls=bool(cfg.include_controls))
    print(f"wrote {path}")


def analyze(cfg: DictConfig, db) -> None:
    from raters_ui import analysis
    from raters_ui.admin import progress_by_category, study_overview
    from raters_ui.studies import load_ratings

    info = study_overview(db, str(cfg.study))
    ratings = load_ratings(db, str(cfg.study))
    print(progress_by_category(db, str(cfg.study)).to_string(index=False))
    result = analysis.analyze(ratings, threshold=info["control_threshold"], exclude=bool(cfg.exclude),
                              n_boot=int(cfg.n_boot), level=float(cfg.level), seed=int(cfg.seed),
                              clusters=tuple(as_list(cfg.clusters) or ()))
    print(analysis.format_analysis(result))
    if cfg.out:
        print(f"wrote {analysis.write_analysis(result, cfg.out)}")


def sample_size(cfg: DictConfig) -> None:
    from raters_ui.stats import ratings_needed, simulated_power

    if cfg.rate_a is None or cfg.rate_b is None:
        raise UserError("sample-size needs rate_a= and rate_b= (expected preference rates of A and B)")
    a, b = float(cfg.rate_a), float(cfg.rate_b)
    try:
        n = ratings_needed(a, b, alpha=float(cfg.alpha), power=float(cfg.power),
                           design_effect=float(cfg.design_effect))
    except ValueError as err:
        raise UserError(str(err)) from None
    check = simulated_power(a, b, int(round(n / float(cfg.design_effect))), alpha=float(cfg.alpha))
    print(f"{n} ratings to detect A {a:.3f} vs B {b:.3f} (ties {1 - a - b:.3f}) at alpha {cfg.alpha}, "
          f"power {cfg.power}, design effect {cfg.design_effect} (simulated power without clustering: "
          f"{check:.3f})")


def run(cfg: DictConfig) -> None:
    """The notebook entry: the same as the command line, with a composed config."""
    from raters_ui.db import open_db
    from raters_ui.studies import Tokens, add_raters, rotate_admin_token, write_tokens_file

    if not OmegaConf.is_missing(cfg, "action") and cfg.action == "sample-size":
        sample_size(cfg)
        return
    for key in ("action", "study"):
        if OmegaConf.is_missing(cfg, key):
            raise UserError(f"missing {key}: use imagen-bench study <{'|'.join(ACTIONS)}> <study> "
                            "key=value ...")
    action = str(cfg.action)
    if action not in ACTIONS:
        raise UserError(f"unknown study action {action!r}; use one of {', '.join(ACTIONS)}")
    if action == "create":
        create(cfg)
        return
    db = open_db(db_location(cfg))
    if action == "export":
        export(cfg, db)
    elif action == "analyze":
        analyze(cfg, db)
    elif action == "add-raters":
        tokens = add_raters(db, str(cfg.study), int(cfg.raters))
        _print_tokens(tokens, write_tokens_file(tokens_path(cfg, db), tokens))
    else:
        tokens = Tokens(str(cfg.study), rotate_admin_token(db, str(cfg.study)), {})
        _print_tokens(tokens, write_tokens_file(tokens_path(cfg, db), tokens))


@command("study")
def study_main(cfg: DictConfig) -> None:
    run(cfg)


# --- imagen-bench raters ---------------------------------------------------------------------

APP = Path(__file__).resolve().with_name("app.py")


def raters_args(args: list[str]) -> list[str]:
    """``imagen-bench raters [STUDY] ...``: the leading positional is the study."""
    return positional_to_overrides(args, ("study",))


def streamlit_command(host: str, port: int) -> list[str]:
    """The server command line (also used by the browser test)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.address", str(host), "--server.port", str(int(port)),
            "--server.fileWatcherType", "none", "--server.runOnSave", "false",
            "--client.showErrorDetails", "none", "--client.toolbarMode", "minimal",
            "--global.developmentMode", "false"]


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
    """Check the database, print the links and run the server until it stops (or just print)."""
    from raters_ui.db import open_db
    from raters_ui.studies import get_study, read_tokens_file

    db = open_db(db_location(cfg))
    study = str(cfg.study) if cfg.study else None
    if study:
        with db.read() as s:
            get_study(s, study)
    base = (cfg.public_url or f"http://{cfg.host}:{cfg.port}").rstrip("/")
    tokens = tokens_path(cfg, db) if (cfg.tokens_file or db.folder is not None or study) else None
    rows = read_tokens_file(tokens, study) if tokens else []
    print(f"rater app for {'study ' + repr(study) if study else 'every study'} at {base}/")
    for line in links(rows, base):
        print("  " + line)
    if not rows:
        print(f"  (no tokens file at {tokens}; create raters with `imagen-bench study add-raters`)")
    cmd = streamlit_command(cfg.host, int(cfg.port))
    if cfg.dry_run:
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
