from __future__ import annotations

import pytest

from support import POLICIES


@pytest.fixture(scope="session")
def bundled_policies():
    from plugin.policy import load_policies

    return load_policies(POLICIES)
