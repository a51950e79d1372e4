"""Make collected Kubernetes and AWS payloads storable whatever text they carry.

PostgreSQL text and jsonb cannot hold a NUL character ("\\u0000"): one annotation value or event
message with a NUL would make every sync of its cluster fail, so anyone who may annotate a
TargetGroupBinding could freeze the cluster's results at their last good state. NULs are replaced
(not dropped) so the stored text still shows that something was there.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"


def without_nul(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, scalars) with every NUL in a string replaced."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value
