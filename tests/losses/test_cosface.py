"""CosFace / AM-Softmax: scaled cosine logits minus a margin on the target, its warm-up, and the
2-D feasibility warning (losses-spec.md section 5.3; anchors.md section 6)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import losses
from losses.cosface import CosFaceHead


def cosface_head(feat_dim: int = 2, n_classes: int = 4, seed: int = 0, **hparams: object) -> CosFaceHead:
    torch.manual_seed(seed)
    head = losses.build("cosface", feat_dim, n_classes, **hparams)
    assert isinstance(head, CosFaceHead)
    return head


def features_at_angles(degrees: list[float], norm: float = 10.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    radians = torch.tensor(degrees, dtype=torch.float64).deg2rad()
    return (norm * torch.stack([radians.cos(), radians.sin()], dim=1)).to(dtype)


def reference_loss(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, m: float, s: float) -> float:
    total = 0.0
    for f, y in zip(features.tolist(), labels.tolist(), strict=True):
        logits = []
        for j, w in enumerate(weight.tolist()):
            cosine = sum(a * b for a, b in zip(f, w, strict=True)) / (math.hypot(*f) * math.hypot(*w))
            logits.append(s * (cosine - (m if j == y else 0.0)))
        top = max(logits)
        total += top + math.log(sum(math.exp(z - top) for z in logits)) - logits[y]
    return total / len(labels)


def test_zero_margin_is_normalised_softmax_scaled_by_s_in_value_and_gradients() -> None:
    head = cosface_head(feat_dim=3, n_classes=5, margin=0.0, scale=12.0)
    features = torch.randn(11, 3, generator=torch.Generator().manual_seed(1)).requires_grad_()
    labels = torch.arange(11) % 5
    loss, _ = head(features, labels)
    loss.backward()
    got = (features.grad.clone(), head.classifier.weight.grad.clone())
    features.grad = None
    weight = head.classifier.weight.detach().clone().requires_grad_()
    expected = F.cross_entropy(12.0 * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).T, labels)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert torch.allclose(got[0], features.grad, atol=1e-6)
    assert torch.allclose(got[1], weight.grad, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("m", "s"), [(0.1, 16.0), (0.35, 64.0), (0.7, 3.0)])
def test_loss_matches_the_formula_on_features_at_known_angles(m: float, s: float, dtype: torch.dtype) -> None:
    head = cosface_head(n_classes=6, margin=m, scale=s, warmup=0.0).to(dtype)
    features = features_at_angles(list(range(0, 360, 7)), dtype=dtype)
    labels = torch.arange(len(features)) % 6
    loss, terms = head(features, labels)
    expected = reference_loss(features.double(), labels, head.classifier.weight.detach().double(), m, s)
    assert loss.item() == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-10)
    assert terms["margin"].item() == pytest.approx(m)


def test_gradients_match_finite_differences() -> None:
    head = cosface_head(feat_dim=3, margin=0.2, scale=5.0, warmup=0.0).double()
    features = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    weight = head.classifier.weight.detach().double().clone()
    labels = torch.tensor([0, 1, 2, 3, 0, 1])

    def loss_of(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(head, {"classifier.weight": w}, (f, labels))[0]

    assert torch.autograd.gradcheck(loss_of, (features.requires_grad_(), weight.requires_grad_()))


def test_inference_logits_are_scaled_cosines_without_margin() -> None:
    features = torch.randn(9, 2, generator=torch.Generator().manual_seed(3))
    head = cosface_head(margin=0.5, scale=20.0)
    head(features, torch.arange(9) % 4)
    cosine = F.normalize(features, dim=1) @ F.normalize(head.classifier.weight.detach(), dim=1).T
    assert torch.allclose(head.logits(features), 20.0 * cosine)
    assert torch.allclose(head.class_directions().norm(dim=1), torch.ones(4))


def test_warmup_ramps_the_margin_linearly_and_is_restored(tmp_path: Path) -> None:
    head = cosface_head(margin=0.2, warmup=0.5)
    head.plan(40)
    features, labels = torch.randn(5, 2), torch.arange(5) % 4
    margins = [head(features, labels)[1]["margin"].item() for _ in range(25)]
    assert margins[:3] == pytest.approx([0.2 * t / 20 for t in (1, 2, 3)])
    assert margins[19:] == pytest.approx([0.2] * 6)
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    restored = cosface_head(margin=0.2, warmup=0.5, seed=1)
    restored.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    assert int(restored.step) == 25 and int(restored.planned_steps) == 40
    head.eval()
    assert head(features, labels)[1]["margin"].item() == pytest.approx(0.2)
    assert int(head.step) == 25


def test_feasibility_warnings_flag_the_paper_margin_in_2d_but_not_the_defaults() -> None:
    paper = losses.warnings_for("cosface", 2, 10, {"margin": 0.35, "scale": 64.0})
    assert len(paper) == 1 and "cannot be met" in paper[0] and "0.191" in paper[0]
    assert losses.warnings_for("cosface", 3, 10, {"margin": 0.35, "scale": 64.0}) == []
    assert "cannot be met" in losses.warnings_for("cosface", 3, 10, {"margin": 0.6})[0], "1 - cos 66.15° = 0.596"
    for dim in (2, 3, 16):
        assert losses.warnings_for("cosface", dim, 10) == []
