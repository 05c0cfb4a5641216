"""One error shape for the whole API, and its place in the OpenAPI schema.

Every error answer is ``{"errors": {<key>: [{"code": ..., "message": ...}, ...]}}``:

- ``<key>`` is an input field (nested fields joined with dots, list items by index:
  ``symptoms.0``), ``non_field_errors`` for a rule that spans fields, or ``detail`` for
  an error about the request as a whole (401, 403, 404, 405, 429...);
- ``code`` is stable and machine-readable (DRF's codes such as ``required``,
  ``max_value``, ``not_authenticated``, plus ours such as ``slot_closed``,
  ``client_id_conflict``, ``locked_out``);
- ``message`` is for people, translated by the request's language (Chinese by default,
  English with ``Accept-Language: en``).

Services raise Django's ``ValidationError`` (with codes); this handler turns it into
a 400 — or the exception's ``http_status`` (409 for a refusal by the state of the
world) — so the admin and the API share the services' messages.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from rest_framework import exceptions
from rest_framework.fields import get_error_detail
from rest_framework.views import exception_handler as drf_exception_handler

ERROR_COMPONENT = "ErrorResponse"


def _leaf(node) -> bool:
    return isinstance(node, dict) and set(node) == {"message", "code"}


def _walk(node, path: str, out: dict[str, list[dict]]) -> None:
    if _leaf(node):
        out.setdefault(path or "detail", []).append({"code": node["code"], "message": str(node["message"])})
    elif isinstance(node, dict):
        for key, value in node.items():
            _walk(value, f"{path}.{key}" if path else str(key), out)
    elif isinstance(node, list):
        if node and all(_leaf(item) for item in node):
            for item in node:
                _walk(item, path or "non_field_errors", out)
        else:
            for index, item in enumerate(node):
                _walk(item, f"{path}.{index}" if path else str(index), out)


def flatten_errors(full_details) -> dict[str, list[dict]]:
    """``APIException.get_full_details()`` → ``{key: [{"code", "message"}]}``."""
    out: dict[str, list[dict]] = {}
    _walk(full_details, "", out)
    return out


def _from_django(exc: DjangoValidationError) -> exceptions.ValidationError:
    detail = get_error_detail(exc)
    converted = exceptions.ValidationError(detail)
    converted.status_code = getattr(exc, "http_status", exceptions.ValidationError.status_code)
    return converted


def exception_handler(exc, context):
    """DRF's handler with Django's ValidationError understood and one error shape."""
    if isinstance(exc, DjangoValidationError):
        exc = _from_django(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args[:1]))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = {"errors": flatten_errors(exc.get_full_details())}
    return response


# ---------------------------------------------------------------------------
# OpenAPI
# ---------------------------------------------------------------------------
_ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answer: a list of {code, message} per field, `non_field_errors` or `detail`.",
    "properties": {
        "errors": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["code", "message"],
                },
            },
        }
    },
    "required": ["errors"],
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: declare the error shape once and attach it
    to every operation as its ``4XX`` answer (400 invalid input, 401, 403, 404, 409 a
    refusal such as ``slot_closed``, 429 throttled or ``locked_out``)."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = _ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            operation.setdefault("responses", {}).setdefault(
                "4XX",
                {
                    "description": "Error: see the ErrorResponse schema.",
                    "content": {"application/json": {"schema": ref}},
                },
            )
    return result


# ---------------------------------------------------------------------------
# Django's own 404 and 500 pages, in the API's shape under /api/
# ---------------------------------------------------------------------------
def _api_error(request, status: int, code: str, message) -> JsonResponse:
    return JsonResponse({"errors": {"detail": [{"code": code, "message": str(message)}]}}, status=status)


def not_found(request, exception=None):
    """``handler404``: an unknown URL under ``/api/`` answers like any API 404."""
    if request.path.startswith("/api/"):
        return _api_error(request, 404, "not_found", exceptions.NotFound.default_detail)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """``handler500``: a crash under ``/api/`` still answers JSON (code ``server_error``)."""
    if request.path.startswith("/api/"):
        return _api_error(request, 500, "server_error", _("服务器出错，请稍后再试。"))
    return defaults.server_error(request)
