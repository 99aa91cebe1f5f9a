"""Registry of named processes: name -> function returning an `HMM`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hmm_processes.errors import ProcessError
from hmm_processes.generalized import GeneralizedHMM
from hmm_processes.hmm import HMM

#: A function of keyword parameters returning an `HMM` or a `GeneralizedHMM`.
ProcessFactory = Callable[..., Any]

_REGISTRY: dict[str, ProcessFactory] = {}


def register_process(name: str, factory: ProcessFactory, *, overwrite: bool = False) -> ProcessFactory:
    """Add ``factory`` (a function of keyword parameters returning an `HMM`) under ``name``."""
    if not name.isidentifier() or name != name.lower():
        raise ProcessError(f"process name {name!r} must be snake_case (lowercase letters, digits, _)")
    if name in _REGISTRY and not overwrite:
        raise ProcessError(f"a process named {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = factory
    return factory


def unregister_process(name: str) -> ProcessFactory:
    """Remove the process registered under ``name`` and return its factory (unknown names raise `ProcessError`).

    Examples
    --------
    >>> from hmm_processes import get_process, register_process, unregister_process
    >>> _ = register_process("my_mess3", lambda: get_process("mess3"))
    >>> unregister_process("my_mess3").__name__
    '<lambda>'
    """
    factory = _lookup(name)
    del _REGISTRY[name]
    return factory


@contextmanager
def process_registry_scope() -> Iterator[None]:
    """Leave the registry as it was on entry when the block exits: processes registered inside are removed, replaced
    or removed ones restored (a test that registers a plugin cannot leak it into the next test).

    Examples
    --------
    >>> from hmm_processes import get_process, list_processes, process_registry_scope, register_process
    >>> with process_registry_scope():
    ...     _ = register_process("scoped_mess3", lambda: get_process("mess3"))
    ...     "scoped_mess3" in list_processes()
    True
    >>> "scoped_mess3" in list_processes()
    False
    """
    saved = dict(_REGISTRY)
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)


def process_parameters(name: str) -> dict[str, Any]:
    """The parameters of a registered process with their defaults (``inspect.Parameter.empty`` if none)."""
    factory = _lookup(name)
    return {p.name: p.default for p in inspect.signature(factory).parameters.values()}


def factory_name(name: str) -> str:
    """``module.function`` of the factory registered under ``name`` (for messages)."""
    factory = _lookup(name)
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"


def list_processes() -> dict[str, dict[str, Any]]:
    """Every registered process name with its parameters and defaults, sorted by name."""
    return {name: process_parameters(name) for name in sorted(_REGISTRY)}


def get_process(name: str, **params: Any) -> HMM | GeneralizedHMM:
    """Build the named process, e.g. ``get_process("mess3", x=0.05, alpha=0.85)``.

    Unknown names and unknown parameters raise `ProcessError` listing what is allowed; so does a bool,
    a string or None given for a parameter whose default is a number (``True`` is not 1.0), and a factory that
    returns anything but an `HMM` or a `GeneralizedHMM` (naming the factory and what it returned).

    Examples
    --------
    >>> from hmm_processes import get_process
    >>> mess3 = get_process("mess3", x=0.05, alpha=0.85)
    >>> mess3.T.shape  # [V, S, S]: T[x, i, j] = P(emit x, go to j | in i)
    (3, 3, 3)
    >>> mess3.T.sum(0).sum(1)  # summed over tokens, every row adds to 1
    array([1., 1., 1.])
    """
    factory = _lookup(name)
    allowed = process_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ProcessError(
            f"process {name!r} has no parameter {unknown[0]!r}; its parameters are: "
            + (", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "(none)")
        )
    for key, value in params.items():
        default = allowed[key]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, (bool, str)) or value is None):
            raise ProcessError(
                f"process {name!r}: parameter {key} must be a number (default {default!r}); got {value!r} "
                f"({type(value).__name__})" + ("; write it without quotes" if isinstance(value, str) else "")
            )
    process = factory(**params)
    if not isinstance(process, (HMM, GeneralizedHMM)):
        where = factory_name(name)
        got = "None" if process is None else f"a {type(process).__name__}"
        raise ProcessError(
            f"process {name!r}: its factory {where} returned {got}; a process factory must return "
            "an hmm_processes.HMM or GeneralizedHMM"
        )
    return process


def _lookup(name: str) -> ProcessFactory:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ProcessError(f"unknown process {name!r}; known processes: {known}") from None
