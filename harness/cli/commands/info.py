"""``imagen-bench info model=<name>``: print the cascade's stages and parameter counts as JSON."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from harness.cli.hydra_app import command
from imagen.build import model_info


@command("info")
def main(cfg: DictConfig) -> dict:
    info = model_info(cfg)
    print(json.dumps(info, indent=2))
    return info


if __name__ == "__main__":
    main()
