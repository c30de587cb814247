"""Training on interactions: contrastive fine-tuning of the encoder (full or LoRA)."""

from coldbrew.train.config import TrainConfig
from coldbrew.train.pairs import TrainingPair, build_pairs

__all__ = ["TrainConfig", "TrainingPair", "build_pairs"]
