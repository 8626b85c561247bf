"""A user's own loss, in a folder outside the checkout, as a user would bring it: README's example checked
and trained in its three commands, a broken loss's faults named by ``check-loss``, runs that say which
module to load, the app (started with ``LOSSLENS_LOSS_MODULES``) showing it on every page, and Ray workers
training it."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from losses import plugins, registry
from tests.apptest import app_reads, open_page
from tests.conftest import ROOT, run_cli

SHORT = ("--epochs", "1", "--train-limit", "200")

BROKEN = r'''
import dataclasses

import torch.nn.functional as F

import losses


class BrokenCosFace(losses.LossHead):
    r"""Cosine logits with a margin, its step count kept in a plain attribute.

    .. math:: L = \mathrm{CE}(s(\cos\theta - m\,e_y), y)
    """

    name = "broken"
    bias = False

    @dataclasses.dataclass(frozen=True)
    class Params:
        margin: float = losses.hparam(0.2, "m: subtracted from the target cosine", low=0.0, high=1.0)
        scale: float = losses.hparam(8.0, "s: the cosines are multiplied by s", low=0.0, low_inclusive=False)

    def __init__(self, feat_dim, n_classes, params):
        super().__init__(feat_dim, n_classes, params)
        self.steps = 0

    def cosines(self, features):
        return F.normalize(self.cast(features), dim=1) @ F.normalize(self.classifier.weight, dim=1).T

    def forward(self, features, labels):
        if self.training:
            self.steps += 1
        margins = self.params.margin * F.one_hot(labels, self.n_classes)
        ce = F.cross_entropy(self.params.scale * (self.cosines(features) - margins), labels)
        return ce, {"ce": ce}

    def logits(self, features):
        cosines = self.cosines(features)
        predicted = F.one_hot(cosines.argmax(dim=1), self.n_classes).to(cosines.dtype)
        return self.params.scale * (cosines - self.params.margin * predicted)
'''


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Your own loss\n", 1)[1].split("\n## ", 1)[0]


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", readme_section(), flags=re.DOTALL)


@pytest.fixture
def my_loss(tmp_path: Path) -> Path:
    """README's example loss, saved as a user would save it: ``my_loss.py`` in a folder of their own."""
    (code,) = readme_blocks("python")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my_loss.py").write_text(code)
    return folder / "my_loss.py"


