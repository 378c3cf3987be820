"""Evaluation sets, training corpora and what their loaders share."""

from __future__ import annotations

from xlbench.errors import ConfigError


def select_languages(found: dict, languages: list[str] | None, owner: object, what: str = "language") -> dict:
    """``found`` (language → anything) restricted to ``languages`` in that order (all of it when
    None); a language it lacks is one ConfigError naming ``owner`` and listing what it has."""
    if not languages:
        return found
    missing = [lang for lang in languages if lang not in found]
    if missing:
        raise ConfigError(f"{owner} has no {what} {', '.join(missing)}; it has {', '.join(sorted(found))}")
    return {lang: found[lang] for lang in languages}
