"""Fixtures of the multi-license tests: the app's client secret, an encryption key, the accounts server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from tests.fakes.accounts import FakeAccounts
from tests.fakes.livechat import FakeLiveChat

SECRET = "client-secret-3e4f5a6b"  # LIVECHAT_CLIENT_SECRET
KEY = Fernet.generate_key().decode()  # CHATHOOKS_SECRET_KEY


@pytest.fixture
def accounts(lc: FakeLiveChat) -> Iterator[FakeAccounts]:
    """The accounts server, its tokens granted at the test module's ``lc``."""
    with FakeAccounts(lc.client_id, SECRET, livechat=lc) as server:
        yield server
