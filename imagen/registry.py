"""One registry of names for every pluggable part: commands, metrics, generators, feature spaces, preference
models, samplers and study actions.

An entry is the object itself or a lazy ``"package.module:attr"`` string, imported on first use (as lm-eval
registers its tasks and Hydra its ``_target_``), so listing names imports nothing heavy. Looking up an unknown
name, a target that does not import, or an entry of the wrong type is one :class:`UserError` line naming what
is registered. Plain Python (no torch), so every layer may use it; the parts above the model import it from
``harness.registry``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from imagen.errors import UserError

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    """An unknown name: a user error (one line, exit 2) and a ``KeyError`` (``Mapping.get`` and ``in`` work)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def load_target(target: str, what: str) -> Any:
    """The object a ``"package.module:attr"`` (or ``"package.module.attr"``) string names."""
    module, sep, attr = target.partition(":")
    if not sep:
        module, _, attr = target.rpartition(".")
    if not module or not attr:
        raise UserError(f"{what} {target!r} is not a 'package.module:attr' path")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise UserError(f"{what} {target!r} cannot be imported ({err})") from None


class Registry(Mapping[str, T], Generic[T]):
    """Names → entries of one kind. ``registry[name]`` resolves (and keeps) a lazy entry and checks its type.

    ``what`` names the kind in errors ("metric", "feature space"); ``check``/``expected`` say what a resolved
    entry must be; ``paths=True`` also accepts a ``module:attr`` path for a name nobody registered (a user's
    own metric class without a registration line).
    """

    def __init__(
        self,
        what: str,
        entries: Mapping[str, T | str] | None = None,
        *,
        check: Callable[[Any], bool] | None = None,
        expected: str = "",
        paths: bool = False,
    ) -> None:
        self.what, self._check, self._expected, self._paths = what, check, expected, paths
        self._entries: dict[str, T | str] = dict(entries or {})

    # --- registration -----------------------------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, entry: T | str) -> T | str: ...

    def register(self, name: str, entry: Any = None) -> Any:
        """Register ``entry`` as ``name``; without ``entry``, a decorator. A lazy string may be replaced by
        the object it names (its module registering itself on import), and an equal entry registered again
        is a no-op; a different object may not replace another (``unregister`` it first)."""
        if entry is None:
            return lambda obj: self.register(name, obj)
        existing = self._entries.get(name)
        if existing is not None and existing != entry and not isinstance(existing, str):
            raise ValueError(f"{self.what} {name!r} is already registered as {existing!r}")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a test's temporary entry); unknown names are ignored."""
        self._entries.pop(name, None)

    # --- lookup ----------------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        entry = self._entries.get(name)
        if entry is None:
            if not (self._paths and ":" in name):
                extra = " (or give module:attr)" if self._paths else ""
                raise UnknownNameError(f"unknown {self.what} {name!r}; registered: {', '.join(self.names())}{extra}")
            entry = name
        resolved = load_target(entry, self.what) if isinstance(entry, str) else entry
        if self._check is not None and not self._check(resolved):
            raise UserError(f"{self.what} {name!r} is not {self._expected or 'of the registered kind'}")
        if name in self._entries and isinstance(self._entries[name], str):
            self._entries[name] = resolved
        return resolved

    def target(self, name: str) -> str | None:
        """The lazy ``module:attr`` of ``name`` while it is not yet imported (None once it is, or if eager)."""
        entry = self._entries.get(name)
        return entry if isinstance(entry, str) else None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))  # a snapshot: resolving an entry may register others

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self.names())})"
