"""Captions, marks and sentences that several tabs show, worded once.

Example:
    >>> caption({"rank": 3, "match": True, "pid": 12, "cam": 4, "distance": 0.8312})
    '#3 ✓ id=12 · cam 4 · dist 0.831'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis.retrieval import SearchResult
from analysis.session import MODALITIES, Query, Session
from app.media import Media

MARKS = {True: "✓", False: "✗"}
MODALITY_CHOICES = list(MODALITIES[::-1])  # infrared first: the paper's headline direction
RANKED_BY = (
    "Ranked by the Euclidean distance of the retrieval features (`dist`, smaller = "
    "closer), as the evaluation protocols rank. Frames: green ✓ same identity as the "
    "query, red ✗ another identity."
)


def caption(row: Mapping[str, Any]) -> str:
    """``#3 ✓ id=12 · cam 4 · dist 0.831`` for a ranking row (no mark when unknown)."""
    mark = MARKS.get(row["match"]) if row["match"] is not None else None
    return (
        f"#{row['rank']}{' ' + mark if mark else ''} id={row['pid']} · cam {row['cam']}"
        f" · dist {row['distance']:.3f}"
    )


def gallery(media: Media, result: SearchResult) -> list[tuple[str, str]]:
    """``(thumbnail, caption)`` per ranked image, the thumbnail framed by its mark."""
    return [
        (
            media.thumbnail(row["path"], None if row["match"] is None else bool(row["match"])),
            caption(row),
        )
        for _, row in result.ranking.iterrows()
    ]


def query_line(session: Session, query: Query) -> str:
    """What the query is (and any note or warning about it), in Markdown."""
    if query.record is None:
        line = (
            f"**Query:** an uploaded {query.modality} image, not a test image: its "
            "identity is unknown, so no right/wrong marks and no AP"
        )
    else:
        r = query.record
        line = (
            f"**Query:** test image `{session.relative(r.path)}` · id={r.pid} · cam {r.cam}"
            f" · {query.modality}" + (f"  \n_{query.note}_" if query.note else "")
        )
    return line + (f"  \n**⚠ {query.warning}**" if query.warning else "")


def result_line(name: str, query: Query, result: SearchResult) -> str:
    """``CycleTrans: AP 0.812 · first true match at #3`` (or why there is no AP)."""
    if query.record is None:
        return f"**{name}:** no AP (identity unknown)"
    if result.ap is None:
        return f"**{name}:** no AP: no true match in the gallery, because {result.no_match}"
    line = f"**{name}:** AP {result.ap:.3f} · first true match at #{result.first_position}"
    if result.first_position != result.first_hit:
        line += (
            f" of the list, CMC rank {result.first_hit} (the SYSU-MM01 protocol counts "
            "each identity once)"
        )
    return line


def percent(table: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """``table`` with its numeric columns rounded for display."""
    return table.round(digits)
