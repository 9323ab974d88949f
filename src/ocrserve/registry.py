"""`Registry`: type names (as configs write them) -> the classes or functions that build them.

A config names every part by its type (``DBNet``, ``mmdet.ResNet``, ``FPNC``, ``LoadImageFromFile``,
``DBPostprocessor``, ...). Each kind of part has its own `Registry`; looking up a name that is not
there raises `ConfigError` listing the names that are. Names are exact, scope prefix included.

A registry is filled by the modules that decorate their classes with ``@REGISTRY.register(...)``;
it imports those modules (named when it is made) the first time it is read, so that importing a
registry stays cheap and the registrants may import it without a cycle.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from ocrserve.errors import ConfigError

__all__ = ["ALWAYS_IGNORED", "Registry"]

T = TypeVar("T")

#: Config keys that only matter for training or weight initialisation; every builder ignores them.
ALWAYS_IGNORED = frozenset({"init_cfg", "pretrained"})


class Registry(Generic[T]):
    """Named builders of one kind (``backbone``, ``neck``, ``transform``, ...).

    ``modules`` are imported on the first lookup: the modules whose decorators fill it.
    """

    def __init__(self, kind: str, modules: Sequence[str] = ()) -> None:
        self.kind = kind
        self._modules = tuple(modules)
        self._loaded = not self._modules
        self._entries: dict[str, tuple[Callable[..., T], frozenset[str]]] = {}

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for name in self._modules:
                importlib.import_module(name)

    def register(
        self, *names: str, ignore: Iterable[str] = ()
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Register a class (or factory) under one or more MMOCR type names.

        ``ignore`` lists config keys the builder accepts from MMOCR configs but has no use for at
        inference (losses, training settings); they are dropped before the call.
        """
        skipped = ALWAYS_IGNORED | frozenset(ignore)

        def decorate(builder: Callable[..., T]) -> Callable[..., T]:
            for name in names:
                if name in self._entries:
                    raise ValueError(f"{self.kind} type {name!r} is registered twice")
                self._entries[name] = (builder, skipped)
            return builder

        return decorate

    def names(self) -> list[str]:
        """The registered type names, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        """The builder registered as ``name``; `ConfigError` listing the supported names if none."""
        self._load()
        try:
            return self._entries[name][0]
        except KeyError:
            raise ConfigError(
                f"Unsupported {self.kind} type {name!r}; supported: {', '.join(self.names())}"
            ) from None

    def build(self, cfg: Mapping[str, Any], **overrides: Any) -> T:
        """Build from a config dict ``{"type": NAME, **kwargs}``; ``overrides`` replace kwargs.

        Keys the builder does not take raise `ConfigError` naming them (MMOCR would fail too).
        """
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("type"), str):
            raise ConfigError(
                f"A {self.kind} config must be a dict with a 'type' name, got {cfg!r}"
            )
        name = cfg["type"]
        builder = self.get(name)
        skipped = self._entries[name][1]
        merged = {**cfg, **overrides}
        kwargs = {k: v for k, v in merged.items() if k != "type" and k not in skipped}
        try:
            inspect.signature(builder).bind(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"Bad {self.kind} config for {name!r}: {exc}") from None
        return builder(**kwargs)
