"""`policydesk vip-rotate`: a lost VIP code is replaced; only the new one verifies."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

from integrations.billing import org_ref_for
from integrations.store import open_store
from integrations.vip import issue_vip_code, verify_vip
from support import REPO


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "integrations.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_vip_rotate_replaces_a_lost_code(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    now = dt.datetime(2026, 11, 27, 9, tzinfo=dt.timezone.utc)
    with open_store(url) as store:
        store.put_subscription(org_ref_for(4), plan="pro", started_at=now, commitment_end=now + dt.timedelta(days=183),
                               billing_period="annual", now=now)
        old = issue_vip_code(store, org_ref_for(4), now)
    result = run("vip-rotate", "--organization", "4", "--store", url)
    assert result.returncode == 0, result.stderr
    new = re.search(r"new VIP code for organization 4: (\d+)", result.stdout).group(1)
    assert new != old
    with open_store(url) as store:
        assert verify_vip(store, org_ref_for(4), new)
        assert not verify_vip(store, org_ref_for(4), old)
    assert new.encode() not in (tmp_path / "p.db").read_bytes()


def test_vip_rotate_unknown_organization_is_an_error(tmp_path):
    result = run("vip-rotate", "--organization", "999", "--store", f"sqlite:///{tmp_path / 'p.db'}")
    assert result.returncode == 1
    assert "has no subscription" in result.stderr and "Traceback" not in result.stderr
