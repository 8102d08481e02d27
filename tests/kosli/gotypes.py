"""Decoding an answer the way Go's ``encoding/json.Unmarshal`` decodes it into the CLI's typed structs.

The CLI decodes many answers into structs (``getSnapshot.go`` ``Snapshot``, ``diffSnapshots.go``
``DiffSnapshotsResponse``...). ``Unmarshal`` fails the whole answer — the command prints the error and
exits — when one value has the wrong JSON type: a string where the field is ``int``, a number with a
fraction (or written ``1.0``) into an ``int64``, an object where it wants a slice. ``null`` is accepted
anywhere (the field keeps its zero value). An object key matches a field by its json tag exactly, else
case-insensitively (a field without a tag is matched by its Go name, ignoring case); other keys are ignored.

A spec is one of ``str``, ``bool``, ``int`` (any Go integer), ``float`` (float32/float64), ``ANY``
(``interface{}``), ``[spec]`` (a slice), ``MapOf(spec)`` (``map[string]T``) or ``{"tag": spec}`` (a struct).
"""

from dataclasses import dataclass

ANY = object()


@dataclass(frozen=True)
class MapOf:
    value: object


def go_unmarshal(value, spec, where: str = "$") -> None:
    """Raise AssertionError naming the path where Go's Unmarshal would fail."""
    if value is None or spec is ANY:
        return
    if spec is str:
        assert isinstance(value, str), f"{where}: Go wants a string, got {value!r}"
    elif spec is bool:
        assert isinstance(value, bool), f"{where}: Go wants a bool, got {value!r}"
    elif spec is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: Go wants an integer, got {value!r}"
    elif spec is float:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), \
            f"{where}: Go wants a number, got {value!r}"
    elif isinstance(spec, list):
        assert isinstance(value, list), f"{where}: Go wants an array, got {type(value).__name__}"
        for index, item in enumerate(value):
            go_unmarshal(item, spec[0], f"{where}[{index}]")
    elif isinstance(spec, MapOf):
        assert isinstance(value, dict), f"{where}: Go wants an object, got {type(value).__name__}"
        for key, item in value.items():
            go_unmarshal(item, spec.value, f"{where}.{key}")
    elif isinstance(spec, dict):
        assert isinstance(value, dict), f"{where}: Go wants an object, got {type(value).__name__}"
        for key, item in value.items():
            field = key if key in spec else next((tag for tag in spec if tag.lower() == key.lower()), None)
            if field is not None:
                go_unmarshal(item, spec[field], f"{where}.{key}")
    else:  # pragma: no cover - a mistake in a spec
        raise TypeError(f"unknown spec {spec!r}")


def go_field(value: dict, tag: str):
    """The value Go's Unmarshal puts in the field tagged ``tag`` (exact key first, else ignoring case)."""
    if tag in value:
        return value[tag]
    return next((item for key, item in value.items() if key.lower() == tag.lower()), None)
