"""The contract every loss head keeps, as checks that run on any registered loss: the built-in losses'
tests (tests/losses/test_registry.py), pytorch-metric-learning's through the ``pml:`` adapter, and a
user's own loss through ``python -m lab check-loss``. One implementation, so a plug-in is held to exactly
what the built-in losses are.

Each :class:`Check` runs on a loss name and either passes or raises :class:`Fault` with what is wrong and
what to change; :func:`run` runs them all and reports every one, so a user sees every fault at once. A
check that hits an exception in the loss's own code reports it with the file and line.

What is checked (:data:`CHECKS`): the text the app shows, the hyperparameter declarations, finite losses
and gradients on awkward batches, a zero feature, half and double precision, gradients reaching every
parameter, inference logits (one column per class, free of margins, labels, training state and the rest of
the batch), state kept in buffers and restored by ``state_dict``, eval-mode forwards that change nothing,
determinism, and learning a separable set.
"""

from __future__ import annotations

import math
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from losses import registry
from losses.base import HparamError, hparam_specs
from losses.contract_base import (
    BATCH_KINDS,
    BUFFER_FIX,
    FEAT_DIMS,
    LOGITS_FIX,
    MARGIN_NAME,
    N_CLASSES,
    Check,
    Context,
    Fault,
    Result,
    another_value,
    bad_values,
    finite_step,
    head_state,
    labelled_batch,
    make_head,
    mlp,
    plain_values,
    same_tensor,
)

# ---------------------------------------------------------------- helpers


# ---------------------------------------------------------------- the checks


def check_about(name: str, context: Context) -> None:
    cls = registry.get(name)
    fix = "declare it as README's example loss does (README: Your own loss)"
    if not cls.title.strip() or "\n" in cls.title or len(cls.title) > 60:
        raise Fault(f"title {cls.title!r} is not one short line", "give the loss's name as its paper writes it")
    if not cls.summary.strip() or "\n" in cls.summary or len(cls.summary) > 200:
        raise Fault(
            "summary is not one line of at most 200 characters",
            f"open the class docstring with one line for menus; {fix}",
        )
    if "=" not in cls.formula_latex:
        raise Fault(
            f"formula {cls.formula_latex!r} has no '='",
            f"write the training loss as LaTeX after '.. math::' in the class docstring: L = ...; {fix}",
        )
    if cls.lesson:
        sentences = [s for s in cls.lesson.split(". ") if s.strip()]
        if len(sentences) < 2 or "\n" in cls.lesson:
            raise Fault("lesson is not two or more sentences on one line", f"write it for students; {fix}")
    if context.figures is not None:
        unknown = [e.figure for e in cls.expected if e.figure not in context.figures]
        if unknown:
            raise Fault(
                f"expect names {', '.join(unknown)}, which is not a figure LossLens measures",
                f"name one of {', '.join(sorted(context.figures))}",
            )


def check_hparams(name: str, context: Context) -> None:
    cls = registry.get(name)
    specs = hparam_specs(cls.Params)
    info = registry.info(name)
    if info.defaults != {spec.name: spec.default for spec in specs}:
        raise Fault("the listed defaults differ from the Params declarations", "declare each with hparam()")
    fix = "declare every hyperparameter with losses.hparam(default, help, low=, high=) and a default in its range"
    for spec in specs:
        if not spec.help.strip():
            raise Fault(f"hyperparameter {spec.name} has no help text", fix)
    try:
        defaults = registry.make_params(name, {})
    except HparamError as err:
        raise Fault(f"the defaults are refused: {err}", fix) from None
    if defaults != registry.make_params(name, info.defaults) or defaults != cls.Params():
        raise Fault("the defaults do not validate to the declared Params", fix)
    for spec in specs:
        for value in bad_values(spec):
            try:
                registry.make_params(name, {spec.name: value})
            except HparamError as err:
                if not str(err).startswith(f"{name}.{spec.name}: "):
                    raise Fault(f"{spec.name}={value!r} is refused without naming the field: {err}", fix) from None
                continue
            raise Fault(f"{spec.name}={value!r} is accepted but is not {spec.range_text()}", fix)
    try:
        registry.make_params(name, {"no_such_setting": 1})
        raise Fault("an unknown hyperparameter is accepted", fix)
    except HparamError as err:
        if not str(err).startswith(f"{name}: unknown hyperparameter no_such_setting"):
            raise Fault(f"an unknown hyperparameter is refused without naming the loss: {err}", fix) from None
    for feat_dim in FEAT_DIMS:
        warnings = registry.warnings_for(name, feat_dim, 10)
        if not all(isinstance(warning, str) for warning in warnings):
            raise Fault("feasibility_warnings returned something other than sentences", "return a list of str")


