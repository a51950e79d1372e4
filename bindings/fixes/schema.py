"""The TargetGroupBinding v1beta1 CRD schema, and validation of generated manifests against it.

The schema lives in `bindings/crds/targetgroupbinding-v1beta1.schema.json` (written from the
controller's field table, docs/facts.md §1.2). It is stricter than the API server in one way on
purpose: unknown fields are rejected instead of silently pruned, so a generator mistake shows up
here rather than as a field that quietly never reaches the cluster.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "crds" / "targetgroupbinding-v1beta1.schema.json"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The CRD schema as a dict (read once)."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@lru_cache(maxsize=1)
def _validator() -> Any:
    # Imported lazily: jsonschema is only needed when a manifest is actually validated.
    import jsonschema

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """A compiled (Rust) validator for the yes/no question, or None without jsonschema_rs.

    jsonschema's pure-Python walk costs ~0.7 ms per manifest, a third of a fix; every fix of a
    live poll is validated, and nearly all are valid. Messages still come from jsonschema, so
    the texts of the (rare) invalid ones do not depend on which library answered first.
    """
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(load_schema())


def validate_manifest(obj: Any) -> list[str]:
    """Every schema violation of a TGB manifest, as "path: message" strings (empty when valid)."""
    fast = _fast_validator()
    if fast is not None:
        try:
            if fast.is_valid(obj):
                return []
        except (ValueError, TypeError, OverflowError):
            pass  # not JSON-shaped enough for the compiled validator (e.g. a huge int): ask jsonschema
    errors = []
    for error in sorted(_validator().iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        errors.append(f"{path}: {error.message}")
    return errors
