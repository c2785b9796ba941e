"""``imagen-bench train data.root=<folder> [stage=<name>]``: train one stage of the cascade.

Runs data-parallel unchanged under ``torchrun --nproc_per_node=N -m harness.cli train ...``
or ``accelerate launch``.
"""

from __future__ import annotations

import json

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.cli.hydra_app import command
from imagen.distributed import env_rank
from imagen.training.trainer import train


@command("train")
def main(cfg: DictConfig) -> dict:
    result = train(cfg, HydraConfig.get().runtime.output_dir)
    if env_rank() == 0:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
