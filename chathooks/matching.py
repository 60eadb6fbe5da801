"""Words and phrases in chat text, matched the one way tagging and triggers both use."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Chat messages are short; a much longer text is an attack or an accident, and a user's
# pattern with nested quantifiers can backtrack for seconds on it. Only this much is matched.
MAX_MATCH_CHARS = 20_000


def words(phrases: Iterable[str]) -> re.Pattern[str]:
    """Whole words or phrases, case-insensitive: "refund" not in "refunded"; "money back" across any whitespace."""
    alternatives = "|".join(r"\s+".join(map(re.escape, p.split())) for p in phrases)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
