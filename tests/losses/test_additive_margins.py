"""What CosFace and ArcFace share (losses-spec.md sections 5.3 and 5.4): each matches its paper's
formula on features at known angles and finite differences; with no margin both are the normalized
softmax scaled by s; their inference logits are the scaled cosines without margin; their margin
warms up linearly and survives a save and restore; and they ask the trainer to clip gradients. Each
test runs for both heads, against the reference formula in test_cosface.py or test_arcface.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import losses
from losses.arcface import ArcFaceHead
from losses.cosface import CosFaceHead
from tests.losses import formulas, test_arcface, test_cosface
from tests.losses.formulas import assert_cross_entropy_in_value_and_gradients, seeded_head

HEADS = [pytest.param("cosface", CosFaceHead, id="cosface"), pytest.param("arcface", ArcFaceHead, id="arcface")]
REFERENCES = {"cosface": test_cosface.reference_loss, "arcface": test_arcface.reference_loss}
# (m, s) pairs; ArcFace's m is in radians and goes up to where its fallback takes over
SETTINGS = {
    "cosface": [(0.1, 16.0), (0.35, 64.0), (0.7, 3.0)],
    "arcface": [(0.2, 16.0), (0.5, 64.0), (1.2, 4.0)],
}
CASES = [
    pytest.param(name, head_type, m, s, id=f"{name}-m{m}-s{s}")
    for name, head_type in (("cosface", CosFaceHead), ("arcface", ArcFaceHead))
    for m, s in SETTINGS[name]
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "head_type", "m", "s"), CASES)
def test_loss_matches_the_formula_on_features_at_known_angles(
    name: str, head_type: type, m: float, s: float, dtype: torch.dtype
) -> None:
    head = seeded_head(name, n_classes=6, margin=m, scale=s, warmup=0.0, head_type=head_type).to(dtype)
    features = formulas.features_at_angles(range(0, 360, 7), dtype=dtype)
    loss, terms, expected = formulas.loss_and_reference(head, features, REFERENCES[name], m, s)
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-9)
    assert terms["margin"].item() == pytest.approx(m)


@pytest.mark.parametrize(("name", "head_type"), HEADS)
def test_gradients_match_finite_differences(name: str, head_type: type) -> None:
    head = seeded_head(name, margin=0.4, scale=6.0, warmup=0.0, head_type=head_type).double()
    weight = formulas.features_at_angles([10.0, 100.0, 200.0, 280.0], norm=1.3, dtype=torch.float64)
    # theta_y = 15, 30, 55, 105 and 170 degrees: away from ArcFace's fallback switch at 180 - 22.9 degrees
    features = formulas.features_at_angles([25.0, 130.0, 255.0, 175.0, 30.0], norm=1.7, dtype=torch.float64)
    assert formulas.gradcheck_features_and_weight(head, features, weight, torch.tensor([0, 1, 2, 3, 2]))


@pytest.mark.parametrize(("name", "head_type"), HEADS)
def test_zero_margin_is_normalized_softmax_scaled_by_s_in_value_and_gradients(name: str, head_type: type) -> None:
    head = seeded_head(name, feat_dim=3, n_classes=5, margin=0.0, scale=12.0, head_type=head_type)
    grad_atol = {"cosface": 1e-6, "arcface": 1e-5}[name]
    assert_cross_entropy_in_value_and_gradients(
        head, lambda f, w: 12.0 * F.normalize(f, dim=1) @ F.normalize(w, dim=1).T, grad_atol=grad_atol
    )


@pytest.mark.parametrize(("name", "head_type"), HEADS)
def test_inference_logits_are_scaled_cosines_without_margin(name: str, head_type: type) -> None:
    features = torch.randn(9, 2, generator=torch.Generator().manual_seed(3))
    head = seeded_head(name, margin=0.5, scale=20.0, head_type=head_type)
    head(features, torch.arange(9) % 4)
    cosine = F.normalize(features, dim=1) @ F.normalize(head.classifier.weight.detach(), dim=1).T
    assert torch.allclose(head.logits(features), 20.0 * cosine)
    assert torch.allclose(head.class_directions().norm(dim=1), torch.ones(4))


@pytest.mark.parametrize(("name", "head_type"), HEADS)
def test_warmup_ramps_the_margin_linearly_and_is_restored(name: str, head_type: type, tmp_path: Path) -> None:
    head = seeded_head(name, margin=0.2, warmup=0.5, head_type=head_type)
    head.plan(40)
    features, labels = torch.randn(5, 2), torch.arange(5) % 4
    margins = [head(features, labels)[1]["margin"].item() for _ in range(25)]
    assert margins[:3] == pytest.approx([0.2 * t / 20 for t in (1, 2, 3)])
    assert margins[19:] == pytest.approx([0.2] * 6)
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    restored = seeded_head(name, margin=0.2, warmup=0.5, seed=1, head_type=head_type)
    restored.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    assert int(restored.step) == 25 and int(restored.planned_steps) == 40
    head.eval()
    assert head(features, labels)[1]["margin"].item() == pytest.approx(0.2)
    assert int(head.step) == 25


@pytest.mark.parametrize(("name", "head_type"), HEADS)
def test_grad_clip_is_the_norm_the_trainer_is_asked_to_clip_to(name: str, head_type: type) -> None:
    assert seeded_head(name, head_type=head_type).max_grad_norm() == 1.0
    assert seeded_head(name, head_type=head_type, grad_clip=2.5).max_grad_norm() == 2.5
    assert seeded_head(name, head_type=head_type, grad_clip=0.0).max_grad_norm() is None
    assert losses.build("softmax", 2, 4).max_grad_norm() is None
