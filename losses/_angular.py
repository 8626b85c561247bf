"""What the angular-margin heads share: the multiplicative margin psi(theta) of L-Softmax and
SphereFace, the additive margins of CosFace and ArcFace, step-based schedules held in buffers,
and the feasibility arithmetic of their warnings.

Every head here replaces the final linear layer and cross-entropy: it owns the class weights
(``classifier``, a ``Linear`` without bias) and computes cross-entropy on logits whose target entry
carries the margin. Inference logits never carry it.

Schedules are expressed against the run's planned number of optimizer steps T, which the trainer
tells the head through ``plan`` before training. The step counter t is a buffer (``LossHead``'s
``scheduled``), incremented before use by each forward in training mode (the first batch uses
t = 1), so it is saved and restored with the run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from losses.base import LossHead, hparam, normalize
from losses.geometry import best_spacing_degrees

NORM_EPS = 1e-9  # guards |W_y| |f| in the denominator of the cosine (the Caffe layer's choice)
SIN_SQUARED_MIN = 1e-12  # sin(theta) = sqrt(max(1 - cos^2, this)) keeps ArcFace's gradient finite at cos = +-1
TIGHT_CONE_DEGREES = 10.0  # warn when a margin leaves samples a cone narrower than this around their class


# ---------------------------------------------------------------- multiplicative margin (L-Softmax, SphereFace)


def cos_multiple_angle(cosine: torch.Tensor, m: int) -> torch.Tensor:
    """cos(m theta) as the Chebyshev polynomial T_m of c = cos theta, with no arccos in the gradient path:

    T_m(c) = sum_{n=0}^{floor(m/2)} (-1)^n binom(m, 2n) c^(m-2n) (1 - c^2)^n
    """
    sin_squared = 1.0 - cosine.square()
    return sum((-1) ** n * math.comb(m, 2 * n) * cosine ** (m - 2 * n) * sin_squared**n for n in range(m // 2 + 1))


def psi(cosine: torch.Tensor, m: int) -> torch.Tensor:
    """The L-Softmax angle function of c = cos theta, monotonically decreasing from 1 at 0 to 1 - 2m at pi:

    psi(theta) = (-1)^k cos(m theta) - 2k  for theta in [k pi/m, (k+1) pi/m],  k = 0..m-1.

    k comes from arccos without gradient and is clamped to m - 1 (theta = pi); the gradient flows
    through the polynomial only.
    """
    cosine = cosine.clamp(-1.0, 1.0)
    with torch.no_grad():
        k = torch.floor(torch.arccos(cosine) * m / math.pi).clamp(max=m - 1)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * cos_multiple_angle(cosine, m) - 2.0 * k


def annealed_lambda(progress: float, base: float, gamma: float, power: float, lambda_min: float) -> float:
    """lambda = max(lambda_min, base (1 + gamma progress)^(-power)), where progress = t / T."""
    return max(lambda_min, base * (1.0 + gamma * progress) ** (-power))


def multiplicative_target_logit(dot: torch.Tensor, norms: torch.Tensor, m: int, lam: float) -> torch.Tensor:
    """(lambda W_y.f + |W_y||f| psi(theta_y)) / (1 + lambda), from dot = W_y.f and norms = |W_y||f|."""
    return (lam * dot + norms * psi(dot / (norms + NORM_EPS), m)) / (1.0 + lam)


# ---------------------------------------------------------------- additive margins (CosFace, ArcFace)


def arc_margin_cosine(cosine: torch.Tensor, margin: float) -> torch.Tensor:
    """cos(theta + m) = cos theta cos m - sin theta sin m while theta <= pi - m; beyond, where that would
    turn back up, insightface's fallback cos theta - m sin m (a small step down, so never rising again).
    No arccos, so the gradient stays finite at cos theta = +-1."""
    cosine = cosine.clamp(-1.0, 1.0)
    sine = (1.0 - cosine.square()).clamp(min=SIN_SQUARED_MIN).sqrt()
    shifted = cosine * math.cos(margin) - sine * math.sin(margin)
    return torch.where(cosine >= -math.cos(margin), shifted, cosine - margin * math.sin(margin))


# ---------------------------------------------------------------- heads


class MarginHead(LossHead):
    """A bias-free ``classifier`` whose training logits carry a margin that may follow a schedule (the
    step counter t is ``step``, the planned number of steps T ``planned_steps``)."""

    bias = False
    scheduled = True

    def margined(
        self, features: torch.Tensor, labels: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The training logits without margin (B x K), the target logits with the margin at this
        ``progress`` (B), and the scheduled values to report as terms."""
        raise NotImplementedError

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, target_logit, scheduled = self.margined(self.cast(features), labels, self.advance())
        ce = F.cross_entropy(logits.scatter(1, labels.unsqueeze(1), target_logit.unsqueeze(1)), labels)
        return ce, {"ce": ce, **{name: ce.new_tensor(value) for name, value in scheduled.items()}}

    @classmethod
    def cone_degrees(cls, params: Any, spacing: float) -> float:
        """How close (degrees) a sample must be to its class direction to meet the margin against a rival
        class at the best ``spacing`` on the far side (the planar worst case); 0 or less: impossible.
        Without a margin this is spacing / 2."""
        raise NotImplementedError

    @classmethod
    def margin_advice(cls, params: Any, spacing: float) -> str:
        """Which margins work here, as a sentence, or "" when none leaves TIGHT_CONE_DEGREES."""
        raise NotImplementedError

    @classmethod
    def feasibility_warnings(cls, params: Any, feat_dim: int, n_classes: int) -> list[str]:
        warnings = cls.margin_warnings(params, feat_dim, n_classes)
        if feat_dim == 2 and n_classes > 2:
            warnings.append(
                "Its classifier has no bias, so with 2-D features it splits the plane into sectors around the "
                "origin and can only use a feature's angle, never its distance from the origin, to tell classes "
                "apart. Softmax's bias can use both. On data whose classes overlap in angle, such as "
                "Fashion-MNIST, expect several points less accuracy than softmax in 2-D; from 3-D on the gap "
                "closes."
            )
        return warnings

    @classmethod
    def margin_warnings(cls, params: Any, feat_dim: int, n_classes: int) -> list[str]:
        """A warning when the margin leaves samples too narrow a cone around their class direction."""
        spacing = best_spacing_degrees(n_classes, feat_dim)
        cone = cls.cone_degrees(params, spacing)
        if cone >= TIGHT_CONE_DEGREES or cone >= 0.999 * spacing / 2:  # roomy, or a margin that changes nothing
            return []
        where = f"{n_classes} classes in {feat_dim}-D, where class directions can be at most {spacing:.1f}° apart"
        if cone <= 0:
            verdict = f"Margin {params.margin:g} cannot be met with {where}, even by a sample lying exactly on its "
            verdict += "class direction, so the loss can never become small."
        else:
            verdict = f"Margin {params.margin:g} can only just be met with {where}: every sample would have to lie "
            verdict += f"within {cone:.1f}° of its class direction, and a small CNN's features stray further."
        advice = cls.margin_advice(params, spacing)
        if spacing / 2 < TIGHT_CONE_DEGREES:
            advice += f" With this many classes even no margin leaves only {spacing / 2:.1f}°; more feature "
            advice += "dimensions would help."
        return [f"{verdict} {advice.strip()}"]


