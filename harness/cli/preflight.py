"""What the CLI checks before a command's Hydra app runs, and each command's ``--help``.

Hydra reports a mistyped group or key with a multi-line message and exit code 1, and ``+key=value``
happily adds a key that nothing reads (``+sampler.stepz=1``), which would then be recorded in
``results.json`` as if it had been used. :func:`check_overrides` composes the command's config with the
user's overrides first (the first point of a sweep) and turns both into one line and exit code 2.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.cli.hydra_app import CONF_DIR, HYDRA_FLAGS_WITH_VALUE
from harness.cli.sweeps import ENV_SWEPT, swept_keys
from harness.errors import UserError

# Keys that ``+`` may add because their consumer validates them (a stage refuses unknown keys, a U-Net
# constructor unknown arguments, regress a threshold for a metric no run reports), and Hydra's settings.
OPEN_PREFIXES = ("hydra.", "model.stages.", "thresholds.")


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(overrides, flags) of a command line (a flag's value stays with the flag)."""
    overrides, flags, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg in HYDRA_FLAGS_WITH_VALUE and i + 1 < len(args):
            flags += [arg, args[i + 1]]
            i += 2
            continue
        (flags if arg.startswith("-") else overrides).append(arg)
        i += 1
    return overrides, flags


def _first_point(override: Any) -> str:
    """The override as written, or for a sweep (``a=1,2``) its first value."""
    if not override.is_sweep_override():
        return override.input_line
    prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
    package = f"@{override.package}" if override.package else ""
    return f"{prefix}{override.key_or_group}{package}={next(iter(override.sweep_string_iterator()))}"


def _is_group(key: str) -> bool:
    return (CONF_DIR / key.replace(".", "/")).is_dir() or key.split("/")[0] == "hydra"


def _first_line(err: BaseException) -> str:
    """Hydra's message on one line (its option lists included), without its documentation links."""
    text = str(err).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("See http")]
    msg = " ".join(lines).split(" Config search path:")[0] if lines else type(err).__name__
    msg = re.sub(
        r"Could not override '([^']+)'\. To append to your config use \+\S+",
        r"unknown key '\1' (check its spelling; `--cfg job` prints every key)",
        msg,
    )
    return msg if len(msg) <= 400 else msg[:397] + "..."


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise UserError(f"bad override: {_first_line(err)}") from None


def check_overrides(config_name: str, args: list[str]) -> None:
    """Refuse, with one line, overrides Hydra cannot apply and ``+`` keys that no code reads."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    overrides, _ = split_args(args)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise UserError(f"cannot parse override: {_first_line(err)}") from None
    first = [_first_point(o) for o in parsed]
    adds = [
        (o, line)
        for o, line in zip(parsed, first)
        if (o.is_add() or o.is_force_add())
        and not _is_group(o.key_or_group)
        and not o.key_or_group.startswith(OPEN_PREFIXES)
    ]
    base = _compose(config_name, [line for line in first if line not in {a[1] for a in adds}])
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    multirun = bool({"-m", "--multirun"} & set(args)) or str(base.hydra.get("mode")) == "RunMode.MULTIRUN"
    if sweeps and not multirun:
        raise UserError(
            f"{sweeps[0]} gives several values: add -m to run one job per value (or write [a,b] for a list)"
        )
    if multirun:  # point folders are named by these keys (harness/cli/sweeps.py)
        keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
        os.environ[ENV_SWEPT] = ",".join(swept_keys(keys, base.hydra.sweeper.get("params")))
    for o, _ in adds:
        if OmegaConf.select(base, o.key_or_group, default=_MISSING) is _MISSING:
            parent = o.key_or_group.rpartition(".")[0]
            node = OmegaConf.select(base, parent) if parent else base
            known = sorted(str(k) for k in node) if isinstance(node, DictConfig) else []
            raise UserError(
                f"unknown key {o.key_or_group!r}: nothing reads it"
                + (f" (keys under {parent or 'the root'}: {', '.join(known)})" if known else "")
            )
    _compose(config_name, first)


_MISSING = object()


def required_keys(cfg: DictConfig) -> list[str]:
    """Keys a composed config leaves ``???`` (they must be given)."""
    found: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if value == "???":
                found.append(f"{prefix}{key}")
            elif isinstance(value, dict):
                walk(value, f"{prefix}{key}.")

    walk(OmegaConf.to_container(cfg, resolve=False), "")  # unresolved: ${now:} needs a running app
    return [k for k in found if not k.startswith("hydra.")]


def _groups(cfg: DictConfig) -> list[str]:
    """The command's own config groups: the option it uses and the others available."""
    out = []
    for group, chosen in cfg.hydra.runtime.choices.items():
        if group.startswith("hydra") or group == "local" or not (CONF_DIR / group).is_dir():
            continue
        others = sorted(f.stem for f in (CONF_DIR / group).glob("*.yaml") if f.stem != chosen)
        out.append(f"  {group}={chosen}" + (f"   (also: {', '.join(others)})" if others else ""))
    if "benchmark" in cfg.hydra.runtime.choices:
        sweeps = sorted(f.stem for f in (CONF_DIR / "experiment").glob("*.yaml"))
        out.append(f"  +experiment=<name>   (sweeps and ablations: {', '.join(sweeps)})")
    return out


def command_help(name: str, target: str, summary: str, config_name: str | None = None, example: str = "") -> str:
    """``imagen-bench <name> --help``: what it does, its arguments (the module docstring), required keys,
    the config groups and how to see the resolved config."""
    module = importlib.import_module(target.split(":", 1)[0])
    doc = inspect.cleandoc(module.__doc__ or "").strip()
    config_name = config_name or name
    lines = [f"imagen-bench {name}: {summary}", "", doc, ""]
    if (Path(CONF_DIR) / f"{config_name}.yaml").is_file():
        cfg = _compose(config_name, [])
        required = required_keys(cfg)
        lines.append("required: " + (", ".join(f"{k}=..." for k in required) if required else "nothing"))
        groups = _groups(cfg)
        lines.append(
            f"options: key=value overrides of conf/{config_name}.yaml; `imagen-bench {name} --cfg job` "
            "prints the resolved config" + ("; config groups:" if groups else "")
        )
        lines += groups
    if example:
        lines += ["", f"example: {example}"]
    return "\n".join(lines)
