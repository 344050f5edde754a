"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with its status codes.

Clients written for OpenAI (its own SDK first) read this body to raise typed exceptions, so every
failure the server reports, whether from validation, a limit or the model, leaves through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vlmkit.errors import VlmkitError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    503: "server_overloaded",
    504: "timeout_error",
}


DEFAULT_CODES = {
    400: "invalid_value",
    401: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    500: "server_error",
}


class ApiError(Exception):
    """A request the server refuses or cannot finish; becomes a JSON error response. Every error carries a
    machine-readable ``code``: the one given, else the status's default (``invalid_value`` for a 400), so a
    client can branch on it without parsing the message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code or DEFAULT_CODES.get(status)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.param, self.code)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


_UNION_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict"})


def _location(loc: Sequence[Any]) -> str | None:
    """``("body", "messages", 0, "content")`` -> ``"messages[0].content"``; OpenAI names params so.

    Pydantic also names the member of a union it tried (``str``, ``function-after[...]``); those go.
    """
    parts = [p for p in loc if p != "body" and not (isinstance(p, str) and (not p.isidentifier() or p in _UNION_TAGS))]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def validation_error(exc: RequestValidationError) -> ApiError:
    """Pydantic's error list as one line about its first problem (status 400, as OpenAI answers)."""
    errors = exc.errors()
    # A union's members each report an error; one from a validator of ours ("value_error") says most.
    errors = [e for e in errors if e.get("type") == "value_error"] or errors
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return ApiError(400, f"request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})")
    param = _location(first.get("loc", ()))
    where = f"'{param}': " if param else ""
    return ApiError(400, f"{where}{first.get('msg', 'invalid value')}", param=param, code="invalid_value")


def install_handlers(app: FastAPI) -> None:
    """Route validation errors, HTTP errors, ``ApiError`` and ``VlmkitError`` to OpenAI-shaped bodies."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(ApiError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {})))

    async def on_input(request: Request, exc: Exception) -> JSONResponse:
        return error_response(ApiError(400, str(exc)))

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        # Details stay in the server log (uvicorn prints the traceback); the client learns only that it failed.
        return error_response(ApiError(500, f"internal server error ({type(exc).__name__})", code="server_error"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(VlmkitError, on_input)
    app.add_exception_handler(Exception, on_bug)
