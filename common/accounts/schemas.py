"""Request and response models of the accounts API: sign up, log in, tokens, users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from common.platform.api_types import (
    EMAIL_PATTERN,
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    NO_NUL,
    StrictModel,
)


class SignupRequest(StrictModel):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320, examples=["ada@example.com"])
    password: str = Field(
        min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS, pattern=NO_NUL
    )
    name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)


class LoginRequest(StrictModel):
    email: str = Field(max_length=320, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS, pattern=NO_NUL)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str | None = None
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class UserOut(BaseModel):
    id: uuid.UUID
    object: Literal["user"] = "user"
    email: str | None = Field(description="None for guests")
    name: str | None
    role: str
    created_at: datetime


class SignupResponse(TokenResponse):
    user: UserOut
