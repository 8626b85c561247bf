"""L-Softmax: psi and its Chebyshev form, the lambda annealing, and the reference formula the loss is
checked against on features at known angles in test_multiplicative_margins.py (losses-spec.md
section 3.5)."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from losses._angular import annealed_lambda, cos_multiple_angle, multiplicative_target_logit, psi
from losses.lsoftmax import LSoftmaxHead
from tests.losses import formulas

lsoftmax_head = partial(formulas.seeded_head, "lsoftmax", head_type=LSoftmaxHead)


def reference_loss(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, m: int, lam: float) -> float:
    """The paper's formula sample by sample, with math.acos and math.cos(m theta) (no Chebyshev):
    logits W_j.f, the target's mixed as (lambda W_y.f + |W_y||f| psi(theta_y)) / (1 + lambda)."""

    def logit(f: list[float], w: list[float], target: bool) -> float:
        if not target:
            return formulas.dot(f, w)
        norms = math.hypot(*f) * math.hypot(*w)
        return (lam * formulas.dot(f, w) + norms * formulas.psi_by_hand(formulas.angle(f, w), m)) / (1 + lam)

    return formulas.reference_cross_entropy(features, labels, weight, logit)


def test_chebyshev_polynomial_is_the_cosine_of_the_multiple_angle() -> None:
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    for m in range(1, 7):
        error = (cos_multiple_angle(theta.cos(), m) - torch.cos(m * theta)).abs().max()
        assert error < 1e-9, f"m={m}: {error}"


def test_psi_takes_its_values_at_the_interval_ends() -> None:
    for m in range(1, 7):
        ends = torch.tensor([k * math.pi / m for k in range(m + 1)], dtype=torch.float64)
        expected = torch.tensor([1.0 - 2 * k for k in range(m + 1)], dtype=torch.float64)
        assert torch.allclose(psi(ends.cos(), m), expected, atol=1e-9), f"m={m}"
    assert psi(torch.tensor([1.0], dtype=torch.float64), 4).item() == 1.0
    assert psi(torch.tensor([-1.0], dtype=torch.float64), 4).item() == pytest.approx(-7.0)


def test_psi_is_continuous_non_increasing_and_never_above_the_cosine() -> None:
    theta = torch.linspace(0, math.pi, 20001, dtype=torch.float64)
    for m in range(1, 7):
        values = psi(theta.cos(), m)
        steps = values.diff()
        assert steps.max() <= 1e-12, f"m={m} increases somewhere"
        assert steps.abs().max() < 2 * m * math.pi / 20000 + 1e-9, f"m={m} jumps"
        assert (values <= theta.cos() + 1e-12).all(), f"m={m} exceeds cos"
    assert torch.allclose(psi(theta.cos(), 1), theta.cos())


def test_caffe_sign_product_formulas_equal_psi() -> None:
    c = torch.cos(torch.linspace(0, math.pi, 5001, dtype=torch.float64))
    s1 = torch.sign(c.abs() - 0.5)
    s3 = torch.sign(c) * torch.sign(2 * c**2 - 1)
    caffe = {
        2: 2 * torch.sign(c) * c**2 - 1,
        3: s1 * (4 * c**3 - 3 * c) + torch.sign(c) * (s1 + 1) - 2,
        4: s3 * (8 * c**4 - 8 * c**2 + 1) + 2 * torch.sign(c) + s3 - 3,
    }
    for m, values in caffe.items():
        assert (values - psi(c, m)).abs().max() < 1e-12, f"m={m}"


def test_margin_one_is_cross_entropy_without_bias_in_value_and_gradients() -> None:
    for hparams in ({"margin": 1}, {"margin": 1, "base": 0.0}, {"margin": 1, "base": 0.0, "lambda_min": 3.0}):
        head = lsoftmax_head(feat_dim=3, n_classes=5, **hparams)
        head.train()
        loss, terms = formulas.assert_cross_entropy_in_value_and_gradients(head, lambda f, w: f @ w.T)
        assert terms["ce"] is loss


def test_pure_l_softmax_is_never_below_softmax_and_equal_only_on_the_weight_direction() -> None:
    features = torch.randn(40, 2, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(40) % 4
    losses_by_margin = []
    for m in (1, 2, 3, 4):
        head = lsoftmax_head(margin=m, base=0.0)
        losses_by_margin.append(head(features, labels)[0].item())
    assert losses_by_margin[0] < losses_by_margin[1] < losses_by_margin[2] < losses_by_margin[3]
    head = lsoftmax_head(margin=4, base=0.0)
    on_direction = head.classifier.weight.detach()[labels] * 3.0
    softmax = F.cross_entropy(on_direction @ head.classifier.weight.detach().T, labels)
    assert head(on_direction, labels)[0].item() == pytest.approx(softmax.item(), rel=1e-5)


def test_large_lambda_tends_to_softmax_and_zero_lambda_is_pure_l_softmax() -> None:
    dot = torch.tensor([3.0, -2.0, 0.5], dtype=torch.float64)
    norms = torch.tensor([4.0, 2.5, 6.0], dtype=torch.float64)
    gaps = [(multiplicative_target_logit(dot, norms, 4, lam) - dot).abs().max().item() for lam in (1.0, 1e2, 1e4, 1e8)]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] and gaps[3] < 1e-6
    pure = norms * psi(dot / norms, 4)
    assert torch.allclose(multiplicative_target_logit(dot, norms, 4, 0.0), pure)
    features = formulas.features_at_angles(list(range(5, 360, 11)))
    labels = torch.arange(len(features)) % 4
    head = lsoftmax_head(margin=4, base=1e6, gamma=0.0)
    softmax = F.cross_entropy(head.logits(features), labels).item()
    assert head(features, labels)[0].item() == pytest.approx(softmax, rel=1e-4)


