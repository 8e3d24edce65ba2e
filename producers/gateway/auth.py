"""Signed bearer tokens for passengers, drivers and operators.

A token is ``base64url(claims JSON) "." base64url(HMAC-SHA256(secret, claims))``:
short, stateless and checkable by every gateway and driver-app replica that shares
``DRT_AUTH__TOKEN_SECRET``. Claims name the role, the subject (a pseudonymous
passenger reference, a driver id or an operator name), the vehicle a driver logged
in to, and the expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status


class Role(StrEnum):
    PASSENGER = "passenger"
    DRIVER = "driver"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: the verified claims of a token."""

    role: Role
    subject: str
    vehicle_id: str | None = None
    expires_at: int = 0


class TokenError(ValueError):
    """A token that is malformed, wrongly signed or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies tokens with one secret; ``now`` is passed in (seconds)."""

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if not secret:
            raise ValueError("the token secret must not be empty")
        self._secret = secret
        self.ttl_s = ttl_s

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def issue(self, role: Role, subject: str, now: float, vehicle_id: str | None = None) -> str:
        claims = {"role": role.value, "sub": subject, "exp": int(now) + self.ttl_s}
        if vehicle_id is not None:
            claims["vid"] = vehicle_id
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, now: float) -> Principal:
        body, dot, mac = token.partition(".")
        if not dot or not hmac.compare_digest(mac, self._mac(body)):
            raise TokenError("invalid token signature")
        try:
            claims = json.loads(_unb64(body))
            principal = Principal(
                role=Role(claims["role"]),
                subject=str(claims["sub"]),
                vehicle_id=claims.get("vid"),
                expires_at=int(claims["exp"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("malformed token") from exc
        if principal.expires_at <= now:
            raise TokenError("token expired")
        return principal


def token_of(request: Request) -> str | None:
    """The bearer token of a request: ``Authorization: Bearer`` or ``?access_token=``.

    The query parameter exists for ``EventSource``, which cannot set headers.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.query_params.get("access_token") or None


def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401. The app keeps its signer in ``state``."""
    signer: TokenSigner = request.app.state.signer
    token = token_of(request)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return signer.verify(token, request.app.state.clock())
    except TokenError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


Caller = Annotated[Principal, Depends(authenticate)]
