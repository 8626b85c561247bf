"""Run settings: validation names the field and its range; the declarations reach the CLI and the
Train form; one function builds and names an experiment."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from streamlit.testing.v1 import AppTest

import losses
from lab.cli import main as cli
from lab.settings import form
from lab.settings.config import RunConfig, setting, settings
from lab.settings.errors import ConfigError
from lab.settings.experiment import make_experiment
from ui import form_widgets


@dataclasses.dataclass(frozen=True)
class WithLabelNoise(RunConfig):
    """A run option added the way a new one is: one declared field, nothing else."""

    label_noise: float = setting(0.0, "fraction of training labels replaced at random", low=0.0, high=0.5)


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


def test_make_experiment_stores_every_hyperparameter_typed():
    template = RunConfig(epochs=3, experiment="exp")
    softmax, amc = make_experiment(template, ["softmax", "amc"], {"amc": {"margin": "0.4"}})
    assert (softmax.loss, softmax.loss_params, softmax.epochs) == ("softmax", {}, 3)
    assert amc.loss == "amc" and amc.experiment == "exp"
    defaults = dataclasses.asdict(losses.make_params("amc", {}))
    assert amc.loss_params == {**defaults, "margin": 0.4} and {"weight", "pairing"} <= amc.loss_params.keys()


@pytest.mark.parametrize(
    ("loss_names", "hparams", "expected"),
    [
        ([], {}, "losses: choose at least one loss"),
        (["amc", "softmax", "amc"], {}, "losses: amc named more than once"),
        (["amc"], {"amc": {"margin": "wide"}}, "amc.margin: 'wide' is not a number"),
        (["nope"], {}, "loss: must be one of"),
    ],
)
def test_make_experiment_rejects_bad_choices(loss_names, hparams, expected):
    with pytest.raises(ConfigError, match=expected):
        make_experiment(RunConfig(), loss_names, hparams)


def test_an_unnamed_experiment_is_named_by_time_dataset_and_dimension_never_by_its_owner():
    configs = make_experiment(RunConfig(dataset="digits", feat_dim=3), ["softmax", "opl"])
    names = {config.experiment for config in configs}
    assert len(names) == 1
    assert re.fullmatch(r"\d{8}-\d{6}-digits-3d-[0-9a-f]{4}", names.pop())


def test_every_field_is_declared_with_help_and_a_group():
    declared = settings()
    assert [s.name for s in declared] == [f.name for f in dataclasses.fields(RunConfig)]
    assert all(s.help and s.label for s in declared)
    assert RunConfig() == RunConfig(**{s.name: s.default for s in declared})


def test_a_new_declared_setting_reaches_validation_the_cli_and_the_form(capsys):
    # validation
    WithLabelNoise(label_noise=0.2).validate()
    with pytest.raises(ConfigError, match=r"label_noise: must be a number from 0 to 0\.5, got 0\.9"):
        WithLabelNoise(label_noise=0.9).validate()
    # the CLI: a flag with its range and default in --help, and the value reaches every config
    parser = cli.make_parser(WithLabelNoise)
    args = parser.parse_args(["train", "--losses", "softmax,opl", "--label-noise", "0.25"])
    assert [c.label_noise for c in cli.build_configs(args, WithLabelNoise)] == [0.25, 0.25]
    bad = parser.parse_args(["train", "--label-noise", "0.9"])
    with pytest.raises(ConfigError, match="label_noise: must be a number from 0 to 0.5"):
        cli.build_configs(bad, WithLabelNoise)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    train_help = " ".join(capsys.readouterr().out.split())
    assert "--label-noise X fraction of training labels replaced at random (a number from 0 to 0.5; default: 0.0)" in (
        train_help
    )
    # the form: an input in the advanced group, and its bounds in the limits text
    noise = next(s for s in settings(WithLabelNoise) if s.name == "label_noise")
    widget = form_widgets.setting_widget(noise)
    assert (widget.call, widget.key, widget.label, widget.value) == (
        "text_input",
        "label_noise",
        "Label noise",
        0.0,
    )
    assert any("label noise: 0 to 0.5" in line for line in form.limits_lines(WithLabelNoise))


def _form_with_label_noise() -> None:
    import dataclasses

    import streamlit as st

    from lab.settings.config import RunConfig, setting
    from ui import train_form

    @dataclasses.dataclass(frozen=True)
    class WithLabelNoise(RunConfig):
        label_noise: float = setting(0.0, "fraction of training labels replaced at random", low=0.0, high=0.5)

    chosen = train_form.settings_form(config_cls=WithLabelNoise)
    st.text(f"label_noise={chosen.config.label_noise} epochs={chosen.config.epochs}")


def test_the_form_draws_a_new_declared_setting_and_returns_its_value():
    app = AppTest.from_function(_form_with_label_noise, default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    app.text_input(key="label_noise").set_value("0.3").run()
    app.text_input(key="epochs").set_value("4").run()
    assert app.text[-1].value == "label_noise=0.3 epochs=4"


def test_the_form_shows_every_declared_setting_and_limits_only_what_it_shows():
    shown = [s for s in settings() if s.form]
    assert {s.name for s in shown} >= {"dataset", "model", "feat_dim", "epochs", "lr", "weight_decay"}
    assert {"loss", "loss_params", "experiment"}.isdisjoint(s.name for s in shown)
    limits = " ".join(form.limits_lines())
    assert "epochs: 1 to 200" in limits and "weight decay: 0 to 0.1" in limits
    assert "learning rate (peak): above 0, at most 10" in limits
    epochs = form_widgets.setting_widget(next(s for s in settings() if s.name == "epochs"))
    # the range is stated in the help, not enforced by the browser (which would silently put the old value back)
    assert epochs.value == 12 and "min_value" not in epochs.kwargs
    assert "(allowed: an integer from 1 to 200)" in epochs.kwargs["help"]
    device = form_widgets.setting_widget(next(s for s in settings() if s.name == "device"))
    assert device.kwargs["options"][0] == "auto" and device.kwargs["options"][-1] == "cpu"


def test_the_dataset_menu_says_which_datasets_are_usable_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path))
    dataset = next(s for s in settings() if s.name == "dataset")
    assert dataset.label_of("digits") == "Digits 8x8 (bundled)"
    assert dataset.label_of("mnist") == "MNIST (needs a download)"
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / name).write_bytes(b"")
    assert dataset.label_of("mnist") == "MNIST (local copy)"
