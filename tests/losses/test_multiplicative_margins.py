"""What L-Softmax and SphereFace share: each matches its paper's formula (the multiplicative margin
psi on the target, mixed with the plain logit by lambda) on features at known angles and lengths,
against the reference formula in test_lsoftmax.py or test_sphereface.py."""

from __future__ import annotations

import pytest
import torch

from losses.lsoftmax import LSoftmaxHead
from losses.sphereface import SphereFaceHead
from tests.losses import formulas, test_lsoftmax, test_sphereface

REFERENCES = {"lsoftmax": test_lsoftmax.reference_loss, "sphereface": test_sphereface.reference_loss}
HEAD_TYPES = {"lsoftmax": LSoftmaxHead, "sphereface": SphereFaceHead}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize(("name", "lam"), [("lsoftmax", 0.5), ("sphereface", 2.0)])
def test_loss_matches_the_formula_on_features_at_known_angles(
    name: str, lam: float, m: int, dtype: torch.dtype
) -> None:
    head = formulas.seeded_head(name, n_classes=6, margin=m, base=0.0, lambda_min=lam, head_type=HEAD_TYPES[name])
    head = head.to(dtype).train()
    lengths = torch.linspace(0.5, 2, 52, dtype=dtype).unsqueeze(1)
    features = formulas.features_at_angles(range(0, 360, 7), dtype=dtype) * lengths
    loss, terms, expected = formulas.loss_and_reference(head, features, REFERENCES[name], m, lam)
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-10)
    assert terms["softmax_share"].item() == pytest.approx(lam / (1 + lam))
