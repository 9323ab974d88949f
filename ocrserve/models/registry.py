"""Registries: MMOCR ``type`` names -> the classes that build them.

A config names every part of a model by its MMOCR type (``DBNet``, ``mmdet.ResNet``, ``FPNC``, ...).
Each kind of part has its own `Registry`; looking up a name that is not there raises `ConfigError`
listing the names that are. Names are exact, scope prefix included: ``mmdet.ResNet`` (mmdet's
ResNet, used by DBNet) and ``ResNet`` (MMOCR's own recognition ResNet) are different classes.

Adding an architecture is one module that decorates its classes with ``@REGISTRY.register(...)``
plus one import line in its package's ``__init__`` (see `load_architectures`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ocrserve.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "BACKBONES",
    "DECODERS",
    "ENCODERS",
    "HEADS",
    "MODELS",
    "NECKS",
    "PREPROCESSORS",
    "Registry",
    "build_model",
    "load_architectures",
]

T = TypeVar("T")

#: Config keys that only matter for training or weight initialisation; every builder ignores them.
ALWAYS_IGNORED = frozenset({"init_cfg", "pretrained"})


class Registry(Generic[T]):
    """Named builders of one kind (``backbone``, ``neck``, ``transform``, ...)."""

    def __init__(self, kind: str, load: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._load = load
        self._entries: dict[str, tuple[Callable[..., T], frozenset[str]]] = {}

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
        if self._load is not None:
            self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        """The builder registered as ``name``; `ConfigError` listing the supported names if none."""
        if self._load is not None:
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


#: Packages whose import registers the architectures (each imports its own modules).
_ARCHITECTURE_PACKAGES = (
    "ocrserve.models.backbones",
    "ocrserve.models.necks",
    "ocrserve.models.heads",
    "ocrserve.models.encoders",
    "ocrserve.models.decoders",
    "ocrserve.models.detectors",
    "ocrserve.models.recognizers",
)
_loaded = False


def load_architectures() -> None:
    """Import every architecture module once, so that the registries are filled."""
    global _loaded
    if not _loaded:
        _loaded = True
        for package in _ARCHITECTURE_PACKAGES:
            importlib.import_module(package)


BACKBONES: Registry[nn.Module] = Registry("backbone", load_architectures)
NECKS: Registry[nn.Module] = Registry("neck", load_architectures)
HEADS: Registry[nn.Module] = Registry("head", load_architectures)
PREPROCESSORS: Registry[nn.Module] = Registry("preprocessor", load_architectures)
ENCODERS: Registry[nn.Module] = Registry("encoder", load_architectures)
DECODERS: Registry[nn.Module] = Registry("decoder", load_architectures)
#: Whole models: text detectors and recognizers.
MODELS: Registry[nn.Module] = Registry("model", load_architectures)


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """Build the network of an MMOCR ``model`` config (the ``model`` dict, not the whole file).

    The module has MMOCR's parameter names, is in eval mode and returns raw outputs; pre- and
    post-processing live in `ocrserve.pipelines`.
    """
    model = MODELS.build(cfg)
    model.eval()
    return model
