"""The technical document: every item the terms name is in the PDF's extracted text, for
each plan; ``policydesk techdoc`` writes it; a page renders (pdftoppm) to a real image."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import sys

import pytest

from integrations.billing import org_ref_for
from integrations.store import open_store
from integrations.support_code import support_code
from integrations.techdoc import document_content, render_pdf, technical_document
from support import REPO

pypdf = pytest.importorskip("pypdf")
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)
MANAGERS = {"account_manager": "ana.keller@provider.example", "technical_account_manager": "tom.meier@provider.example"}


def _text(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())  # line breaks of the layout do not matter


@pytest.mark.parametrize("plan", ["standard", "plus", "pro", "enterprise"])
def test_every_item_is_in_the_text(bundled_policies, plan) -> None:
    vip = "40817263" if plan != "standard" else None
    content = document_content(bundled_policies, 4, name="Uhrwerk Digital GmbH", plan_name=plan,
                               commitment_end=dt.date(2027, 6, 1) if plan != "standard" else None,
                               managers=MANAGERS, vip_code=vip, issued=NOW.date())
    text = _text(render_pdf(content))
    spec = bundled_policies.plans[plan]
    assert "Uhrwerk Digital GmbH" in text and spec.title in text
    assert support_code(4) in text
    assert (vip in text) if vip else "VIP code: not included in this plan" in text
    assert "Phone: Mon-Fri 06:00-19:00 (Europe/Zurich)" in text
    assert "E-mail" in text and "Mon-Sun 06:00-23:00" in text
    assert "24/7 emergency line" in text and f"Included in your plan: {'yes' if spec.emergency_24_7 else 'no'}" in text
    assert "Infrastructure problem needing the provider's intervention" in text
    assert "French and English only" in text and "Phone only" in text
    for role in spec.account_manager_roles:
        assert f"{MANAGERS[role]}, Mon-Fri 09:00-18:00" in text
    if not spec.account_manager_roles:
        assert "No designated account manager" in text
    assert ("Commitment end: 2027-06-01" in text) if plan != "standard" else "Commitment end: none" in text
    assert "webmastering" in text and "third-party" in text and "partners" in text
    assert ("Customised advice" in text) == spec.customised_advice


def test_techdoc_command_writes_the_pdf(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url) as store:
        store.put_subscription(org_ref_for(7), plan="pro", started_at=NOW,
                               commitment_end=dt.datetime(2027, 6, 1, tzinfo=dt.timezone.utc),
                               billing_period="annual", now=NOW)
        store.assign_manager(org_ref_for(7), "account_manager", "lea.rossi@provider.example")
    out = tmp_path / "doc.pdf"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "integrations.cli", "techdoc", "--organization", "7",
                             "--output", str(out), "--store", url, "--vip-code", "12345678"],
                            cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    text = _text(out.read_bytes())
    assert "Pro support" in text and support_code(7) in text and "12345678" in text
    assert "lea.rossi@provider.example" in text and "2027-06-01" in text
    missing = subprocess.run([sys.executable, "-m", "integrations.cli", "techdoc", "--organization", "8",
                              "--output", str(out), "--store", url], cwd=REPO, capture_output=True, text=True,
                             timeout=60, env=env)
    assert missing.returncode == 1 and "is unknown" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) not installed")
def test_page_renders_to_an_image(tmp_path, bundled_policies) -> None:
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        pdf = technical_document(store, bundled_policies, "4", {"id": 4, "name": "Uhrwerk Digital GmbH",
                                                                "support_plan": "enterprise"}, "40817263", NOW)
    (tmp_path / "doc.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(tmp_path / "doc.pdf"),
                    str(tmp_path / "page")], check=True, timeout=60)
    png = next(tmp_path.glob("page*.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert abs(height / width - 297 / 210) < 0.02  # an A4 page
    # Ink on the page: a blank render compresses to almost nothing.
    assert len(png) > 5000
