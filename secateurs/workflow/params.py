"""Rule params one setting at a time, so that a dry run says which settings changed.

Snakemake reruns a job whose params changed and says why by printing the params that
differ, value by value, without their names. A rule that takes its config section as one
dict param therefore printed the whole section twice, before and after, to report one
changed learning rate. Spread into one param per setting whose value names its key,
`('learning_rate', 0.0005)`, the same reason reads as a short list of the changed keys.

`tracked(...)` builds those params in a rule (as `**tracked(settings=...)`); the rule's
script gets the sections back, nested as given, from `settings_of(snakemake.params)`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

PREFIX = "setting__"


def flat_settings(settings: Mapping, prefix: str = "", levels: int | None = None
                  ) -> dict[str, Any]:
    """{"lora.r": 16, ...}: nested sections spread into dotted keys, `levels` deep (None:
    all the way). A map whose keys are not all identifiers (subset weights, source names)
    stays one value, so every dotted key splits back unambiguously."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if levels != 1 and isinstance(value, Mapping) and value and all(
                isinstance(k, str) and k.isidentifier() for k in value):
            flat.update(flat_settings(value, path + ".", None if levels is None else levels - 1))
        else:
            flat[path] = value
    return flat


def nested_settings(flat: Iterable[tuple[str, Any]]) -> dict:
    """The inverse of `flat_settings`."""
    out: dict = {}
    for path, value in flat:
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _check_sections(sections: Mapping) -> None:
    bad = [name for name in sections if not name.isidentifier()]
    if bad:
        raise ValueError(f"rule param sections must be identifiers, got {bad}")


def tracked(**sections: Any) -> dict[str, tuple[str, Any]]:
    """Rule params for `sections`: one per setting, valued (dotted key, value)."""
    _check_sections(sections)
    return {PREFIX + key.replace(".", "__"): (key, value)
            for key, value in flat_settings(sections).items()}


def tracked_per(wildcard: str, values: Iterable[str],
                **sections: Callable[[str], Any]) -> dict[str, Callable]:
    """Like `tracked` for settings that depend on a wildcard (`{source}`): each section is
    a function of the wildcard's value, and `values` are the values the rule can take.
    Sections spread one level only (a source's `subsets` map stays one value, whatever its
    keys), and every value must give the same keys, or the params would not name the same
    settings for every job."""
    _check_sections(sections)

    def flat(value: str) -> dict[str, Any]:
        return flat_settings({name: get(value) for name, get in sections.items()}, levels=2)

    keys: list[str] | None = None
    for value in values:
        these = sorted(flat(value))
        if keys is not None and these != keys:
            raise ValueError(f"settings of {wildcard}={value!r} have keys {these}, others "
                             f"{keys}: a rule's params must name the same settings for every job")
        keys = these

    def param(key: str) -> Callable:
        def value_of(wildcards) -> tuple[str, Any]:
            return key, flat(wildcards[wildcard])[key]
        return value_of
    return {PREFIX + key.replace(".", "__"): param(key) for key in keys or []}


def settings_of(params) -> dict:
    """The sections a rule gave `tracked`/`tracked_per`, from its Snakemake params."""
    return nested_settings(value for name, value in params.items() if name.startswith(PREFIX))
