"""The pml: adapter: pytorch-metric-learning's classification losses as LossLens losses (losses/pml.py)."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys

import pytest
import torch

import losses
from losses import pml
from tests.conftest import ROOT, run_cli

pytest.importorskip("pytorch_metric_learning")

# LossLens's loss, its settings, and the same loss's pml: name and settings (ArcFace's margin in degrees)
SAME_LOSS = [
    ("cosface", {"margin": 0.35, "scale": 64.0, "warmup": 0.0}, "pml:CosFaceLoss", {"margin": 0.35, "scale": 64.0}),
    ("cosface", {"margin": 0.1, "scale": 8.0, "warmup": 0.0}, "pml:CosFaceLoss", {"margin": 0.1, "scale": 8.0}),
    (
        "arcface",
        {"margin": 0.5, "scale": 64.0, "warmup": 0.0},
        "pml:ArcFaceLoss",
        {"margin": math.degrees(0.5), "scale": 64.0},
    ),
    (
        "arcface",
        {"margin": 0.25, "scale": 4.0, "warmup": 0.0},
        "pml:ArcFaceLoss",
        {"margin": math.degrees(0.25), "scale": 4.0},
    ),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("ours", "our_settings", "theirs", "their_settings"), SAME_LOSS)
def test_the_adapters_cosface_and_arcface_equal_losslens_own(ours, our_settings, theirs, their_settings, dtype):
    """Same weights, same features: the same loss, gradients, logits and class directions."""
    torch.manual_seed(0)
    own = losses.build(ours, 3, 5, **our_settings).to(dtype).train()
    adapted = losses.build(theirs, 3, 5, **their_settings).to(dtype).train()
    with torch.no_grad():
        adapted.loss.W.copy_(own.classifier.weight.T)  # the library keeps classes as columns
    generator = torch.Generator().manual_seed(1)
    features = (torch.randn(64, 3, generator=generator) * 3).to(dtype).requires_grad_()
    labels = torch.randint(0, 5, (64,), generator=generator)
    own_total, _ = own(features, labels)
    adapted_total, _ = adapted(features, labels)
    (own_grad,) = torch.autograd.grad(own_total, features)
    (adapted_grad,) = torch.autograd.grad(adapted_total, features)
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    assert torch.allclose(adapted_total, own_total, **tolerance)
    assert torch.allclose(adapted_grad, own_grad, **tolerance)
    with torch.no_grad():
        assert torch.allclose(adapted.logits(features), own.logits(features), **tolerance)
    assert torch.allclose(adapted.class_directions(), own.class_directions(), **tolerance)


@pytest.mark.parametrize("name", pml.CLASSES)
def test_settings_are_the_constructors_keyword_arguments_with_the_librarys_defaults(name):
    library_class = getattr(pml.library(), name)
    declared = losses.info(f"pml:{name}").defaults
    assert declared, "every adapted loss has settings"
    for setting, default in declared.items():
        found = [
            cls.__init__
            for cls in inspect.getmro(library_class)
            if setting in inspect.signature(cls.__init__).parameters
        ]
        assert found, f"{setting} is not an argument of {name}"
        assert inspect.signature(found[0]).parameters[setting].default == default, setting
    assert "num_classes" not in declared and "embedding_size" not in declared


def test_inference_logits_are_the_librarys_without_the_margin():
    head = losses.build("pml:ArcFaceLoss", 3, 4, margin=40.0, scale=10.0)
    features = torch.randn(6, 3)
    unit = torch.nn.functional.normalize(features, dim=1)
    weights = torch.nn.functional.normalize(head.loss.W, dim=0)
    assert torch.allclose(head.logits(features), 10.0 * unit @ weights, atol=1e-5)  # s cos, no margin


def test_the_cli_trains_softmax_the_adapters_arcface_and_losslens_arcface(tmp_path):
    result = run_cli(
        "train",
        "--losses",
        "softmax,pml:ArcFaceLoss,arcface",
        "--epochs",
        "1",
        "--train-limit",
        "200",
        "--runs-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["loss"] for line in lines] == ["softmax", "pml:ArcFaceLoss", "arcface"]
    assert all(line["status"] == "finished" for line in lines)
    assert [line["variant"] for line in lines] == ["Softmax cross-entropy", "ArcFace (PML)", "ArcFace"]
    pml_run = next(line for line in lines if line["loss"] == "pml:ArcFaceLoss")
    assert ":" not in pml_run["run_id"]
    config = json.loads((tmp_path / pml_run["run_id"] / "config.json").read_text())
    assert config["loss_params"] == {"margin": 28.6, "scale": 64.0}  # the library's defaults


def test_variants_of_an_adapted_loss_parse_with_their_settings():
    from lab.settings.experiment import parse_variants

    (variant,) = parse_variants("pml:SubCenterArcFaceLoss:margin=20:sub_centers=2")
    assert variant.loss == "pml:SubCenterArcFaceLoss"
    assert variant.settings == {"margin": "20", "sub_centers": "2"}
    assert parse_variants(variant.spec) == [variant]


def test_without_the_library_naming_an_adapted_loss_says_how_to_add_it(monkeypatch):
    from lab.settings.config import RunConfig
    from lab.settings.errors import ConfigError

    for module in [
        m for m in sys.modules if m == "pytorch_metric_learning" or m.startswith("pytorch_metric_learning.")
    ]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "pytorch_metric_learning", None)  # import fails as if uninstalled
    monkeypatch.setattr(
        losses.registry, "_REGISTRY", {k: v for k, v in losses.registry._REGISTRY.items() if ":" not in k}
    )
    assert not pml.installed()
    with pytest.raises(losses.HparamError, match=r"need it installed: pip install pytorch-metric-learning"):
        losses.get("pml:ArcFaceLoss")
    with pytest.raises(ConfigError, match=r"pip install pytorch-metric-learning"):
        RunConfig(loss="pml:ArcFaceLoss").validate()
    assert losses.registry.load_families() == [pml.how_to_add()]
    assert "pml:ArcFaceLoss" not in losses.names()


HIDDEN = (
    "import sys; sys.modules['pytorch_metric_learning'] = None; "
    "from lab.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def test_without_the_library_the_cli_lists_and_refuses_the_adapted_losses_saying_how_to_add_them(tmp_path):
    def lab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", HIDDEN, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )

    listed = lab("train", "--help")
    assert listed.returncode == 0
    assert "pip install pytorch-metric-learning" in " ".join(listed.stdout.split())
    refused = lab("train", "--losses", "softmax,pml:ArcFaceLoss", "--runs-dir", str(tmp_path))
    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: loss: pytorch-metric-learning's losses (ArcFaceLoss, CosFaceLoss")
    assert "need it installed: pip install pytorch-metric-learning" in line
    assert not any(tmp_path.iterdir())
