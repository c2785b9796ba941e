"""Every subcommand is a Hydra app over a root config in ``conf/``.

``command("sample")`` wraps a task function with ``hydra.main`` on ``conf/sample.yaml`` and
turns :class:`UserError` into one line on stderr and exit code 2, so bad input never ends
in a traceback (Hydra's own handler would print one).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from harness.cli.console import ConsoleLog
from harness.errors import UserError

# ``harness/conf`` is a link to the repository's ``conf/`` folder, so the configs ship inside the harness
# package of a wheel (package data) and are found the same way from a checkout and from an install.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _rank_dir(path: str) -> str:
    """Hydra's run folder on rank 0; a private temporary folder on other ranks.

    Under torchrun every rank composes the config itself, and ``${now:...}`` in the run id can
    differ by a second between ranks; rank 0's folder is broadcast once the process group is up
    (``DistContext.broadcast_object``), so other ranks must not create folders of their own.
    """
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        return path
    return str(Path(os.environ.get("TMPDIR", "/tmp")) / f"imagen-bench-rank{rank}-{os.getpid()}")


if not OmegaConf.has_resolver("rank_dir"):
    OmegaConf.register_new_resolver("rank_dir", _rank_dir)


def _pkg_dir(name: str) -> str:
    """The folder of an installed package (``${pkg_dir:benchmarks.world}``): shipped data found from a checkout
    and from a wheel alike. Looked up by name, so the harness imports nothing of the part it points into."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"no package {name!r}")
    return str(Path(next(iter(spec.submodule_search_locations))).resolve())


if not OmegaConf.has_resolver("pkg_dir"):
    OmegaConf.register_new_resolver("pkg_dir", _pkg_dir)
if not OmegaConf.has_resolver("sweep_point"):
    from harness.cli.sweeps import sweep_point

    OmegaConf.register_new_resolver("sweep_point", sweep_point)


# Hydra flags that take the next argument as their value: that value is not a positional argument.
HYDRA_FLAGS_WITH_VALUE = frozenset(
    {
        "--cfg",
        "-c",
        "--package",
        "-p",
        "--config-path",
        "-cp",
        "--config-name",
        "-cn",
        "--config-dir",
        "-cd",
        "--info",
        "-i",
        "--experimental-rerun",
    }
)


def positional_to_overrides(args: list[str], keys: tuple[str, ...]) -> list[str]:
    """Turn the leading positional arguments into ``key=value`` overrides, in order of ``keys``."""
    out, names, skip = [], list(keys), False
    for arg in args:
        if skip or arg.startswith("-") or "=" in arg:
            skip = arg in HYDRA_FLAGS_WITH_VALUE
            out.append(arg)
            continue
        if not names:
            raise UserError(f"unexpected argument {arg!r}: give options as key=value")
        out.append(f"{names.pop(0)}={arg}")
    return out


class CommandExit(Exception):
    """Raised by a command that finished its work but reports an outcome through its exit code
    (``regress``: 1 fail, 3 inconclusive); its run folder and log are kept."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = int(code)


def report_user_error(name: str, err: BaseException) -> None:
    msg = " ".join(str(err).split()) or type(err).__name__
    print(f"imagen-bench {name}: error: {msg}", file=sys.stderr)


def _run_folder(cfg: DictConfig) -> Path | None:
    """This run's folder (commands with a ``run_id``); None for commands that only print."""
    from hydra.core.hydra_config import HydraConfig

    if "run_id" not in cfg or not HydraConfig.initialized():
        return None
    path = Path(HydraConfig.get().runtime.output_dir)
    return path if path.is_dir() else None


def command(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """Decorator: make ``fn(cfg)`` the Hydra app of ``imagen-bench <config_name>``."""

    def wrap(fn: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @functools.wraps(fn)
        def task(cfg: DictConfig) -> Any:
            run_dir = _run_folder(cfg)
            if run_dir is None:
                try:
                    return _guarded(fn, cfg)
                except CommandExit as done:
                    raise SystemExit(done.code) from None
            fresh = not any(run_dir.iterdir())
            with ConsoleLog(run_dir / f"{cfg.get('task_name') or config_name}.log") as log:
                if fresh:
                    log.accept()  # nothing in the folder to protect
                try:
                    result = _guarded(fn, cfg)
                except CommandExit as done:
                    log.accept()
                    raise SystemExit(done.code) from None
                except SystemExit:
                    log.discard()  # refused: an existing folder stays as it was
                    if fresh and run_dir.is_dir() and not [p for p in run_dir.iterdir() if p != log.path]:
                        shutil.rmtree(run_dir)  # a first run that failed before making anything leaves nothing
                    raise
                log.accept()
                return result

        def _guarded(fn: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
            try:
                return fn(cfg)
            except UserError as err:
                report_user_error(config_name, err)
                # SystemExit is not an Exception, so Hydra lets it through untouched.
                raise SystemExit(err.exit_code) from None
            except MissingMandatoryValue as err:
                key = getattr(err, "full_key", None) or "a required value"
                report_user_error(config_name, UserError(f"{key} is required: pass {key}=<value>"))
                raise SystemExit(2) from None
            except OmegaConfBaseException as err:  # a config that composes but does not fit the command
                msg = str(err).splitlines()[0] if str(err) else type(err).__name__
                report_user_error(config_name, UserError(f"config error: {msg}"))
                raise SystemExit(2) from None

        os.environ.setdefault("HYDRA_FULL_ERROR", "0")
        return hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(task)

    return wrap
