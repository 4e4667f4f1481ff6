"""Reader profiles: the background questions asked at sign-up, validated, stored and hashed."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from common.platform.models import ReaderProfile, utcnow

SoftwareLevel = Literal["beginner", "intermediate", "advanced"]
# none: never worked with robots; some: robotics projects, little or no ROS 2; ros2: uses ROS 2.
RoboticsExperience = Literal["none", "some", "ros2"]
Hardware = Literal["none", "rtx_workstation", "jetson", "real_robot"]
PreferredLanguage = Literal["en", "ur"]

MAX_LANGUAGES = 10
MAX_LANGUAGE_CHARS = 32
MAX_GOAL_CHARS = 500
# Letters, digits and the marks real language names use: C++, C#, Node.js, Objective-C.
_LANGUAGE_NAME = re.compile(r"^[^\W_][\w+#. -]*$")
# No repeats, and "none" only alone: one item, or no "none" among several.
_HARDWARE_RULES: dict[str, Any] = {
    "uniqueItems": True,
    "anyOf": [{"maxItems": 1}, {"items": {"not": {"const": "none"}}}],
}
# Bump when the guidance built from a profile changes, so cached personalized results expire.
_HASH_VERSION = 1


class ReaderProfileIn(BaseModel):
    """The whole profile (PUT replaces it): every field optional, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    software_level: SoftwareLevel | None = Field(default=None, examples=["beginner"])
    programming_languages: list[str] = Field(
        default_factory=list,
        max_length=MAX_LANGUAGES,
        examples=[["Python", "C++"]],
        # Repeats are refused ignoring case, which uniqueItems cannot say (exact equality).
        json_schema_extra={
            "uniqueItems": True,
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_LANGUAGE_CHARS,
                "pattern": _LANGUAGE_NAME.pattern,
            },
        },
    )
    robotics_experience: RoboticsExperience | None = Field(
        default=None,
        description="none: new to robotics; some: robotics without (much) ROS 2; ros2: uses ROS 2",
    )
    hardware: list[Hardware] = Field(
        default_factory=list,
        max_length=4,
        description='What the reader can run on; "none" stands alone',
        examples=[["rtx_workstation", "jetson"]],
        json_schema_extra=_HARDWARE_RULES,
    )
    learning_goal: str | None = Field(
        default=None, max_length=MAX_GOAL_CHARS, pattern=r"^[^\x00]*$"
    )
    preferred_language: PreferredLanguage = "en"

    @field_validator("programming_languages")
    @classmethod
    def _check_languages(cls, names: list[str]) -> list[str]:
        cleaned = [" ".join(name.split()) for name in names]
        for name in cleaned:
            if not 1 <= len(name) <= MAX_LANGUAGE_CHARS or not _LANGUAGE_NAME.match(name):
                raise ValueError(
                    f"each language is a name of 1-{MAX_LANGUAGE_CHARS} letters, digits or "
                    f"+#.- (got {name[:40]!r})"
                )
        if len({name.casefold() for name in cleaned}) != len(cleaned):
            raise ValueError("programming languages must not repeat")
        return cleaned

    @field_validator("hardware")
    @classmethod
    def _check_hardware(cls, items: list[Hardware]) -> list[Hardware]:
        if len(set(items)) != len(items):
            raise ValueError("hardware must not repeat")
        if "none" in items and len(items) > 1:
            raise ValueError('"none" cannot be combined with other hardware')
        return items

    @field_validator("learning_goal")
    @classmethod
    def _one_line_goal(cls, goal: str | None) -> str | None:
        # The goal is quoted into prompts: one line, and empty means no goal.
        if goal is None:
            return None
        return " ".join(goal.split()) or None


class ReaderProfileOut(ReaderProfileIn):
    """The profile as the API shows it; `exists` is false until the reader saves one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    object: Literal["reader_profile"] = "reader_profile"
    exists: bool
    updated_at: datetime | None


def profile_input(row: ReaderProfile) -> ReaderProfileIn:
    """A saved profile row as the profile a job is answered with."""
    return ReaderProfileIn.model_validate(
        {
            "software_level": row.software_level,
            "programming_languages": list(row.programming_languages or []),
            "robotics_experience": row.robotics_experience,
            "hardware": list(row.hardware or []),
            "learning_goal": row.learning_goal,
            "preferred_language": row.preferred_language or "en",
        }
    )


def get_profile(session: Session, user_id: uuid.UUID) -> ReaderProfileIn | None:
    """The user's saved profile, or None when they never saved one."""
    row = session.get(ReaderProfile, user_id)
    return profile_input(row) if row is not None else None


def show_profile(session: Session, user_id: uuid.UUID) -> ReaderProfileOut:
    """The profile as GET shows it: the saved one, or all defaults with `exists: false`."""
    row = session.get(ReaderProfile, user_id)
    if row is None:
        return ReaderProfileOut(exists=False, updated_at=None)
    return ReaderProfileOut(
        **profile_input(row).model_dump(), exists=True, updated_at=row.updated_at
    )


def save_profile(session: Session, user_id: uuid.UUID, data: ReaderProfileIn) -> ReaderProfileOut:
    """Create or replace the user's whole profile (the caller commits)."""
    row = session.get(ReaderProfile, user_id)
    if row is None:
        row = ReaderProfile(user_id=user_id)
        session.add(row)
    row.software_level = data.software_level
    row.programming_languages = list(data.programming_languages)
    row.robotics_experience = data.robotics_experience
    row.hardware = list(data.hardware)
    row.learning_goal = data.learning_goal
    row.preferred_language = data.preferred_language
    row.updated_at = utcnow()
    session.flush()
    return ReaderProfileOut(**data.model_dump(), exists=True, updated_at=row.updated_at)


def profile_hash(profile: ReaderProfileIn | None) -> str:
    """A stable sha256 of what changes answers; no profile hashes like the empty profile."""
    value = profile or ReaderProfileIn()
    # Guidance lists hardware in a fixed order, so its order in the profile does not matter.
    payload = {
        "v": _HASH_VERSION,
        "software_level": value.software_level,
        "programming_languages": value.programming_languages,
        "robotics_experience": value.robotics_experience,
        "hardware": sorted(value.hardware),
        "learning_goal": value.learning_goal,
        "preferred_language": value.preferred_language,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
