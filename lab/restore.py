"""Rebuild a finished run's model and loss head from its directory (weights via safetensors only)."""

from __future__ import annotations

import torch

import losses
import models
from lab.data import Dataset, load_dataset
from lab.runstore import RunRecord, RunStore, RunStoreError, require_config


def load_trained(
    store: RunStore, record: RunRecord, dataset: Dataset | None = None, device: str | torch.device = "cpu"
) -> tuple[models.FeatureNet, losses.LossHead]:
    """The run's model and head with its saved weights and state, in eval mode on ``device``."""
    config = require_config(record)
    dataset = dataset or load_dataset(config.dataset, config.data_root)
    model = models.build(config.model, dataset.in_channels, dataset.image_size, config.feat_dim)
    head = losses.build(config.loss, config.feat_dim, dataset.n_classes, **config.loss_params)
    tensors = store.load_weights(record.run_id)
    for prefix, module in (("model.", model), ("head.", head)):
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise RunStoreError(f"run {record.run_id}: weights do not match its config ({err})") from None
    return model.to(device).eval(), head.to(device).eval()