def check_finite(name: str, context: Context) -> None:
    for feat_dim in FEAT_DIMS:
        for kind in BATCH_KINDS:
            head = make_head(name, feat_dim)
            features, labels = labelled_batch(kind, feat_dim)
            head.train()
            for step in range(3):  # later steps meet stored state (centers, step counters)
                finite_step(head, features, labels, f"{feat_dim}-D, {kind}, training step {step + 1}")
            head.eval()
            finite_step(head, features, labels, f"{feat_dim}-D, {kind}, eval mode")


def check_zero_feature(name: str, context: Context) -> None:
    head = make_head(name, 2).train()
    generator = torch.Generator().manual_seed(7)
    labels = torch.arange(32) % N_CLASSES
    features = torch.randn(32, 2, generator=generator) * 3
    for zero in (torch.zeros(2), torch.full((2,), 1e-11)):
        batch = torch.cat([zero.unsqueeze(0), features]).requires_grad_()
        total, _ = head(batch, torch.cat([torch.tensor([1]), labels]))
        total.backward()
        if batch.grad is None or not torch.isfinite(batch.grad).all():
            raise Fault(
                f"a feature of length {float(zero.norm()):g} gets a non-finite gradient",
                "divide by a floored length (losses.normalize) instead of |f|, and keep sqrt and acos away from 0 "
                "and 1",
            )


def check_half_precision(name: str, context: Context) -> None:
    head = make_head(name, 3).train()
    features, labels = labelled_batch("odd batch of 7", 3)
    total, _ = head(features.half(), labels)
    if total.dtype != torch.float32 or not torch.isfinite(total):
        raise Fault(
            f"half-precision features give a {total.dtype} loss of {total.item()}",
            "cast the features to the head's dtype first: features = self.cast(features) in forward and logits",
        )


def check_dtype(name: str, context: Context) -> None:
    for head_dtype, feature_dtype in [
        (torch.float64, torch.float64),
        (torch.float64, torch.float32),
        (torch.float32, torch.float64),
    ]:
        head = make_head(name, 3).to(head_dtype).train()
        features, labels = labelled_batch("odd batch of 7", 3)
        features = features.to(feature_dtype).requires_grad_()
        total, terms = head(features, labels)
        total.backward()
        where = f"a {head_dtype} head fed {feature_dtype} features"
        fix = (
            "cast the features to the head's dtype (self.cast(features)) and build every constant with the "
            "features' dtype and device"
        )
        if total.dtype != head_dtype or any(value.dtype != head_dtype for value in terms.values()):
            raise Fault(f"{where} computes its loss in {total.dtype}", fix)
        if head.logits(features).dtype != head_dtype:
            raise Fault(f"{where} gives logits in {head.logits(features).dtype}", fix)
        if features.grad is None or features.grad.dtype != feature_dtype or not torch.isfinite(features.grad).all():
            raise Fault(f"{where} gives the features no finite gradient of their own dtype", fix)


