"""``imagen-bench fid DIR_A DIR_B [mode=clean|legacy_tensorflow] [extractor=PATH] [batch_size=N]``.

Prints one JSON line (see :func:`harness.metrics.fid_api.fid_between_folders`); warnings, such
as a singular covariance at small counts, go to stderr. The two positional folders become the
overrides ``a=...`` and ``b=...``, quoted for Hydra's grammar so that any path works.
"""

from __future__ import annotations

import json
import re
import sys

from omegaconf import DictConfig, OmegaConf

from harness.cli.hydra_app import CONF_DIR, HYDRA_FLAGS_WITH_VALUE, command
from harness.errors import UserError

_OVERRIDE = re.compile(r"^[+~]{0,2}([A-Za-z_][\w]*)(?:[.@/][\w.@/]*)?=")


def hydra_quote(value: str) -> str:
    """``value`` as a single-quoted Hydra override value that parses back to exactly ``value``.

    Hydra reads backslashes that precede a quote (or end the string) as escapes, so those runs
    are doubled and quotes escaped; ``${`` is escaped so OmegaConf does not interpolate it.
    """
    s = value.replace("${", "\\${")
    s = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, s)
    return "'" + s.replace("'", "\\'") + "'"


def _config_keys() -> set[str]:
    """Top-level keys of conf/fid.yaml plus its groups: only ``key=value`` with one is an override."""
    return {str(k) for k in OmegaConf.load(CONF_DIR / "fid.yaml")} - {"defaults"} | {"paths", "hydra"}


def translate_args(args: list[str]) -> list[str]:
    """Turn the two positional folders into ``a=`` / ``b=`` overrides; pass everything else on.

    An argument is an override only when it reads ``key=value`` with a key of conf/fid.yaml, so
    ``/data/x=1`` is a folder; a relative folder literally named like ``mode=clean`` needs ``./``.
    """
    keys, out, positional, i = _config_keys(), [], [], 0
    while i < len(args):
        arg = args[i]
        if arg in HYDRA_FLAGS_WITH_VALUE and i + 1 < len(args) and not args[i + 1].startswith("-"):
            out += [arg, args[i + 1]]
            i += 2
            continue
        match = _OVERRIDE.match(arg)
        if arg.startswith("-") or (match and match.group(1) in keys):
            out.append(arg)
        else:
            positional.append(arg)
        i += 1
    if len(positional) > 2:
        raise UserError(f"expected two image folders, got {len(positional)}: {' '.join(positional)}")
    return [f"{k}={hydra_quote(v)}" for k, v in zip("ab", positional)] + out


@command("fid")
def main(cfg: DictConfig) -> dict:
    from harness.metrics.fid_api import fid_between_folders  # torch loads only when a command runs
    from imagen.devices import resolve_device

    missing = [k for k in ("a", "b") if OmegaConf.is_missing(cfg, k)]
    if missing:
        raise UserError(f"missing image folder{'s' if len(missing) > 1 else ''}; usage: imagen-bench fid DIR_A DIR_B")
    result = fid_between_folders(
        cfg.a,
        cfg.b,
        mode=cfg.mode,
        extractor_path=cfg.extractor,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        device=str(resolve_device(cfg.device)),
        min_images=cfg.min_images,
        kid_subsets=cfg.kid_subsets,
        kid_subset_size=cfg.kid_subset_size,
        seed=cfg.seed,
        cache=cfg.cache,
        cache_dir=cfg.paths.cache_dir,
    )
    for warning in result["warnings"]:
        print(f"imagen-bench fid: warning: {warning}", file=sys.stderr)
    print(json.dumps(result), flush=True)
    return result
