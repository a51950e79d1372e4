"""`GET /whoami`: who the credentials belong to."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from bindings.api.problems import ERRORS
from bindings.api.schemas import WhoAmI

router = Router()


@router.get("/whoami", response={200: WhoAmI, **ERRORS}, operation_id="whoami")
def whoami(request: HttpRequest) -> dict[str, Any]:
    """Who the credentials belong to. Authentication and nothing else: a client's credential
    check, and the floor `benchmarks/bench_api.py` measures the list endpoint against."""
    api_token = getattr(request, "api_token", None)
    return {
        "username": request.user.get_username(),
        "scope": str(api_token.scope) if api_token is not None else "session",
    }
