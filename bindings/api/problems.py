"""Errors under /api/ as RFC 9457 problems (`application/problem+json`: type, title, status,
detail), whoever raised them: the views (HttpError, Http404), ninja's validation, ninja's own 405s
and root 404s, unknown paths, and crashes (a 500 without details; the traceback goes to the log).

`ProblemAPI` makes the OpenAPI document say so: every operation may answer 400/401/404/405 with a
Problem body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import HttpError, ValidationError

# Named for the package, not this module: the API's log lines keep the logger name they had.
logger = logging.getLogger("bindings.api")

PROBLEM_TYPE = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}


def problem(status: int, title: str, detail: str = "", **extra: Any) -> JsonResponse:
    """An RFC 9457 problem response; `type` stays about:blank (the status says it all)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail or title}
    body.update(extra)
    response = JsonResponse(body, status=status, content_type=PROBLEM_TYPE)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="binding-health"'
    return response


class Problem(Schema):
    """RFC 9457 problem details."""

    type: str = Field(..., examples=["about:blank"])
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors (400 only).")


# The error responses every operation documents (401/405 are added to all by ProblemAPI).
ERRORS = {400: Problem, 401: Problem, 403: Problem, 404: Problem}


class ProblemAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document says what `as_problem` makes true: errors are
    `application/problem+json`, every operation may answer 401/405, and the fix is also YAML."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for item in schema["paths"].values():
            for operation in item.values():
                # ninja keys responses by int; JSON turns them into strings anyway.
                responses = {str(k): v for k, v in operation.get("responses", {}).items()}
                operation["responses"] = responses
                for code in ("400", "401", "404", "405"):
                    responses.setdefault(code, {"description": TITLES[int(code)]})
                for code, response in responses.items():
                    if code.startswith(("4", "5")):
                        response["content"] = {PROBLEM_TYPE: {"schema": problem_ref}}
                if operation.get("operationId") == "binding_fix":
                    responses["200"]["content"]["application/yaml"] = {
                        "schema": {"description": "The fixed TargetGroupBinding manifest (YAML)."}
                    }
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        return schema


def read_only_document(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The OpenAPI document answers GET and HEAD; ninja's own view would answer any method."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = problem(405, "Method Not Allowed", f"{request.method} is not allowed here.")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


def install_handlers(api: NinjaAPI) -> None:
    """Answer every exception a view or ninja raises with a problem."""

    @api.exception_handler(ValidationError)
    def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "Invalid request."
        return problem(400, "Bad Request", detail, errors=errors)

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        status = exc.status_code
        return problem(status, TITLES.get(status, "Error"), str(exc))

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem(404, "Not Found", str(exc) or "No such resource.")

    @api.exception_handler(Exception)
    def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        # The traceback goes to the log (no request headers, so no token); the client gets no details.
        logger.exception("API error on %s %s", request.method, request.path)
        return problem(500, "Internal Server Error", "The server failed to answer; see its log.")


def as_problem(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn the few error responses ninja builds itself (405, its root 404) into problems."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return problem(404, "Not Found", "No API endpoint at this path.")
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(PROBLEM_TYPE):
            replaced = problem(response.status_code, TITLES.get(response.status_code, "Error"))
            if response.has_header("Allow"):
                replaced["Allow"] = response["Allow"]
            return replaced
        return response

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]  # ninja checks CSRF for sessions
    return wrapper


def unknown_api_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under /api/: a 404 problem, not the HTML 404 page."""
    return problem(404, "Not Found", "No API endpoint at this path.")


unknown_api_path.csrf_exempt = True  # type: ignore[attr-defined]
