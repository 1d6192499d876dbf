"""The README's first command: `policydesk demo` plays the whole loop and reports it."""

from __future__ import annotations

import re
import subprocess
import sys

from support import REPO


def test_demo_runs_the_whole_loop():
    result = subprocess.run([sys.executable, "-m", "integrations.cli", "demo", "--escalation-seconds", "8"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    assert "a second `sync --dry-run` reports: no changes" in out
    assert re.search(r"Uhrwerk Digital GmbH: pro -> 201 applied; .*account_manager=\S+@provider\.example", out)
    assert re.search(r"#\d+ pro phone: priority 2 normal, tags hours:phone plan:pro", out)
    assert re.search(r"pro emergency, out of scope: .*out-of-scope", out)
    assert "billing answered 409 refused" in out and "downgrade" in out
    # the upgrade moved the Plus ticket's deadline forward
    before, after = re.search(r"first response due: (\S+) -> (\S+)", out).groups()
    assert after < before
    assert re.search(r"step 'breach' due \S+ UTC, fired \S+ \(\+[012]\.\d s\)", out), out
    assert re.search(r"enterprise emergency \(after the breach\): priority 3 high, tags .*sla:breached", out)
    assert "parked=0" in out