def check_gradients_reach(name: str, context: Context) -> None:
    for feat_dim in FEAT_DIMS:
        torch.manual_seed(0)
        network, inputs = (context.network or mlp)(feat_dim)
        head = make_head(name, feat_dim)
        network.train()
        head.train()
        labels = torch.arange(len(inputs)) % N_CLASSES
        total, _ = head(network(inputs), labels)
        total.backward()
        for owner, module in (("network", network), ("head", head)):
            for parameter_name, parameter in module.named_parameters():
                where = f"{feat_dim}-D: {owner}.{parameter_name}"
                if parameter.grad is None or parameter.grad.abs().sum() == 0:
                    raise Fault(
                        f"no gradient reaches {where}",
                        "every parameter must take part in the training loss (remove unused ones; do not detach the "
                        "features or weights in forward)",
                    )
                if not torch.isfinite(parameter.grad).all():
                    raise Fault(f"the gradient of {where} is not finite", "guard divisions and logarithms in forward")


def check_logits(name: str, context: Context) -> None:
    for feat_dim in FEAT_DIMS:
        head = make_head(name, feat_dim, n_classes=5)
        features = torch.randn(9, feat_dim, generator=torch.Generator().manual_seed(2))
        head.eval()
        before = head.logits(features)
        if tuple(before.shape) != (9, 5):
            raise Fault(f"logits of 9 features and 5 classes have shape {tuple(before.shape)}", "return B x K logits")
        head.train()
        if not same_tensor(head.logits(features), before):
            raise Fault("logits differ between training and eval mode", LOGITS_FIX)
        alone = torch.cat([head.logits(features[i : i + 1]) for i in range(len(features))])
        if not torch.allclose(alone, before, rtol=1e-5, atol=1e-6):
            raise Fault(
                "a sample's logits depend on the rest of its batch",
                "compute each sample's logits from its own features: F.normalize(features, dim=1) rather than "
                "losses.normalize, whose length floor is taken over the batch",
            )
        with torch.no_grad():
            head(features, torch.zeros(9, dtype=torch.long))
            after_a = head.logits(features)
            head(features, torch.arange(9) % 5)
            after_b = head.logits(features)
        if not same_tensor(after_a, after_b):
            raise Fault(
                "inference logits are margin-modified: they depend on the labels of the last training call", LOGITS_FIX
            )
        if not same_tensor(after_a, before):
            raise Fault(
                "inference logits changed after training forwards on the same weights (a margin or state leaking "
                "into logits)",
                LOGITS_FIX,
            )


def check_no_margin_at_inference(name: str, context: Context) -> None:
    specs = [spec for spec in hparam_specs(registry.get(name).Params) if MARGIN_NAME.search(spec.name)]
    features = torch.randn(9, 3, generator=torch.Generator().manual_seed(5))
    for spec in specs:
        if spec.kind not in (int, float):
            continue
        other = another_value(spec)
        if other is None:
            continue
        base = make_head(name, 3, n_classes=5).eval()
        changed = make_head(name, 3, n_classes=5, **{spec.name: other}).eval()
        changed.load_state_dict(base.state_dict())
        if not torch.allclose(base.logits(features), changed.logits(features), rtol=1e-6, atol=1e-7):
            raise Fault(
                f"inference logits are margin-modified: they change when {spec.name} goes from {spec.default} to "
                f"{other} with the same weights",
                LOGITS_FIX,
            )


def check_state_in_buffers(name: str, context: Context) -> None:
    # Two training forwards on the same batch: a plain attribute that differs between them carries state
    # from step to step (a counter, centers), which state_dict() would not save. A record of the last call
    # (a library's reducer keeps its last divisor) is the same both times and is not state.
    head = make_head(name, 3)
    features, labels = labelled_batch("odd batch of 7", 3)
    head.train()
    head(features, labels)
    after_one = plain_values(head)
    head(features, labels)
    after_two = plain_values(head)
    changed = sorted(key for key in after_one.keys() | after_two.keys() if after_one.get(key) != after_two.get(key))
    if changed:
        raise Fault(
            f"state in a plain attribute: each training forward changes {', '.join(changed)}, which state_dict() "
            "does not save, so a reloaded run would lose it",
            BUFFER_FIX,
        )


