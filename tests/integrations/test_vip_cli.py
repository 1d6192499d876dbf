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


def _subscribe(url: str, plan: str, org: int = 4) -> None:
    now = dt.datetime(2026, 11, 27, 9, tzinfo=dt.timezone.utc)
    with open_store(url) as store:
        store.put_subscription(org_ref_for(org), plan=plan, started_at=now, commitment_end=None,
                               billing_period=None, now=now)


def test_vip_rotate_json_and_technical_document(tmp_path):
    import json

    from pypdf import PdfReader

    url = f"sqlite:///{tmp_path / 'p.db'}"
    _subscribe(url, "enterprise")
    result = run("vip-rotate", "--organization", "4", "--store", url, "--json", "--techdoc", str(tmp_path / "d.pdf"))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["organization"] == 4 and answer["plan"] == "enterprise" and len(answer["vip_code"]) == 8
    text = PdfReader(str(tmp_path / "d.pdf")).pages[0].extract_text()
    assert answer["vip_code"] in text
    with open_store(url) as store:
        assert verify_vip(store, org_ref_for(4), answer["vip_code"])


def test_vip_rotate_refuses_a_plan_without_vip_codes(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    _subscribe(url, "standard")
    result = run("vip-rotate", "--organization", "4", "--store", url)
    assert result.returncode == 1 and "has no VIP code" in result.stderr and "Traceback" not in result.stderr
    with open_store(url) as store:
        assert store.get_vip_hash(org_ref_for(4)) is None


def test_managers_assign(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    _subscribe(url, "pro")
    with open_store(url) as store:
        store.assign_manager(org_ref_for(4), "account_manager", "ana.keller@provider.example")
    result = run("managers", "assign", "--organization", "4", "--role", "account_manager",
                 "--person", "lea.rossi@provider.example", "--store", url)
    assert result.returncode == 0, result.stderr
    assert "was ana.keller@provider.example" in result.stdout
    with open_store(url) as store:
        assert store.managers_of(org_ref_for(4)) == {"account_manager": "lea.rossi@provider.example"}
        jobs = store.claim("w", dt.datetime.now(dt.timezone.utc), limit=5)
        assert [j.source for j in jobs] == ["billing"]  # the Zammad side: attribute and open tickets
        entry = store.audit_log(kind="managers.assigned")[0]
        assert entry.data["from"] == "ana.keller@provider.example" and entry.data["to"] == "lea.rossi@provider.example"
    # a role the plan lacks, a person outside the pool: one line, exit 1, nothing changed
    for role, person, fragment in (("technical_account_manager", "tom.meier@provider.example", "has no"),
                                   ("account_manager", "someone@else.example", "not in the account_manager pool")):
        result = run("managers", "assign", "--organization", "4", "--role", role, "--person", person, "--store", url)
        assert result.returncode == 1 and fragment in result.stderr and "Traceback" not in result.stderr
    with open_store(url) as store:
        assert store.managers_of(org_ref_for(4)) == {"account_manager": "lea.rossi@provider.example"}
