"""Zammad's API errors, as application_controller/handles_errors.rb renders them."""

from __future__ import annotations

from typing import Any, Mapping


class ApiError(Exception):
    """An error Zammad reports as JSON; ``human`` is ``error_human`` (None: key absent)."""

    status = 500
    #: rendered by the controller itself (``render json: {error: ...}``), not through humanize_error
    direct = False

    def __init__(self, message: str, *, human: str | None | bool = True, headers: Mapping[str, str] | None = None,
                 direct: bool = False):
        super().__init__(message)
        self.direct = direct
        self.message = message
        self.human = message if human is True else (None if human is False else human)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.human if self.human else self.message}
        if self.human:
            data["error_human"] = self.human
        return data


class NotFound(ApiError):  # ActiveRecord::RecordNotFound -> 404
    status = 404


class Unprocessable(ApiError):  # RecordInvalid, StatementInvalid, ArgumentError, UnprocessableEntity -> 422
    status = 422


class NotAuthorized(ApiError):  # Exceptions::NotAuthorized -> 401
    status = 401


class Forbidden(ApiError):  # Exceptions::Forbidden / Pundit::NotAuthorizedError -> 403
    status = 403


class ServerError(ApiError):  # StandardError -> 500
    status = 500


def validation_failed(detail: str) -> Unprocessable:
    """ActiveRecord::RecordInvalid: handles_errors.rb#humanize_error keeps the text after
    ``Validation failed:`` up to the first comma as both ``error`` and ``error_human``."""
    human = detail.split(",")[0].strip()
    return Unprocessable(f"Validation failed: {detail}", human=human)


def statement_invalid(detail: str) -> Unprocessable:
    """ActiveRecord::StatementInvalid (e.g. a deadlock or lock timeout under contention):
    handles_errors.rb maps it to 422 with the database's message and no ``error_human``
    (admins see the message, others an error id)."""
    return Unprocessable(f"ActiveRecord::StatementInvalid: {detail}", human=False)


__all__ = ["ApiError", "NotFound", "Unprocessable", "NotAuthorized", "Forbidden", "ServerError",
           "validation_failed", "statement_invalid"]