def check_state_round_trip(name: str, context: Context) -> None:
    for feat_dim in (2, 16):
        generator = torch.Generator().manual_seed(3)
        batches = [
            (torch.randn(8, feat_dim, generator=generator), torch.randint(0, N_CLASSES, (8,), generator=generator))
            for _ in range(6)
        ]
        head = make_head(name, feat_dim, seed=0).train()
        for features, labels in batches[:4]:
            head(features, labels)
        with tempfile.TemporaryDirectory(prefix="losslens-contract-") as folder:
            path = str(Path(folder) / "head.safetensors")
            try:
                save_file(head.state_dict(), path)
            except Exception as err:
                raise Fault(f"state_dict() cannot be saved with safetensors ({err})", BUFFER_FIX) from None
            restored = make_head(name, feat_dim, seed=1)
            restored.load_state_dict(load_file(path))
        restored.train()
        for features, labels in batches[4:]:
            expected, expected_terms = head(features, labels)
            got, got_terms = restored(features, labels)
            if not same_tensor(got, expected) or got_terms.keys() != expected_terms.keys():
                raise Fault(
                    f"{feat_dim}-D: a head restored from state_dict() computes another loss than the one saved "
                    f"({got.item()} instead of {expected.item()})",
                    BUFFER_FIX,
                )
            if not all(same_tensor(got_terms[key], expected_terms[key]) for key in expected_terms):
                raise Fault(f"{feat_dim}-D: a restored head's terms differ from the saved one's", BUFFER_FIX)
        for key, value in head.state_dict().items():
            if not same_tensor(restored.state_dict()[key], value):
                raise Fault(f"{feat_dim}-D: {key} is not the same after training both", BUFFER_FIX)


def check_eval_keeps_state(name: str, context: Context) -> None:
    head = make_head(name, 2)
    features, labels = labelled_batch("odd batch of 7", 2)
    head.eval()
    before = head_state(head)
    head(features, labels)
    changed = [key for key, value in head.state_dict().items() if not same_tensor(before[key], value)]
    if changed:
        raise Fault(
            f"an eval-mode forward changed {', '.join(changed)}",
            "update state only when self.training: evaluation and plotting call the head in eval mode",
        )
    head.train()
    for step in (1, 2):
        head(features, labels)
        if head.scheduled and int(head.step) != step:
            raise Fault(
                f"after {step} training forwards the step counter is {int(head.step)}",
                "call self.advance() once per training forward: one training forward is one optimizer step",
            )


def check_deterministic(name: str, context: Context) -> None:
    runs = []
    for _ in range(2):
        head = make_head(name, 3, seed=4).train()
        generator = torch.Generator().manual_seed(6)
        values = []
        for _ in range(3):
            features = torch.randn(10, 3, generator=generator).requires_grad_()
            labels = torch.randint(0, N_CLASSES, (10,), generator=generator)
            total, _ = head(features, labels)
            (grad,) = torch.autograd.grad(total, features)
            values += [total.detach(), grad]
        runs.append(values + [head.logits(features.detach())])
    if not all(same_tensor(a, b) for a, b in zip(*runs, strict=True)):
        raise Fault(
            "two heads built with the same seed and fed the same batches compute different losses or gradients",
            "draw random numbers only from torch's global generator in __init__ (seeded by the run), never in "
            "forward, and avoid nondeterministic operations",
        )


