"""Rebuild a finished run's model and loss head from its directory (weights via safetensors only)."""

from __future__ import annotations

import logging

import torch

import losses
import models
from lab import datasets
from lab.datasets import Dataset
from lab.runs.tensor_files import split_weights
from lab.runs.store import RunStore, RunStoreError
from lab.runs.record import RunRecord, require_config

logger = logging.getLogger(__name__)


def load_trained(
    store: RunStore, record: RunRecord, dataset: Dataset | None = None, device: str | torch.device = "cpu"
) -> tuple[models.FeatureNet, losses.LossHead]:
    """The run's model and head with its saved weights and state, in eval mode on ``device``. The shapes
    come from ``dataset`` when given, else from the dataset registry: the dataset itself is not needed."""
    config = require_config(record)
    if dataset is None:
        info = datasets.info(config.dataset)
        channels, size, n_classes = info.channels, info.image_size, info.n_classes
    else:
        channels, size, n_classes = dataset.in_channels, dataset.image_size, dataset.n_classes
    model = models.build(config.model, channels, size, config.feat_dim)
    head = losses.build(config.loss, config.feat_dim, n_classes, **config.loss_params)
    model_state, head_state = split_weights(store.load_weights(record.run_id))
    for module, state in ((model, model_state), (head, head_state)):
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise RunStoreError(f"run {record.run_id}: weights do not match its config ({err})") from None
    logger.debug("rebuilt run %s (%s, %s) from %s", record.run_id, config.model, config.loss, record.run_dir)
    return model.to(device).eval(), head.to(device).eval()
