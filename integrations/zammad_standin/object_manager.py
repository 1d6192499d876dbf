"""Object manager attributes (object_manager_attributes_controller.rb,
app/models/object_manager/attribute.rb): pending until migrations are executed."""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

from integrations.zammad_standin.errors import Unprocessable
from integrations.zammad_standin.schema import (
    ATTRIBUTE_OBJECTS,
    COLUMNS,
    DATA_TYPES,
    OBJECT_LOOKUP_IDS,
    RESERVED_ATTRIBUTE_NAMES,
)


class ObjectManagerMixin:
    """Mixed into State."""

    def add_attribute(self, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            object_name = params.get("object")
            name = str(params.get("name") or "")
            if object_name not in OBJECT_LOOKUP_IDS:
                raise Unprocessable(f"Invalid object '{object_name}'!")
            if self.attribute_by(object_name, name) is not None:
                raise Unprocessable("already exists")
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in RESERVED_ATTRIBUTE_NAMES or name.endswith("_id"):
                raise Unprocessable(f"Name '{name}' is invalid or reserved")
            if name in COLUMNS.get(ATTRIBUTE_OBJECTS.get(object_name, ""), {}):
                raise Unprocessable(f"{name} is a reserved word")
            data_type = params.get("data_type")
            if data_type not in DATA_TYPES:
                raise Unprocessable(f"Invalid data_type param '{data_type}'")
            values = {
                "object_lookup_id": OBJECT_LOOKUP_IDS[object_name], "name": name,
                "display": params.get("display") or name, "data_type": data_type,
                "data_option": _data_option(params), "active": params.get("active", True),
                "screens": params.get("screens") or {}, "position": params.get("position", 1550),
                "editable": True, "to_create": True, "to_migrate": True,
                "created_by_id": actor, "updated_by_id": actor,
            }
            return self.insert("attributes", values)

    def update_attribute(self, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            record = self.get("attributes", rid)
            object_name = params.get("object") or self.attribute_object(record)
            if self.attribute_by(object_name, params.get("name") or record["name"]) is None:
                raise Unprocessable("does not exist")
            if "data_type" in params and params["data_type"] not in DATA_TYPES:
                raise Unprocessable(f"Invalid data_type param '{params['data_type']}'")
            for key in ("display", "active", "screens", "position", "data_type"):
                if key in params:
                    record[key] = copy.deepcopy(params[key])
            if "data_option" in params:
                record["data_option_new"] = _data_option(params)
                record["to_config"] = True
                record["to_migrate"] = True
            self.touch(record, actor)
            return record

    def remove_attribute(self, rid: Any, actor: int) -> None:
        with self.lock:
            record = self.get("attributes", rid)
            if record["to_create"]:
                del self.tables["attributes"][record["id"]]
                return
            record["to_delete"] = True
            record["to_migrate"] = True
            self.touch(record, actor)

    def execute_migrations(self) -> None:
        """Apply pending attribute changes: add/remove custom columns (existing rows get null)."""
        with self.lock:
            for record in self.all("attributes"):
                table = ATTRIBUTE_OBJECTS.get(self.attribute_object(record))
                if record["to_delete"]:
                    del self.tables["attributes"][record["id"]]
                    if table:
                        self.custom_columns[table].pop(record["name"], None)
                        for row in self.tables[table].values():
                            row.pop(record["name"], None)
                    continue
                if record["to_config"]:
                    record["data_option"] = record["data_option_new"] or record["data_option"]
                    record["data_option_new"] = {}
                if record["to_create"] and table:
                    self.custom_columns[table][record["name"]] = None
                    for row in self.tables[table].values():
                        row.setdefault(record["name"], None)
                record["to_create"] = record["to_migrate"] = record["to_config"] = False

    def discard_attribute_changes(self) -> None:
        with self.lock:
            for record in self.all("attributes"):
                if record["to_create"]:
                    del self.tables["attributes"][record["id"]]
                else:
                    record.update(to_delete=False, to_config=False, to_migrate=False, data_option_new={})

    def attribute_object(self, record: Mapping[str, Any]) -> str:
        return next((k for k, v in OBJECT_LOOKUP_IDS.items() if v == record["object_lookup_id"]), "")

    def attribute_by(self, object_name: Any, name: Any) -> dict[str, Any] | None:
        lookup = OBJECT_LOOKUP_IDS.get(object_name)
        for record in self.all("attributes"):
            if record["object_lookup_id"] == lookup and record["name"] == name:
                return record
        return None

    def attribute_full(self, record: Mapping[str, Any]) -> dict[str, Any]:
        out = self.with_ids("attributes", record)
        out["object"] = self.attribute_object(record)
        return out


def _data_option(params: Mapping[str, Any]) -> dict[str, Any]:
    option = copy.deepcopy(params.get("data_option") or {})
    data_type = params.get("data_type") or ""
    if not isinstance(option, dict):
        option = {}
    if "default" not in option:
        option["default"] = "" if data_type in ("input", "select", "tree_select") else None
    if option.get("null") is None:
        option["null"] = True
    if not isinstance(option.get("options"), (dict, list)):
        option["options"] = {}
    if not isinstance(option.get("relation"), str):
        option["relation"] = ""
    return option