def test_gradients_match_finite_differences_away_from_interval_ends() -> None:
    head = lsoftmax_head(margin=3, base=0.0, lambda_min=0.2).double().eval()
    weight = formulas.features_at_angles([0.0, 90.0, 180.0, 270.0], norm=1.0, dtype=torch.float64) * torch.tensor(
        [[1.5], [0.7], [1.1], [0.9]], dtype=torch.float64
    )
    # theta_y = 20, 35, 80, 130, 170 degrees: all at least 10 degrees from the ends k*60 of psi's pieces
    features = formulas.features_at_angles([20.0, 125.0, 100.0, 140.0, 100.0], norm=2.0, dtype=torch.float64)
    assert formulas.gradcheck_features_and_weight(head, features, weight, torch.tensor([0, 1, 0, 3, 3]))


def test_inference_logits_are_the_plain_w_f_whatever_the_margin() -> None:
    features = torch.randn(9, 2, generator=torch.Generator().manual_seed(3))
    heads = [lsoftmax_head(margin=m) for m in (1, 4)]
    for head in heads:
        head.train()
        head(features, torch.arange(9) % 4)
    expected = features @ heads[0].classifier.weight.detach().T
    assert torch.equal(heads[0].logits(features), expected)
    assert torch.equal(heads[1].logits(features), expected)
    assert torch.equal(heads[1].class_directions(), heads[1].classifier.weight.detach())


def test_lambda_follows_the_schedule_with_t_counted_before_use() -> None:
    head = lsoftmax_head(base=1000.0, gamma=0.75, power=35.0, lambda_min=0.0)
    head.plan(30_000)
    features, labels = torch.randn(4, 2), torch.arange(4)
    head.train()
    shares = [head(features, labels)[1]["softmax_share"].item() for _ in range(3)]
    for t, share in enumerate(shares, start=1):
        lam = 1000.0 * (1 + 2.5e-5 * t) ** -35  # the official per-iteration MNIST schedule
        assert share == pytest.approx(lam / (1 + lam), rel=1e-6)
    head.eval()
    head(features, labels)
    assert int(head.step) == 3, "an eval forward must not advance the schedule"
    # lambda passes 1 at t/T = (base^(1/power) - 1) / gamma, about 0.29 of the run here
    crossing = (1000.0 ** (1 / 35) - 1) / 0.75
    mnist = {"base": 1000.0, "gamma": 0.75, "power": 35.0, "lambda_min": 0.0}
    assert annealed_lambda(crossing - 0.01, **mnist) > 1 > annealed_lambda(crossing + 0.01, **mnist)
    assert annealed_lambda(0.5, 0.0, 0.75, 35.0, 0.0) == 0.0, "base 0 turns the mixing off"
    assert annealed_lambda(0.99, 1000.0, 0.75, 35.0, 5.0) == 5.0


def test_default_schedule_starts_as_softmax_and_reaches_its_floor_at_40_percent() -> None:
    p = LSoftmaxHead.Params()
    assert annealed_lambda(0.01, p.base, p.gamma, p.power, p.lambda_min) > 100
    assert annealed_lambda(0.38, p.base, p.gamma, p.power, p.lambda_min) > 1.0
    assert annealed_lambda(0.41, p.base, p.gamma, p.power, p.lambda_min) == p.lambda_min == 1.0


def test_the_step_counter_is_saved_and_restored(tmp_path: Path) -> None:
    head = lsoftmax_head()
    head.plan(50)
    head.train()
    features, labels = torch.randn(6, 2), torch.arange(6) % 4
    for _ in range(7):
        head(features, labels)
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    restored = lsoftmax_head(seed=1)
    restored.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    assert int(restored.step) == 7 and int(restored.planned_steps) == 50
    restored.train()
    assert torch.equal(restored(features, labels)[0], head(features, labels)[0])
    assert int(restored.step) == int(head.step) == 8


def test_feasibility_warnings_flag_the_paper_margin_in_2d_but_not_the_defaults() -> None:
    paper = formulas.margin_warnings("lsoftmax", 2, margin=4, lambda_min=0.0)  # official MNIST settings
    assert len(paper) == 1 and "within 7.2°" in paper[0] and "Margin 2 leaves" in paper[0]
    assert "within 9.2°" in formulas.margin_warnings("lsoftmax", 2, margin=4)[0], "a floor of 1 softens it"
    for dim in (2, 3, 16):
        assert formulas.margin_warnings("lsoftmax", dim) == []
    assert formulas.margin_warnings("lsoftmax", 2, 100, margin=1) == [], "m = 1 is plain softmax"
    assert formulas.margin_warnings("lsoftmax", 2, 100) != [], "3.6° spacing leaves no room for m = 2"
