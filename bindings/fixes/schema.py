"""The TargetGroupBinding v1beta1 CRD schema, and validation of generated manifests against it.

The schema lives in `bindings/crds/targetgroupbinding-v1beta1.schema.json` (written from the
controller's field table, nlb-udp-facts §1.2). It is stricter than the API server in one way on
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
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    # Imported lazily: jsonschema is only needed when a manifest is actually validated.
    import jsonschema

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_manifest(obj: Any) -> list[str]:
    """Every schema violation of a TGB manifest, as "path: message" strings (empty when valid)."""
    errors = []
    for error in sorted(_validator().iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        errors.append(f"{path}: {error.message}")
    return errors
