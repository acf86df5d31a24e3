"""部件标识码: the 16-digit component identifier of GB/T 30428.2 (CJ/T 214).

Layout: 6-digit county-level admin code (GB/T 2260) + 2-digit 大类 + 2-digit 小类 +
6-digit serial. Example: 3205080101000001 = 上水井盖 in 姑苏区. Serial allocation needs the
database (a counter per 10-digit prefix (admin + 小类)) and lives in geoapi.storage; this module only forms
and checks codes.
"""

from __future__ import annotations

import re

from layers.spec import LayerSpec

CODE_RE = re.compile(r"^\d{16}$")
SERIAL_MAX = 999_999


def code_prefix(layer: LayerSpec, admin_code: str, props: dict) -> str:
    """The 10 digits before the serial: admin (6) + 小类 (4, which begins with the 2-digit 大类)."""
    if layer.identifier is None:
        raise ValueError(f"layer {layer.id} has no 部件标识码")
    if not re.fullmatch(r"\d{6}", admin_code or ""):
        raise ValueError(f"admin code must be 6 digits, got {admin_code!r}")
    return admin_code + layer.identifier.subclass_for(props)


def format_code(prefix: str, serial: int) -> str:
    if not re.fullmatch(r"\d{10}", prefix):
        raise ValueError(f"prefix must be 10 digits (admin + 小类), got {prefix!r}")
    if not 1 <= serial <= SERIAL_MAX:
        raise ValueError(f"serial {serial} outside 1–{SERIAL_MAX} for prefix {prefix}")
    return f"{prefix}{serial:06d}"


def check_code(layer: LayerSpec, code: str, props: dict) -> str | None:
    """None when ``code`` is a well-formed 部件标识码 for this layer, else the reason."""
    if not CODE_RE.match(code):
        return f"部件标识码 must be 16 digits, got {code!r}"
    ident = layer.identifier
    if ident is None:
        return None
    if code[6:8] != ident.class_code:
        return f"大类 {code[6:8]} in {code} should be {ident.class_code} for {layer.title}"
    admin = props.get("admin_code")
    if admin and code[:6] != admin:
        return f"行政区划 {code[:6]} in {code} does not match admin_code {admin}"
    # Known subclass value: exactly its 小类; otherwise any 小类 the layer can produce.
    if ident.subclass_field and props.get(ident.subclass_field) in ident.subclass_map:
        allowed = {ident.subclass_for(props)}
    else:
        allowed = set(ident.subclass_map.values()) | ({ident.subclass} if ident.subclass else set())
    if code[6:10] not in allowed:
        return f"小类 {code[6:10]} in {code} does not match {layer.title} (expected {sorted(allowed)})"
    if code[10:] == "000000":
        return f"serial 000000 in {code} is not allowed"
    return None
