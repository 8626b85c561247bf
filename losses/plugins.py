"""Losses from outside LossLens: a user's own Python file, package folder or installed module.

A plug-in loss is a subclass of :class:`losses.LossHead` with a ``name``, a ``Params`` dataclass of
``hparam()`` fields and, as class attributes, the text the app shows about it (``title``, ``summary``,
``paper``, ``formula_latex``, ``lesson`` and optionally ``expect``: see :mod:`losses.registry`). Loading
its module registers every such class it defines through :func:`losses.registry.register`, the path the
built-in losses take, and records where it came from, so a run trained with it can say which module a
later process needs.

Loading a module runs its code, so only the person who starts a process names one: ``--loss-module`` on
the command line, :data:`ENV` in the environment, or an installed package's :data:`ENTRY_POINTS` entry
point. Nothing a browser sends and nothing stored in a run folder is ever imported: a run records its
module only to name it in the message shown when the module is not loaded (:func:`missing_message`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from losses import registry
from losses.base import LossHead

logger = logging.getLogger(__name__)

ENV = "LOSSLENS_LOSS_MODULES"  # os.pathsep-separated files, package folders or module names
ENTRY_POINTS = "losslens.losses"  # the entry-point group an installed package declares its losses in
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

_loaded: dict[str, tuple[str, ...]] = {}  # source -> the losses its module registered
_lock = threading.RLock()


class PluginError(ValueError):
    """A loss module that cannot be loaded: the message names it, says why and what to change."""


def source_of(spec: str) -> str:
    """How a module the user named is recorded: a file or folder as its absolute path (so another process,
    started elsewhere, finds it), a module name as it is."""
    spec = spec.strip()
    if _is_path(spec):
        return str(Path(spec).expanduser().resolve())
    return spec


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec or not MODULE_NAME.fullmatch(spec)


def load(spec: str) -> tuple[str, ...]:
    """Import the module ``spec`` names (a ``.py`` file, a package folder or a module name) and register the
    losses it defines; returns their names. Loading the same source again returns the same names.
    Raises :class:`PluginError` saying what is wrong."""
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError("a loss module must be a file, a package folder or a module name; got nothing")
    source = source_of(spec)
    with _lock:
        if source in _loaded:
            return _loaded[source]
        try:
            module = _import_file(source) if _is_path(spec) else _import_name(source)
            with registry.loading(source):
                names = _register_all(module, source)
        except PluginError:
            registry.forget(source)  # a module that failed half-way leaves none of its losses behind
            raise
        _loaded[source] = names
    logger.info("loaded loss module %s: %s", source, ", ".join(names))
    return names


def _import_file(path_text: str) -> ModuleType:
    path = Path(path_text)
    if path.is_dir():
        init = path / "__init__.py"
        if not init.is_file():
            raise PluginError(f"{path}: a folder must be a Python package (hold an __init__.py) to be a loss module")
        location, search = init, [str(path)]
    elif path.is_file():
        if path.suffix != ".py":
            raise PluginError(f"{path}: a loss module file must be Python source ending in .py")
        location, search = path, None
    else:
        raise PluginError(f"{path}: no such file or folder; give the path of the .py file that defines your loss")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"losslens_plugin_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, location, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: Python cannot import this file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a package's relative imports and dataclasses look the module up by name
    try:
        with registry.loading(str(path)):
            spec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(name, None)
        if not isinstance(err, Exception):
            raise
        raise PluginError(f"{path}: importing it raised {_described(err, str(location))}") from err
    return module


def _import_name(name: str) -> ModuleType:
    try:
        with registry.loading(name):
            return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(err.name + ".")):
            raise PluginError(
                f"{name}: no module of that name is installed; install its package, or give the path of "
                "the .py file that defines your loss"
            ) from None
        raise PluginError(f"{name}: importing it raised {_described(err, '')}") from err
    except Exception as err:
        raise PluginError(f"{name}: importing it raised {_described(err, '')}") from err


def _described(err: Exception, filename: str) -> str:
    """``TypeError: ... (line 12)``: the error and, when it happened in the user's file, where."""
    text = f"{type(err).__name__}: {err}"
    frames = [frame for frame in traceback.extract_tb(err.__traceback__) if not filename or frame.filename == filename]
    if frames:
        text += f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})"
    return text


def _register_all(module: ModuleType, source: str) -> tuple[str, ...]:
    """Register every loss head class ``module`` defines or imports with a ``name`` of its own (the ones it
    registered itself with ``@register`` are already in); the module's losses are those registered from it."""
    try:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, LossHead) and "name" in vars(cls) and cls.name not in registry.names():
                registry.register(cls)
    except ValueError as err:
        raise PluginError(f"{source}: {err}") from None
    names = tuple(name for name in registry.names() if registry.source(name) == source)
    if not names:
        raise PluginError(
            f"{source}: defines no loss; a loss is a subclass of losses.LossHead with a name, a Params dataclass "
            "and its title, summary, paper, formula_latex and lesson (README: Your own loss)"
        )
    return names


def env_specs(environ: Mapping[str, str] | None = None) -> list[str]:
    """The modules :data:`ENV` names, in order."""
    value = (os.environ if environ is None else environ).get(ENV, "")
    return [part.strip() for part in value.split(os.pathsep) if part.strip()]


def entry_point_specs() -> list[str]:
    """The modules installed packages declare in the :data:`ENTRY_POINTS` group."""
    try:
        points = importlib.metadata.entry_points(group=ENTRY_POINTS)
    except Exception as err:  # a broken installation's metadata must not stop LossLens
        logger.warning("could not read the %s entry points: %s", ENTRY_POINTS, err)
        return []
    return list(dict.fromkeys(point.module for point in points))


def load_all(specs: Iterable[str], what: str) -> tuple[list[str], list[str]]:
    """Load every module of ``specs``; returns the names of their losses and a problem per module that could
    not be loaded, each starting with ``what`` named it (``--loss-module``, :data:`ENV`, ...)."""
    names: list[str] = []
    problems: list[str] = []
    for spec in specs:
        try:
            names += load(spec)
        except PluginError as err:
            problems.append(f"{what} {spec}: {err}")
    return names, problems


def load_configured(environ: Mapping[str, str] | None = None) -> list[str]:
    """Load the modules :data:`ENV` and the installed entry points name, for a process that has no flags
    (the app, a Ray worker); returns a problem per module that could not be loaded."""
    _, problems = load_all(env_specs(environ), ENV)
    _, more = load_all(entry_point_specs(), f"entry point ({ENTRY_POINTS})")
    return problems + more


def loaded_sources() -> list[str]:
    """The sources of every module loaded so far, in order: what another process (a Ray worker) loads to
    rebuild the same losses."""
    with _lock:
        return list(_loaded)


def missing_message(loss: str, source: str) -> str:
    """What to do when a run's loss ``loss``, recorded as coming from ``source``, is not loaded here."""
    if not source:
        return f"unknown loss {loss!r} (choose from: {', '.join(registry.names())})"
    # short enough to survive a run listing's cut of long problems, the module's path said once
    return f"loss {loss!r} is from {source}, not loaded here: pass it to --loss-module (the app: set {ENV} to it)"
