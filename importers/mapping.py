"""Source column names → layer fields (DOMAIN.md §8.2).

A column maps to a field when its name equals, ignoring case and spaces, the field's name,
its 中文 label or one of its aliases (``JCJBH``, ``JGCZ``, ``SZDL`` …), or such a name cut at
the DBF limit of 10 bytes (in GBK or UTF-8, possibly inside a character). An explicit mapping
for the import wins over all of these. Columns that map to nothing are kept in the row's
``extra`` JSON and listed in the report; nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from importers.errors import ImportRefusedError
from layers.spec import LayerSpec

DBF_NAME_BYTES = 10


@dataclass(frozen=True)
class FieldMapping:
    columns: dict[str, str]                        # source column → layer field
    extra: list[str]                               # source columns kept in `extra`
    how: dict[str, str] = field(default_factory=dict)   # source column → "given" | "name" | "alias" | "truncated"
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"columns": self.columns, "extra": self.extra, "how": self.how, "notes": self.notes}


def _norm(name: str) -> str:
    return "".join(name.split()).casefold()


def truncated_forms(name: str) -> set[str]:
    """What a DBF writer leaves of ``name`` after cutting it at 10 bytes."""
    out = set()
    for enc in ("gb18030", "utf-8"):
        try:
            raw = name.encode(enc)
        except UnicodeEncodeError:
            continue
        if len(raw) > DBF_NAME_BYTES:
            cut = raw[:DBF_NAME_BYTES].decode(enc, errors="ignore")
            if cut:
                out.add(_norm(cut))
    return out


def _keys(layer: LayerSpec) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    names = {_norm(f.name): f.name for f in layer.all_fields}
    aliases: dict[str, str] = {}
    truncated: dict[str, set[str]] = {}
    for f in layer.all_fields:
        for key in (f.label, *f.aliases):
            aliases.setdefault(_norm(key), f.name)
        for key in (f.name, f.label, *f.aliases):
            for t in truncated_forms(key):
                truncated.setdefault(t, set()).add(f.name)
    return names, aliases, truncated


def build_mapping(layer: LayerSpec, columns: list[str], explicit: dict[str, str | None] | None = None) -> FieldMapping:
    """Map ``columns`` onto ``layer``; ``explicit`` maps a column to a field, or to None for `extra`."""
    explicit = explicit or {}
    field_names = {f.name for f in layer.all_fields}
    unknown_cols = [c for c in explicit if c not in columns]
    bad_fields = [f for f in explicit.values() if f and f not in field_names]
    if unknown_cols or bad_fields:
        problems = []
        if unknown_cols:
            problems.append(f"columns {unknown_cols} are not in the file (it has {columns})")
        if bad_fields:
            problems.append(f"fields {bad_fields} are not fields of layer {layer.id}")
        raise ImportRefusedError("the field mapping does not fit: " + "; ".join(problems))

    names, aliases, truncated = _keys(layer)
    mapped: dict[str, str] = {}
    how: dict[str, str] = {}
    notes: list[str] = []
    taken: dict[str, str] = {}   # field → column

    def take(col: str, fname: str, why: str) -> None:
        if fname in taken:
            notes.append(f"column {col!r} also matches field {fname!r} (already from {taken[fname]!r}); kept in extra")
            return
        taken[fname], mapped[col], how[col] = col, fname, why

    for col, fname in explicit.items():
        if fname:
            take(col, fname, "given")
    rest = [c for c in columns if c not in explicit]
    # Exact matches first, across all columns, so a truncated look-alike never steals a field.
    for col in rest:
        key = _norm(col)
        if key in names:
            take(col, names[key], "name")
        elif key in aliases:
            take(col, aliases[key], "alias")
    for col in rest:
        if col in mapped:
            continue
        candidates = truncated.get(_norm(col), set()) - set(taken)
        if len(candidates) == 1:
            take(col, candidates.pop(), "truncated")
        elif len(candidates) > 1:
            notes.append(f"column {col!r} is a cut-off name that fits fields {sorted(candidates)}; kept in extra")
    extra = [c for c in columns if c not in mapped]
    return FieldMapping(columns=mapped, extra=extra, how=how, notes=notes)