@pytest.fixture
def own_registry(monkeypatch):
    """Losses this test loads into this process are forgotten after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    monkeypatch.setattr(plugins, "_loaded", {})


def readme_commands(my_loss: Path) -> list[list[str]]:
    """README's ``python -m lab`` lines for the example, with the saved file's path."""
    (block,) = [block for block in readme_blocks("bash") if "check-loss" in block]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line.split("#", 1)[0])
        if words[:3] == ["python", "-m", "lab"]:
            commands.append([str(my_loss) if word == "my_loss.py" else word for word in words[3:]])
    return commands


def test_the_readme_example_passes_check_loss_and_trains_beside_softmax(my_loss, tmp_path):
    check, train = readme_commands(my_loss)
    checked = run_cli(*check)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "FAIL" not in checked.stdout and checked.stdout.count("  pass  ") == 14
    assert f"tsoftmax (from {my_loss})" in checked.stdout
    trained = run_cli(*train, *SHORT, "--runs-dir", str(tmp_path / "runs"))
    assert trained.returncode == 0, trained.stderr
    lines = [json.loads(line) for line in trained.stdout.splitlines()]
    assert [line["loss"] for line in lines] == ["softmax", "tsoftmax", "tsoftmax"]
    assert [line["variant"] for line in lines][1:] == [
        "Softmax with a temperature",
        "Softmax with a temperature T=5",
    ]
    assert all(line["status"] == "finished" for line in lines)
    config = json.loads((tmp_path / "runs" / lines[2]["run_id"] / "config.json").read_text())
    assert config["loss_params"] == {"temperature": 5.0} and config["loss_module"] == str(my_loss)


def test_a_broken_loss_fails_check_loss_with_messages_naming_each_fault(tmp_path):
    path = tmp_path / "broken_loss.py"
    path.write_text(BROKEN)
    result = run_cli("check-loss", str(path))
    assert result.returncode == 1
    failed = re.findall(r"^  FAIL  (\S+)", result.stdout, flags=re.MULTILINE)
    assert failed == ["margin", "buffers"], result.stdout
    assert "wrong: inference logits are margin-modified: they change when margin goes from 0.2" in result.stdout
    assert "wrong: state in a plain attribute: each training forward changes steps" in result.stdout
    assert "change: keep state in buffers: self.register_buffer(" in result.stdout
    assert "broken: 12 of 14 checks passed; it does not pass the contract" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file or folder; give the path of the .py file"),
        ("x = 1\n", "defines no loss; a loss is a subclass of losses.LossHead"),
        ("raise RuntimeError('oops')\n", r"importing it raised RuntimeError: oops \(bad\.py, line 1\)"),
        (
            "import losses, dataclasses\nclass A(losses.LossHead):\n    name = 'a'\n"
            "    @dataclasses.dataclass(frozen=True)\n    class Params:\n        pass\n",
            "has no summary: open its docstring",
        ),
        (
            "import losses\nclass A(losses.LossHead):\n"
            "    '''A loss.\n\n    .. math:: L = 0\n    '''\n    name = 'a b'\n",
            "name must be 1 to 40 letters",
        ),
    ],
    ids=["missing", "no loss", "raises", "no docstring", "bad name"],
)
def test_a_module_that_cannot_be_a_loss_is_one_error_line_saying_what_to_change(tmp_path, content, message):
    path = tmp_path / "bad.py"
    if content is not None:
        path.write_text(content)
    result = run_cli("train", "--loss-module", str(path), "--losses", "softmax", "--runs-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --loss-module {path}: ") and re.search(message, line), line
    assert not (tmp_path / "r").exists()


def test_a_run_of_a_plug_in_says_which_module_to_load_and_lists_with_it(my_loss, tmp_path):
    runs = str(tmp_path / "runs")
    trained = run_cli("train", "--loss-module", str(my_loss), "--losses", "tsoftmax", *SHORT, "--runs-dir", runs)
    assert trained.returncode == 0, trained.stderr
    run_id = json.loads(trained.stdout)["run_id"]
    without = {key: value for key, value in os.environ.items() if key != plugins.ENV}
    listed = json.loads(run_cli("list", "--runs-dir", runs, env=without).stdout)
    assert (
        f"loss 'tsoftmax' is from {my_loss}, not loaded here: pass it to --loss-module (the app: set "
        in (listed["message"])
    )
    with_env = json.loads(run_cli("list", "--runs-dir", runs, env={**without, plugins.ENV: str(my_loss)}).stdout)
    assert with_env["loss"] == "tsoftmax" and with_env["status"] == "finished"
    exported = run_cli(
        "export", run_id, "--runs-dir", runs, "--projector", str(tmp_path / "p.zip"), "--loss-module", str(my_loss)
    )
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "p.zip").stat().st_size > 0


def test_the_app_started_with_the_module_shows_the_loss_on_every_page(my_loss, tmp_path, own_registry):
    runs = tmp_path / "runs"
    trained = run_cli(
        "train", "--loss-module", str(my_loss), "--losses", "softmax,tsoftmax", *SHORT, "--runs-dir", str(runs)
    )
    assert trained.returncode == 0, trained.stderr
    experiment = json.loads(trained.stdout.splitlines()[0])["experiment"]
    title = "Softmax with a temperature"
    with app_reads(runs, **{plugins.ENV: str(my_loss)}):
        learn = open_page("pages/learn.py")
        (expander,) = [e for e in learn.expander if title in e.label]
        formula = r"L = \mathrm{CE}\big((W f + b) / T,\ y\big)"
        assert any(formula in latex.value for latex in expander.get("latex"))
        assert any(f"loaded from `{my_loss}`" in caption.value for caption in expander.caption)
        train = open_page("pages/train.py")
        (pills,) = [group for group in train.get("button_group") if group.key == "losses"]
        assert title in [option.content for option in pills.proto.options]
        assert any(f"set by {plugins.ENV} when the server is started" in c.value for c in train.caption)
        for page in ("pages/features.py", "pages/angles.py", "pages/compare.py", "pages/gradcam.py"):
            app = open_page(page, experiment=experiment)
            text = " ".join(str(element.value) for kind in ("markdown", "caption") for element in app.get(kind))
            assert title in text or title in str(app.get("plotly_chart")), page
            assert not app.error, (page, [e.value for e in app.error])


def test_ray_workers_load_the_modules_the_driver_loaded(my_loss, tmp_path):
    pytest.importorskip("ray")
    without_address = {key: value for key, value in os.environ.items() if key != "LOSSLENS_RAY_ADDRESS"}
    result = run_cli(
        "train",
        "--backend",
        "ray",
        "--loss-module",
        str(my_loss),
        "--losses",
        "tsoftmax:temperature=3",
        *SHORT,
        "--runs-dir",
        str(tmp_path),
        env=without_address,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert line["loss"] == "tsoftmax" and line["status"] == "finished", line
