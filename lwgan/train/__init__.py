"""Training: the train(config) loop, one step's G and D updates, resume checkpoints, torchrun set-up."""

from lwgan.train.loop import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