@dataclasses.dataclass(frozen=True)
class MultiplicativeMarginParams:
    """The settings L-Softmax and SphereFace share; each takes its own defaults (``with_defaults``)."""

    margin: int = hparam(2, "m: the target angle is multiplied by m (1: no margin)", low=1, high=6)
    base: float = hparam(
        1000.0, "lambda at the start of training; 0 turns the annealing off (lambda = lambda_min)", low=0.0, high=1e6
    )
    gamma: float = hparam(
        1.0,
        "decay rate of lambda per whole run: lambda = max(lambda_min, base (1 + gamma t/T)^-power)",
        low=0.0,
        high=1e6,
    )
    power: float = hparam(1.0, "exponent of the lambda decay", low=0.0, high=1000.0)
    lambda_min: float = hparam(
        0.0,
        "floor of lambda; lower means a stronger margin (0: the pure margin at the end; official READMEs: 5-10 "
        "for hard data)",
        low=0.0,
        high=1e6,
    )


class MultiplicativeMarginHead(MarginHead):
    """L-Softmax and SphereFace: target logit |W_y||f| psi(theta_y), mixed with the plain logit by an
    annealed lambda. Params are a :class:`MultiplicativeMarginParams`."""

    normalize_weights: ClassVar[bool]

    def weights(self) -> torch.Tensor:
        weight = self.classifier.weight
        return F.normalize(weight, dim=1) if self.normalize_weights else weight

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """|W_j||f| cos theta_j = W_j.f with the weights as the loss uses them, without margin."""
        return self.cast(features) @ self.weights().T

    def class_directions(self) -> torch.Tensor:
        """The class weight vectors as the loss uses them: raw for L-Softmax (their lengths scale the
        logits), unit length for SphereFace."""
        return self.weights().detach()

    def current_lambda(self, progress: float) -> float:
        p = self.params
        return annealed_lambda(progress, p.base, p.gamma, p.power, p.lambda_min)

    def margined(
        self, features: torch.Tensor, labels: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        weights = self.weights()
        plain = features @ weights.T
        lam = self.current_lambda(progress)
        norms = features.norm(dim=1) * weights.norm(dim=1)[labels]
        target = multiplicative_target_logit(
            plain.gather(1, labels.unsqueeze(1)).squeeze(1), norms, self.params.margin, lam
        )
        return plain, target, {"softmax_share": lam / (1.0 + lam)}

    @classmethod
    def cone_degrees(cls, params: Any, spacing: float) -> float:
        """Largest theta_y meeting the margin against a rival at spacing - theta_y, with the target mixed
        as at the end of the run: (lambda cos theta + psi(theta)) / (1 + lambda) > cos(spacing - theta).
        lambda = 0 gives spacing / (m + 1)."""
        p = params
        lam = annealed_lambda(1.0, p.base, p.gamma, p.power, p.lambda_min)
        theta = torch.linspace(0.0, math.radians(spacing) / 2, 20001, dtype=torch.float64)
        target = (lam * theta.cos() + psi(theta.cos(), p.margin)) / (1.0 + lam)
        met = target > torch.cos(math.radians(spacing) - theta)
        return math.degrees(float(theta[met].max())) if met.any() else 0.0

    @classmethod
    def margin_advice(cls, params: Any, spacing: float) -> str:
        roomy = [
            m
            for m in range(1, 7)
            if cls.cone_degrees(dataclasses.replace(params, margin=m), spacing) >= TIGHT_CONE_DEGREES
        ]
        return f"Margin {max(roomy)} leaves {TIGHT_CONE_DEGREES:g}° or more." if roomy else ""


@dataclasses.dataclass(frozen=True)
class AdditiveMarginParams:
    """The settings CosFace and ArcFace share. Each loss redeclares ``margin`` with its own unit and
    default (the field keeps its place first)."""

    margin: float = hparam(0.0, "m: the margin on the target", low=0.0, high=1.0)
    scale: float = hparam(4.0, "s: every cosine is multiplied by s", low=0.0, high=128.0, low_inclusive=False)
    warmup: float = hparam(
        0.5, "fraction of the run over which the margin ramps up from 0 (0: full margin at once)", low=0.0, high=1.0
    )
    grad_clip: float = hparam(
        1.0,
        "largest gradient norm per step, model and head together (0: no clipping); see the module docstring",
        low=0.0,
        high=1000.0,
    )


class AdditiveMarginHead(MarginHead):
    """CosFace and ArcFace: normalized features and weights, logits s cos theta_j with a margin on the
    target, optionally warmed up linearly from 0 over the first ``warmup`` fraction of the run.
    Params are an :class:`AdditiveMarginParams`."""

    def max_grad_norm(self) -> float | None:
        """``grad_clip``: normalising the features makes their gradient grow as s/|f|, and on 2-D
        heads the ambiguous samples sit near the origin, so single steps can throw classes around."""
        return self.params.grad_clip or None

    def target_cosine(self, cosine: torch.Tensor, margin: float) -> torch.Tensor:
        """The target class's cosine with the margin applied."""
        raise NotImplementedError

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """s cos theta_j: the scaled cosines, without margin (exact ones, without the length floor of
        training, so that a sample's logits never depend on the rest of its batch)."""
        unit = F.normalize(self.cast(features), dim=1)
        return self.params.scale * (unit @ F.normalize(self.classifier.weight, dim=1).T)

    def class_directions(self) -> torch.Tensor:
        """The unit-length class weight vectors (only their direction enters the loss)."""
        return F.normalize(self.classifier.weight.detach(), dim=1)

    def current_margin(self, progress: float) -> float:
        warmup = self.params.warmup
        return self.params.margin * (min(1.0, progress / warmup) if warmup > 0 else 1.0)

    def margined(
        self, features: torch.Tensor, labels: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        cosine = normalize(features) @ F.normalize(self.classifier.weight, dim=1).T
        margin = self.current_margin(progress)
        target = self.target_cosine(cosine.gather(1, labels.unsqueeze(1)).squeeze(1), margin)
        return self.params.scale * cosine, self.params.scale * target, {"margin": margin}


def floor_to(value: float, decimals: int = 2) -> float:
    """``value`` rounded down, so that a suggested margin keeps the room promised for it."""
    return math.floor(value * 10**decimals) / 10**decimals
