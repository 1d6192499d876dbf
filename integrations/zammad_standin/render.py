"""Zammad's three JSON renderings of a record (app/models/application_model/can_associations.rb):

- `attributes` -- the columns only (``render json: record``; ticket show/index);
- `with_ids`   -- plus association id lists (``attributes_with_association_ids``;
  most create/update/show answers);
- `with_names` -- plus, for every association whose id is set, the associated
  record's name (``attributes_with_association_names``; ``expand=true``).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from integrations.zammad_standin.schema import BELONGS_TO

#: what newer Zammad answers instead of a webhook secret, and accepts back as "unchanged"
SECRET_MASK = "**********"
SECRET_WEBHOOK_COLUMNS = ("signature_token", "basic_auth_password")


class Renderings:
    """Mixed into State."""

    def attributes(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in record.items() if k != "_extra" and not k.startswith("_")}
        if table == "webhooks" and self.settings.get("mask_webhook_secrets"):  # type: ignore[attr-defined]
            for key in SECRET_WEBHOOK_COLUMNS:  # newer Zammad (6.5+) never answers a webhook's secrets
                if out.get(key):
                    out[key] = SECRET_MASK
        return out

    def with_ids(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out = self.attributes(table, record)
        extra = record["_extra"]
        if table == "users":
            out["role_ids"] = list(extra.get("role_ids", []))
            out["two_factor_preference_ids"] = []
            out["organization_ids"] = list(extra.get("organization_ids", []))
            out["authorization_ids"] = []
            out["overview_sorting_ids"] = []
            out["group_ids"] = copy.deepcopy(extra.get("group_ids", {}))
        elif table == "groups":
            out["user_ids"] = [u["id"] for u in self.all("users")
                               if str(record["id"]) in u["_extra"].get("group_ids", {})]
        elif table == "tickets":
            out["article_ids"] = [a["id"] for a in self.articles_of(record["id"])]
            out["ticket_time_accounting_ids"] = []
        elif table == "organizations":
            out["member_ids"] = [u["id"] for u in self.all("users") if u.get("organization_id") == record["id"]]
            out["secondary_member_ids"] = [u["id"] for u in self.all("users")
                                           if record["id"] in u["_extra"].get("organization_ids", [])]
        elif table == "articles":
            out["attachments"] = []
        elif table == "roles":
            out["user_ids"] = [u["id"] for u in self.all("users") if record["id"] in u["_extra"].get("role_ids", [])]
        return out

    def with_names(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out = self.with_ids(table, record)
        if table == "users":
            out["roles"] = [self.name_of("roles", r) for r in out["role_ids"]]
            out["two_factor_preferences"] = []
            out["organizations"] = [self.name_of("organizations", o) for o in out["organization_ids"]]
            out["authorizations"] = []
            out["overview_sortings"] = []
        if table == "tickets":
            out["ticket_time_accounting"] = []
        for column, (target, key) in BELONGS_TO.get(table, {}).items():
            if table == "tickets" and column in ("state_id", "priority_id"):
                continue  # rendered after ticket_time_accounting, as Zammad does
            if out.get(column) is not None:
                name = self.name_of(target, out[column])
                if name is not None:
                    out[key] = name
        if table == "tickets":
            for column in ("state_id", "priority_id", "owner_id", "customer_id"):
                target, key = BELONGS_TO["tickets"][column]
                out.pop(key, None)
                if out.get(column) is not None:
                    out[key] = self.name_of(target, out[column])
        if table == "users":
            out["groups"] = {self.name_of("groups", g): perms for g, perms in out["group_ids"].items()
                             if self.find("groups", g)}
        if table == "groups":
            out["users"] = [self.name_of("users", u) for u in out["user_ids"]]
        if table == "organizations":
            out["members"] = [self.name_of("users", u) for u in out["member_ids"]]
            out["secondary_members"] = [self.name_of("users", u) for u in out["secondary_member_ids"]]
        for key in ("created_by", "updated_by"):
            if out.get(f"{key}_id") is not None:
                name = self.name_of("users", out[f"{key}_id"])
                if name is not None:
                    out[key] = name
        if table == "tickets":  # Zammad renders the article type/sender names last
            for key in ("create_article_type", "create_article_sender"):
                if key in out:
                    out[key] = out.pop(key)
        if table == "users":
            out.pop("password", None)
        return out

