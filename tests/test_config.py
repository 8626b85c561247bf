"""Run config validation: every bad value names its field and the allowed range."""

from __future__ import annotations

import json
import math

import pytest

from lab.config import ConfigError, RunConfig, one_config_per_loss


def test_defaults_validate_and_round_trip_through_json():
    config = RunConfig(loss_params={})
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("feat_dim", 0, "feat_dim: must be an integer from 2 to 512"),
        ("feat_dim", 1, "feat_dim: must be an integer from 2"),
        ("feat_dim", 2.5, "feat_dim: must be an integer"),
        ("feat_dim", True, "feat_dim: must be an integer"),
        ("epochs", -1, "epochs: must be an integer from 1 to"),
        ("epochs", 10**9, "epochs: must be an integer from 1 to"),
        ("batch_size", 1, "batch_size: must be an integer from 2"),
        ("lr", 0.0, "lr: must be a number above 0"),
        ("lr", math.nan, "lr: must be a number"),
        ("lr", math.inf, "lr: must be a number"),
        ("lr", "0.1", "lr: must be a number"),
        ("weight_decay", -1e-4, "weight_decay: must be a number from 0"),
        ("seed", -3, "seed: must be an integer from 0"),
        ("dataset", "imagenet", "dataset: must be one of digits"),
        ("model", "vgg", "model: must be one of"),
        ("loss", "triplet", "loss: must be one of softmax"),
        ("optimizer", "lbfgs", "optimizer: must be one of sgd, adam"),
        ("device", "tpu", "device: must be one of auto"),
        ("train_limit", -5, "train_limit: must be an integer from 0"),
        ("snapshot_points", 0, "snapshot_points: must be an integer from 10"),
        ("data_root", "", "data_root: must be a folder path or empty"),
        ("loss_params", [1, 2], "loss_params: must be a mapping"),
        ("channels_last", "yes", "channels_last: must be true or false"),
        ("channels_last", 1, "channels_last: must be true or false"),
    ],
)
def test_bad_value_is_rejected_with_the_field_and_range(field, value, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        RunConfig(**{field: value}).validate()


def test_unknown_loss_hyperparameter_is_a_config_error():
    with pytest.raises(ConfigError, match="softmax: unknown hyperparameter margin"):
        RunConfig(loss_params={"margin": 1}).validate()


def test_extra_and_mistyped_fields_in_a_config_file_are_rejected():
    with pytest.raises(ConfigError, match="unknown field colour"):
        RunConfig.from_dict({**RunConfig().to_dict(), "colour": "red"})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        RunConfig.from_dict(["digits"])


def test_missing_fields_take_their_defaults():
    assert RunConfig.from_dict({"loss": "softmax"}) == RunConfig()


def test_one_config_per_loss_stores_every_hyperparameter_typed():
    template = RunConfig(epochs=3, experiment="exp")
    softmax, amc = one_config_per_loss(template, ["softmax", "amc"], {"amc": {"margin": "0.4"}})
    assert (softmax.loss, softmax.loss_params, softmax.epochs) == ("softmax", {}, 3)
    assert amc.loss == "amc" and amc.experiment == "exp"
    assert amc.loss_params == {"margin": 0.4, "weight": 0.1, "pairing": "half"}


@pytest.mark.parametrize(
    ("loss_names", "hparams", "expected"),
    [
        ([], {}, "losses: choose at least one loss"),
        (["amc", "softmax", "amc"], {}, "losses: amc named more than once"),
        (["amc"], {"amc": {"margin": "wide"}}, "amc.margin: must be a number"),
        (["nope"], {}, "loss: must be one of"),
    ],
)
def test_one_config_per_loss_rejects_bad_choices(loss_names, hparams, expected):
    with pytest.raises(ConfigError, match=expected):
        one_config_per_loss(RunConfig(), loss_names, hparams)
