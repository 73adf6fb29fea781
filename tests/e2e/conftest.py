from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import HttpReceiver, MailBox


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as r:
        yield r


@pytest.fixture
def mailbox() -> Iterator[MailBox]:
    with MailBox() as m:
        yield m


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "bud"
