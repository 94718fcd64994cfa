"""Training stages: thin wrappers over TRL trainers with CPU-tuned defaults.

Every TRL config field can be set from a recipe's `train:` mapping; r1kit only chooses
defaults (device, precision, logging, checkpoints) and wires in its data and rewards.
"""

from r1kit.train.common import MetricsLog, device_defaults, last_checkpoint
from r1kit.train.config import trainer_config
from r1kit.train.grpo import train_grpo
from r1kit.train.sft import train_sft

__all__ = ["MetricsLog", "device_defaults", "last_checkpoint", "train_grpo", "train_sft", "trainer_config"]
