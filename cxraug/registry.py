"""Generator plugins, discovered through the entry-point group ``cxraug.generators``.

Built-in plugins (plugins/cxraug_cgan, plugins/cxraug_diffusion) register exactly as a
third-party package would, in pyproject.toml. Nothing is cached at module level: each call
reads the installed entry points, so a newly installed plugin is seen at once.
"""

from __future__ import annotations

import difflib
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from cxraug.errors import UserError

if TYPE_CHECKING:
    from cxraug.generator import Generator

GROUP = "cxraug.generators"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    return sorted(_entry_points())


def get(name: str) -> type[Generator]:
    """Load the plugin class registered as ``name``; a helpful error if it is unknown."""
    from cxraug.generator import Generator, PluginConfig, SampleOptions

    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is cxraug installed with `pip install -e .`?)"
        close = difflib.get_close_matches(name, sorted(eps), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"unknown generator plugin {name!r}; known: {known}{hint}")
    try:
        cls = eps[name].load()
    except ModuleNotFoundError as e:
        # A package missing from the user's environment is theirs to install; a module of
        # cxraug's own that fails to import is a bug, and any other error while importing a
        # plugin (ours or a third party's) shows its traceback so its author can fix it.
        if e.name is None or e.name.partition(".")[0].startswith("cxraug"):
            raise
        raise UserError(
            f"plugin {name!r} ({eps[name].value}) failed to import: it needs the package {e.name!r}; install it"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise UserError(f"plugin {name!r} ({eps[name].value}) is not a cxraug.generator.Generator")
    # The core validates --set values and config files through these bases (unknown keys rejected).
    for attr, base in (("Config", PluginConfig), ("SampleOptions", SampleOptions)):
        member = getattr(cls, attr, None)
        if not (isinstance(member, type) and issubclass(member, base)):
            raise UserError(
                f"plugin {name!r} ({eps[name].value}): its {attr} must subclass cxraug.generator.{base.__name__}"
            )
    return cls


def describe() -> list[tuple[str, str, str]]:
    """(name, target, one-line description) for every registered plugin."""
    rows = []
    for name, ep in sorted(_entry_points().items()):
        try:
            desc = get(name).description
        except UserError as e:
            desc = f"(broken) {e}"
        rows.append((name, ep.value, desc))
    return rows


def trainable_sizes() -> dict[str, list[int]]:
    """Image sizes (px) each installed plugin trains, as it declares them (``Generator.sizes``);
    a plugin that fails to load is left out (``cxraug plugins`` says why)."""
    out = {}
    for name in available():
        try:
            out[name] = get(name).sizes()
        except UserError:
            continue
    return out
