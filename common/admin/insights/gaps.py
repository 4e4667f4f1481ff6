"""The report's group tables: the most asked groups of questions, and the coverage gaps."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from common.admin.insights.questions import Question, normalised

TOP_GROUPS = 20
EXAMPLES = 3

# (group id, its members) -> the question that best represents them.
Pick = Callable[[str, list[Question]], str]
# (representative, gap members' job ids) -> the passages of the book that came closest.
Closest = Callable[[str, list[uuid.UUID]], list[dict[str, Any]]]
# A gap group (as reported) -> (finding, suggestion), or None without a model.
Explain = Callable[[dict[str, Any], list[Question]], tuple[str, str] | None]


def by_group(questions: list[Question]) -> dict[str, list[Question]]:
    """Questions keyed by group, in order."""
    groups: dict[str, list[Question]] = defaultdict(list)
    for question in questions:
        groups[question.group].append(question)
    return groups


def examples(members: list[Question], representative: str, limit: int = EXAMPLES) -> list[str]:
    """The most frequent distinct wordings other than the representative's."""
    counts = Counter(normalised(q.message) for q in members)
    first: dict[str, str] = {}
    for q in members:
        first.setdefault(normalised(q.message), q.message)
    skip = normalised(representative)
    ordered = sorted(counts, key=lambda text: (-counts[text], text))
    return [first[text] for text in ordered if text != skip][:limit]


def most_frequent(members: list[Question]) -> str:
    """The wording asked most often (a group without vectors has no centroid)."""
    counts = Counter(normalised(q.message) for q in members)
    best = min(counts, key=lambda text: (-counts[text], text))
    return next(q.message for q in members if normalised(q.message) == best)


def most_asked(
    questions: list[Question], pick: Pick, limit: int = TOP_GROUPS
) -> list[dict[str, Any]]:
    """All questions of the window grouped: the largest groups with their share and rating."""
    current = [q for q in questions if q.current]
    groups = by_group(current)
    ranked = sorted(groups, key=lambda g: (-len(groups[g]), g))[:limit]
    rows = []
    for gid in ranked:
        members = groups[gid]
        representative = pick(gid, members)
        rows.append(
            {
                "id": "q-" + gid[2:],
                "representative": representative,
                "count": len(members),
                "share": round(len(members) / len(current), 4),
                "up": sum(q.up for q in members),
                "down": sum(q.down for q in members),
                "examples": examples(members, representative),
            }
        )
    return rows


def coverage_gaps(
    questions: list[Question],
    pick: Pick,
    closest: Closest,
    explain: Explain,
    limit: int = TOP_GROUPS,
) -> list[dict[str, Any]]:
    """Refused, uncertain and thumbs-down questions grouped, largest first, with the trend."""
    gap_members = by_group([q for q in questions if q.is_gap])
    current = {g: [q for q in m if q.current] for g, m in gap_members.items()}
    ranked = sorted((g for g in current if current[g]), key=lambda g: (-len(current[g]), g))[:limit]
    rows = []
    for gid in ranked:
        members = current[gid]
        representative = pick(gid, members)
        row: dict[str, Any] = {
            "id": "g-" + gid[2:],
            "representative": representative,
            "count": len(members),
            "trend": {
                "previous": len(gap_members[gid]) - len(members),
                "current": len(members),
            },
            "labels": {
                "refused": sum(q.label == "refused" for q in members),
                "uncertain": sum(q.label == "uncertain" for q in members),
                "down": sum(q.down > 0 for q in members),
            },
            "examples": examples(members, representative),
            "closest_passages": closest(representative, [q.id for q in members]),
            "finding": None,
            "suggestion": None,
        }
        explained = explain(row, members)
        if explained is not None:
            row["finding"], row["suggestion"] = explained
        rows.append(row)
    return rows


def members_key(members: list[Question]) -> str:
    """A hash of a group's member set: the cache key of what a model said about it."""
    digest = hashlib.sha256()
    for job_id in sorted(str(q.id) for q in members):
        digest.update(job_id.encode())
    return digest.hexdigest()
