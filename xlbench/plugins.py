"""Plugin discovery: entry points and a local folder of ``*.py`` files, one registry for both.

Built-in encoders, samplers and datasets are registered through the same entry-point groups as
third-party packages (see ``pyproject.toml``). A local plugin is a ``.py`` file in the plugins
folder (``./plugins``, ``--plugins-dir`` or ``$XLBENCH_PLUGINS_DIR``) defining a class with class
attributes ``kind`` and ``name``.

Discovery never imports anything: entry points are read from package metadata and local files
are scanned with ``ast``. A plugin is imported only when it is used (or checked by
``xlbench plugins``); one that fails to import is reported and the others keep working.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from xlbench.errors import PluginError

GROUPS = {"encoder": "xlbench.encoders", "sampler": "xlbench.samplers", "dataset": "xlbench.datasets",
          "corpus": "xlbench.corpora", "executor": "xlbench.executors", "reporter": "xlbench.reporters"}


@dataclass
class PluginSpec:
    kind: str
    name: str
    source: str  # where it comes from, for people: "xlbench (built-in)", "package foo", "plugins/x.py"
    target: str  # "module:attr" for entry points, "path::Class" for local files
    local: bool = False


@dataclass
class PluginStatus:
    spec: PluginSpec
    ok: bool
    message: str = ""


def _entry_point_specs() -> list[PluginSpec]:
    specs = []
    for kind, group in GROUPS.items():
        for ep in entry_points(group=group):
            dist = getattr(ep.dist, "name", None) or "unknown package"
            source = "xlbench (built-in)" if dist == "xlbench" else f"package {dist}"
            specs.append(PluginSpec(kind, ep.name, source, ep.value))
    return specs


def _class_attrs(node: ast.ClassDef) -> dict[str, str]:
    attrs = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            key, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            key, value = stmt.target.id, stmt.value
        else:
            continue
        if key in ("kind", "name") and isinstance(value, ast.Constant) and isinstance(value.value, str):
            attrs[key] = value.value
    return attrs


def scan_folder(folder: Path) -> tuple[list[PluginSpec], list[PluginStatus]]:
    """Plugin classes defined in ``folder/*.py`` (without importing), and files that cannot be read."""
    specs: list[PluginSpec] = []
    broken: list[PluginStatus] = []
    if not folder.is_dir():
        return specs, broken
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError) as exc:
            spec = PluginSpec("?", path.stem, str(path), str(path), local=True)
            broken.append(PluginStatus(spec, False, f"cannot be parsed: {exc}"))
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                attrs = _class_attrs(node)
                if "kind" in attrs and "name" in attrs:
                    specs.append(PluginSpec(attrs["kind"], attrs["name"], str(path), f"{path}::{node.name}", local=True))
    return specs, broken


class Registry:
    """Every plugin of every kind, discovered from entry points and the local plugins folder."""

    def __init__(self, plugins_dir: Path | None = None) -> None:
        self.plugins_dir = plugins_dir
        self._specs = _entry_point_specs()
        self.broken: list[PluginStatus] = []
        if plugins_dir is not None:
            local, self.broken = scan_folder(plugins_dir)
            self._specs += local
        self._loaded: dict[tuple[str, str], type] = {}

    def specs(self, kind: str | None = None) -> list[PluginSpec]:
        return [s for s in self._specs if kind is None or s.kind == kind]

    def names(self, kind: str) -> list[str]:
        return sorted({s.name for s in self.specs(kind)})

    def find(self, kind: str, name: str) -> PluginSpec:
        matches = [s for s in self.specs(kind) if s.name == name]
        if not matches:
            known = self.names(kind)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(known) if known else "none installed"
            raise PluginError(f"no {kind} plugin named {name!r}{hint} (available: {listing})")
        if len(matches) > 1:
            where = " and ".join(s.source for s in matches)
            raise PluginError(f"{kind} plugin name {name!r} is defined twice ({where}); rename one")
        return matches[0]

    def load(self, kind: str, name: str) -> type:
        """Import and return the plugin class, checking its ``kind`` and ``name``."""
        key = (kind, name)
        if key in self._loaded:
            return self._loaded[key]
        spec = self.find(kind, name)
        cls = _import(spec)
        if getattr(cls, "kind", None) != kind or getattr(cls, "name", None) != name:
            raise PluginError(
                f"plugin {spec.target} declares kind={getattr(cls, 'kind', None)!r} name={getattr(cls, 'name', None)!r}, "
                f"but is registered as {kind} {name!r}"
            )
        self._loaded[key] = cls
        return cls

    def check_all(self) -> list[PluginStatus]:
        """Import every plugin, reporting failures instead of raising (for ``xlbench plugins``)."""
        statuses = list(self.broken)
        seen: dict[tuple[str, str], PluginSpec] = {}
        for spec in self._specs:
            key = (spec.kind, spec.name)
            if key in seen:
                statuses.append(PluginStatus(spec, False, f"duplicate name: also defined by {seen[key].source}"))
                continue
            seen[key] = spec
            try:
                self.load(spec.kind, spec.name)
                statuses.append(PluginStatus(spec, True))
            except PluginError as exc:
                statuses.append(PluginStatus(spec, False, str(exc)))
        return statuses


def _import(spec: PluginSpec) -> type:
    try:
        if not spec.local:
            module_name, _, attr = spec.target.partition(":")
            obj = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        file, _, class_name = spec.target.partition("::")
        module_name = f"xlbench_local_plugins.{Path(file).stem}"
        module = sys.modules.get(module_name)
        if module is None:
            mod_spec = importlib.util.spec_from_file_location(module_name, file)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[module_name] = module
            try:
                mod_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
        return getattr(module, class_name)
    except Exception as exc:
        raise PluginError(f"{spec.kind} plugin {spec.name!r} from {spec.source} failed to import: {type(exc).__name__}: {exc}") from exc


def resolve_sampler(config, registry: Registry) -> type:
    """Load the sampler plugin, validate its options and write the defaults into the config, so
    the stored run says exactly which options it ran with."""
    from xlbench.config import SamplerSection
    from xlbench.core.samplers.base import validate_options

    cls = registry.load("sampler", config.sampler.name)
    if getattr(cls, "options", None) is not None:
        config.sampler = SamplerSection.model_validate({"name": config.sampler.name,
                                                        **validate_options(cls, config.sampler.options())})
    return cls