def check_learns(name: str, context: Context) -> None:
    generator = torch.Generator().manual_seed(4)
    centers = torch.tensor([[4.0, 0.0], [-2.0, 3.5], [-2.0, -3.5]])
    labels = torch.arange(3).repeat(20)
    points = centers[labels] + 0.3 * torch.randn(60, 2, generator=generator)
    for feat_dim in FEAT_DIMS:
        torch.manual_seed(0)
        feature_map = nn.Linear(2, feat_dim)
        head = make_head(name, feat_dim, n_classes=3).train()
        optimiser = torch.optim.Adam([*feature_map.parameters(), *head.parameters()], lr=0.02)
        values = []
        for _ in range(100):
            total, _ = head(feature_map(points), labels)
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            values.append(total.item())
        fix = "check the loss's sign and that the true class's logit rises as the loss falls"
        if not all(math.isfinite(v) for v in values):
            raise Fault(f"{feat_dim}-D: the loss became {values[-1]} on 3 separable clusters", fix)
        if not sum(values[-5:]) / 5 < 0.8 * sum(values[:5]) / 5:
            raise Fault(
                f"{feat_dim}-D: 100 Adam steps on 3 separable clusters took the loss from {values[0]:.3g} to "
                f"{values[-1]:.3g}, not 20% lower",
                fix,
            )
        if feat_dim >= 3:
            # In 2-D a purely angular head can get stuck with the classes in the wrong cyclic order around
            # the circle (they cannot pass each other); from 3-D on, every loss must separate the clusters.
            accuracy = (head.logits(feature_map(points)).argmax(1) == labels).float().mean().item()
            if accuracy < 1.0:
                raise Fault(
                    f"{feat_dim}-D: the logits classify {accuracy:.0%} of 3 separable clusters right after training",
                    "the logits' argmax must be the class the loss pulls a feature towards",
                )


CHECKS: tuple[Check, ...] = (
    Check("about", "the text the app shows: title, summary, paper, formula, lesson", check_about),
    Check("hparams", "hyperparameters declared with hparam(): help, valid defaults, bad values refused", check_hparams),
    Check(
        "finite",
        "finite loss, terms and gradients on batches of 7, of 1, of one class and of every class",
        check_finite,
    ),
    Check("zero-feature", "finite gradients at a zero feature", check_zero_feature),
    Check("half", "half-precision features give a float32 loss", check_half_precision),
    Check("dtype", "float64: features are cast to the head's dtype", check_dtype),
    Check("gradients", "gradients reach every parameter of the network and the head", check_gradients_reach),
    Check("logits", "inference logits: B x K, never margin-modified, free of labels, state and batch", check_logits),
    Check("margin", "inference logits do not change with a margin hyperparameter", check_no_margin_at_inference),
    Check("buffers", "state lives in buffers, never in plain attributes", check_state_in_buffers),
    Check("state-dict", "state_dict() saves and restores the state (safetensors)", check_state_round_trip),
    Check("eval", "an eval-mode forward changes nothing; a training forward is one step", check_eval_keeps_state),
    Check("determinism", "the same seed gives the same loss and gradients, bit for bit", check_deterministic),
    Check("learns", "the loss falls on 3 separable clusters, which the logits then separate", check_learns),
)


def run(name: str, context: Context | None = None, checks: Sequence[Check] = CHECKS) -> list[Result]:
    """Every check on ``name``, each passed or with its fault; an exception in the loss's code is a fault that
    names it and where it happened."""
    results = []
    for check in checks:
        try:
            check(name, context)
        except Fault as fault:
            results.append(Result(check, name, False, str(fault)))
        except Exception as err:
            results.append(Result(check, name, False, f"the loss raised {_where(err)}"))
        else:
            results.append(Result(check, name, True))
    return results


def _where(err: Exception) -> str:
    """``TypeError: ... (my_loss.py, line 12)``: the error and the last line outside LossLens and torch."""
    text = f"{type(err).__name__}: {err}"
    ours = Path(__file__).resolve().parent
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        path = Path(frame.filename)
        if ours not in path.parents and "site-packages" not in path.parts and "torch" not in path.parts:
            return f"{text} ({path.name}, line {frame.lineno})"
    return text
