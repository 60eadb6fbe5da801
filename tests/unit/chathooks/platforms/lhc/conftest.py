"""FakeLhc for the LHC client and API tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.lhc import FakeLhc

CHAT = {"id": 5388, "status": 1, "iwh_id": 0, "nick": "Marie Curie", "email": "marie@example.org"}
MESSAGES = [
    {"id": 120040, "msg": "Hi, I want a [b]refund[/b]", "user_id": 0, "time": 1766399501},
    {"id": 120041, "msg": "Offer it", "user_id": 9, "time": 1766399510, "meta_msg": '{"content":{"whisper":true}}'},
    {"id": 120042, "msg": "We apologise for the inconvenience", "user_id": 7, "time": 1766399520},
]


@pytest.fixture
def lhc() -> Iterator[FakeLhc]:
    with FakeLhc() as fake:
        fake.seed_chat(CHAT, MESSAGES, subjects=[3])
        yield fake
