"""Users, organizations and groups: create, update, delete (users_controller.rb,
organizations_controller.rb, groups_controller.rb; app/models/user.rb validations)."""

from __future__ import annotations

import copy
import uuid
from typing import Any, Mapping

from integrations.zammad_standin.errors import Unprocessable, validation_failed


class UsersMixin:
    """Mixed into State."""

    def create_user(self, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            params = self.lookup_names("users", dict(params))
            clean = self.cleanup("users", params, new=True)
            if not any(str(clean.get(k) or "").strip() for k in ("firstname", "lastname", "email", "phone", "mobile")):
                raise Unprocessable("At least one identifier (firstname, lastname, phone, mobile or email) "
                                    "for user is required.")
            email = str(clean.get("email") or "").strip().lower()
            clean["email"] = email
            if email and any(str(u.get("email") or "").lower() == email for u in self.all("users")):
                raise Unprocessable(f"Email address '{email}' is already used for another user.")
            login = str(params.get("login") or email or f"auto-{uuid.uuid4()}").strip().lower()
            if self.user_by(login) is not None and self.user_by(login).get("login") == login:
                raise validation_failed(f"Login '{login}' is already used")
            clean["login"] = login
            clean.setdefault("preferences", {"locale": "en-us"})
            if isinstance(clean["preferences"], dict):
                clean["preferences"].setdefault("locale", "en-us")
            clean["created_by_id"] = clean["updated_by_id"] = actor
            role_ids = self._role_ids(params) or [3]
            extra = {"role_ids": role_ids, "group_ids": self._group_ids(params) or {},
                     "organization_ids": list(params.get("organization_ids") or [])}
            user = self.insert("users", clean, **extra)
            if params.get("password"):
                self.passwords[user["id"]] = str(params["password"])
            return user

    def _role_ids(self, params: Mapping[str, Any]) -> list[int] | None:
        if params.get("role_ids") is not None:
            return [int(r) for r in params["role_ids"]]
        if params.get("roles") is not None:
            ids = []
            for name in params["roles"]:
                role = self.by_name("roles", name)
                if role is None:
                    raise Unprocessable(f"No lookup value found for 'roles': {name!r}")
                ids.append(role["id"])
            return ids
        return None

    def _group_ids(self, params: Mapping[str, Any]) -> dict[str, list[str]] | None:
        if isinstance(params.get("group_ids"), dict):
            return {str(k): list(v) for k, v in params["group_ids"].items()}
        if isinstance(params.get("group_ids"), list):
            return {str(k): ["full"] for k in params["group_ids"]}
        if isinstance(params.get("groups"), dict):
            out = {}
            for name, perms in params["groups"].items():
                group = self.by_name("groups", name)
                if group is None:
                    raise Unprocessable(f"No lookup value found for 'groups': {name!r}")
                out[str(group["id"])] = list(perms)
            return out
        return None

    def update_user(self, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            user = self.get("users", rid)
            params = self.lookup_names("users", dict(params))
            clean = self.cleanup("users", params, new=False)
            if "email" in clean:
                clean["email"] = str(clean["email"] or "").strip().lower()
            if "login" in clean:
                clean["login"] = str(clean["login"]).strip().lower()
            if "preferences" in clean and isinstance(clean["preferences"], dict):
                merged = dict(user.get("preferences") or {})
                merged.update(clean["preferences"])
                clean["preferences"] = merged
            user.update(copy.deepcopy(clean))
            roles = self._role_ids(params)
            if roles is not None:
                user["_extra"]["role_ids"] = roles
            groups = self._group_ids(params)
            if groups is not None:
                user["_extra"]["group_ids"] = groups
            if params.get("organization_ids") is not None:
                user["_extra"]["organization_ids"] = [int(o) for o in params["organization_ids"]]
            if params.get("password"):
                self.passwords[user["id"]] = str(params["password"])
            self.touch(user, actor)
            return user

    def delete_user(self, rid: Any) -> None:
        with self.lock:
            user = self.get("users", rid)
            if any(t["customer_id"] == user["id"] or t["owner_id"] == user["id"] for t in self.all("tickets")):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables["users"][user["id"]]
            for mention in [m for m in self.all("mentions") if m["user_id"] == user["id"]]:
                del self.tables["mentions"][mention["id"]]

    def create_named(self, table: str, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        """Create an organization or group (name required and unique)."""
        with self.lock:
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=True)
            name = str(clean.get("name") or "").strip()
            if not name:
                raise validation_failed("Name can't be blank")
            if self.by_name(table, name) is not None:
                raise validation_failed("Name has already been taken")
            clean["name"] = name
            if table == "groups":
                clean["name_last"] = name.split("›")[-1].strip()
            clean["created_by_id"] = clean["updated_by_id"] = actor
            return self.insert(table, clean)

    def update_named(self, table: str, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            record = self.get(table, rid)
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=False)
            if "name" in clean:
                name = str(clean["name"] or "").strip()
                if not name:
                    raise validation_failed("Name can't be blank")
                other = self.by_name(table, name)
                if other is not None and other["id"] != record["id"]:
                    raise validation_failed("Name has already been taken")
                clean["name"] = name
                if table == "groups":
                    clean["name_last"] = name.split("›")[-1].strip()
            record.update(copy.deepcopy(clean))
            self.touch(record, actor)
            return record

    def delete_group(self, rid: Any) -> None:
        with self.lock:
            group = self.get("groups", rid)
            if any(t["group_id"] == group["id"] for t in self.all("tickets")):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables["groups"][group["id"]]
            for user in self.all("users"):
                user["_extra"].get("group_ids", {}).pop(str(group["id"]), None)

    def delete_organization(self, rid: Any) -> None:
        with self.lock:
            org = self.get("organizations", rid)
            if any(t["organization_id"] == org["id"] for t in self.all("tickets")) or any(
                u["organization_id"] == org["id"] for u in self.all("users")
            ):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables["organizations"][org["id"]]
