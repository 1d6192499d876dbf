"""An organization's account: subscription, account managers, VIP-code hash
(tables ``subscriptions``, ``account_managers``, ``vip_codes``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from integrations.store.records import Subscription, VipHash
from integrations.store.sqlcore import SQLCore, Tx, utc, utcnow
from integrations.store.values import check_optional_text, check_text


class AccountsSQL(SQLCore):
    """What billing records per organization."""

    # -- subscriptions -----------------------------------------------------------

    def get_subscription(self, org_ref: str) -> Subscription | None:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT org_ref, plan, started_at, commitment_end, billing_period, updated_at"
                " FROM subscriptions WHERE org_ref = ?",
                (org_ref,),
            )
        if not rows:
            return None
        r = rows[0]
        return Subscription(
            org_ref=r[0],
            plan=r[1],
            started_at=self._from_ts(r[2]),
            commitment_end=self._ots(r[3]),
            billing_period=r[4],
            updated_at=self._from_ts(r[5]),
        )

    def put_subscription(
        self,
        org_ref: str,
        *,
        plan: str,
        started_at: dt.datetime,
        commitment_end: dt.datetime | None,
        billing_period: str | None,
        now: dt.datetime,
    ) -> Subscription:
        check_text(org_ref, "organization")
        check_text(plan, "plan")
        check_optional_text(billing_period, "billing period")
        sub = Subscription(
            org_ref=org_ref,
            plan=plan,
            started_at=utc(started_at),
            commitment_end=utc(commitment_end) if commitment_end is not None else None,
            billing_period=billing_period,
            updated_at=utc(now),
        )
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO subscriptions"
                " (org_ref, plan, started_at, commitment_end, billing_period, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (org_ref) DO UPDATE SET plan = excluded.plan,"
                " started_at = excluded.started_at, commitment_end = excluded.commitment_end,"
                " billing_period = excluded.billing_period, updated_at = excluded.updated_at",
                (
                    org_ref,
                    plan,
                    self._ts(sub.started_at),
                    self._ts(sub.commitment_end) if sub.commitment_end else None,
                    billing_period,
                    self._ts(sub.updated_at),
                ),
            )
        return sub

    # -- account managers --------------------------------------------------------

    def _assign(self, tx: Tx, org_ref: str, role: str, person: str, at: Any) -> None:
        tx.execute(
            "INSERT INTO account_managers (org_ref, role, person, assigned_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (org_ref, role) DO UPDATE"
            " SET person = excluded.person, assigned_at = excluded.assigned_at",
            (org_ref, role, person, at),
        )

    def assign_manager(
        self, org_ref: str, role: str, person: str, now: dt.datetime | None = None
    ) -> None:
        check_text(org_ref, "organization")
        check_text(role, "role")
        check_text(person, "manager")
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            self._lock(tx, f"managers:{role}")
            self._assign(tx, org_ref, role, person, at)

    def assign_least_loaded(
        self,
        org_ref: str,
        role: str,
        pool: Sequence[str],
        capacity: int | None = None,
        now: dt.datetime | None = None,
    ) -> str | None:
        check_text(org_ref, "organization")
        check_text(role, "role")
        for person in pool:
            check_text(person, "manager")
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            self._lock(tx, f"managers:{role}")
            current = tx.execute(
                "SELECT person FROM account_managers WHERE org_ref = ? AND role = ?",
                (org_ref, role),
            )
            if current:
                return str(current[0][0])
            loads = self._loads(tx, role)
            order = {person: index for index, person in enumerate(pool)}
            candidates = [
                p for p in dict.fromkeys(pool) if capacity is None or loads.get(p, 0) < capacity
            ]
            if not candidates:
                return None
            chosen = min(candidates, key=lambda p: (loads.get(p, 0), order[p]))
            self._assign(tx, org_ref, role, chosen, at)
            return chosen

    def unassign_manager(self, org_ref: str, role: str | None = None) -> int:
        with self._tx() as tx:
            if role is None:
                rows = tx.execute(
                    "DELETE FROM account_managers WHERE org_ref = ? RETURNING role", (org_ref,)
                )
            else:
                rows = tx.execute(
                    "DELETE FROM account_managers WHERE org_ref = ? AND role = ? RETURNING role",
                    (org_ref, role),
                )
            return len(rows)

    def managers_of(self, org_ref: str) -> dict[str, str]:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT role, person FROM account_managers WHERE org_ref = ? ORDER BY role",
                (org_ref,),
            )
            return {role: person for role, person in rows}

    def _loads(self, tx: Tx, role: str) -> dict[str, int]:
        rows = tx.execute(
            "SELECT person, COUNT(*) FROM account_managers WHERE role = ?"
            " GROUP BY person ORDER BY person",
            (role,),
        )
        return {person: int(count) for person, count in rows}

    def manager_loads(self, role: str) -> dict[str, int]:
        with self._tx(write=False) as tx:
            return self._loads(tx, role)

    # -- VIP codes ------------------------------------------------------------

    def put_vip_hash(
        self, org_ref: str, salt: bytes, digest: bytes, now: dt.datetime | None = None
    ) -> None:
        check_text(org_ref, "organization")
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO vip_codes (org_ref, salt, digest, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (org_ref) DO UPDATE SET salt = excluded.salt,"
                " digest = excluded.digest, updated_at = excluded.updated_at",
                (org_ref, bytes(salt), bytes(digest), at),
            )

    def get_vip_hash(self, org_ref: str) -> VipHash | None:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT org_ref, salt, digest, updated_at FROM vip_codes WHERE org_ref = ?",
                (org_ref,),
            )
        if not rows:
            return None
        r = rows[0]
        return VipHash(org_ref=r[0], salt=bytes(r[1]), digest=bytes(r[2]),
                       updated_at=self._from_ts(r[3]))

    def put_vip_index(self, index: bytes, org_ref: str, now: dt.datetime | None = None) -> None:
        check_text(org_ref, "organization")
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            self._lock(tx, f"vip-index:{org_ref}")
            tx.execute("DELETE FROM vip_index WHERE org_ref = ? AND idx <> ?", (org_ref, bytes(index)))
            tx.execute(
                "INSERT INTO vip_index (idx, org_ref, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (idx) DO UPDATE SET org_ref = excluded.org_ref, updated_at = excluded.updated_at",
                (bytes(index), org_ref, at),
            )

    def org_by_vip_index(self, index: bytes) -> str | None:
        with self._tx(write=False) as tx:
            rows = tx.execute("SELECT org_ref FROM vip_index WHERE idx = ?", (bytes(index),))
        return str(rows[0][0]) if rows else None
