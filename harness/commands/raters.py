"""``imagen-bench raters [STUDY] key=value ...``: start the Streamlit rater app on a study database.

Prints one link per rater (``?token=``) and the admin link (``?admin=``) from the tokens file
that ``study create`` / ``add-raters`` wrote, then runs ``streamlit run raters_ui/app.py``
headless, without usage statistics, file watching or error details in the page. The database
URL and study reach the app through environment variables, never the command line (a URL may
hold a password).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from harness.commands.study import db_location, positional_to_overrides, tokens_path
from harness.hydra_app import command

APP = Path(__file__).resolve().parents[2] / "raters_ui" / "app.py"


def translate_args(args: list[str]) -> list[str]:
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
def main(cfg: DictConfig) -> None:
    code = launch(cfg)
    if code:
        raise SystemExit(code)
