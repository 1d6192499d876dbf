"""Identifying a caller by the VIP code alone: cost per look-up with 100 and 10,000 organizations.

`integrations.vip.identify_by_vip` is one keyed-index look-up and one scrypt check, so the
time per typed code must not grow with the number of organizations (target: the 10,000
figure within 1.5× of the 100 figure). The organizations' index rows are written directly
(random digests), with one real code; scrypt dominates (tens of ms by design). Also: a
support code's encode + decode (a keyed Feistel permutation), per call.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from pathlib import Path

from benchmarks.harness import measure
from integrations.store import open_store
from integrations.support_code import organization_of, support_code
from integrations.vip import identify_by_vip, rotate_vip_code

NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
KEY = b"bench-vip-index-key"
LOOKUPS = 5


def _lookup_ms(organizations: int, directory: Path) -> tuple[float, float, float]:
    with open_store(f"sqlite:///{directory / f'vip-{organizations}.db'}") as store:
        with store.atomic():
            for n in range(organizations - 1):
                store.put_vip_index(secrets.token_bytes(32), str(10_000 + n), NOW)
        code = rotate_vip_code(store, "7", NOW, key=KEY)

        def run() -> None:
            for _ in range(LOOKUPS):
                assert identify_by_vip(store, code, key=KEY) == "7"

        figure = measure(run, work=LOOKUPS).per_op_us()
    return figure.median / 1000, figure.min / 1000, figure.max / 1000


def main() -> str:
    lines = ["| organizations | identify_by_vip per typed code, ms (median, min–max of 5 rounds) |", "|---:|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: _lookup_ms(n, Path(tmp)) for n in (100, 10_000)}
    for n, (median, low, high) in results.items():
        lines.append(f"| {n:,} | {median:.1f} ({low:.1f}–{high:.1f}) |")
    ratio = results[10_000][0] / results[100][0]
    lines.append(f"\n10,000 / 100 organizations: {ratio:.2f}× (target ≤ 1.5×: {'met' if ratio <= 1.5 else 'missed'})")
    ids = list(range(1, 10_001))

    def codes() -> None:
        for organization_id in ids:
            assert organization_of(support_code(organization_id)) == organization_id

    figure = measure(codes, work=len(ids)).per_op_us()
    lines.append(f"support code encode + decode: {figure.show(1)} per organization")
    if os.environ.get("CI"):
        lines.append("(CI run: figures from a shared machine)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
