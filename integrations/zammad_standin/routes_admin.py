"""Tags, mentions, object manager, lookups and the admin objects (tags_controller.rb,
mentions_controller.rb, object_manager_attributes_controller.rb, calendars/slas/triggers/
webhooks controllers through ApplicationController::HasResponseExtentions' generic CRUD)."""

from __future__ import annotations

from typing import Any, Callable

from integrations.zammad_standin.errors import Forbidden, NotFound, Unprocessable
from integrations.zammad_standin.protocol import Handler, Request, Response, paginate


class AdminRoutes:
    """Mixed into ZammadApp."""

    state: Any

    @classmethod
    def register_admin(cls, add: Callable[..., None]) -> None:
        add("GET", "/tags", cls.tags_list)
        add("POST", "/tags/add", cls.tags_add)
        add("DELETE", "/tags/remove", cls.tags_remove)
        add("GET", "/tag_list", cls.tag_list)
        add("GET", "/tag_search", cls.tag_search)
        add("GET", "/mentions", cls.mentions_list)
        add("POST", "/mentions", cls.mentions_create)
        add("DELETE", "/mentions/{id}", cls.mentions_destroy)
        for table, path in (("ticket_states", "/ticket_states"), ("ticket_priorities", "/ticket_priorities"),
                            ("roles", "/roles")):
            add("GET", path, _lookup_index(table))
            add("GET", path + "/{id}", _lookup_show(table))
        add("GET", "/object_manager_attributes", cls.attributes_index, admin=True)
        add("POST", "/object_manager_attributes", cls.attributes_create, admin=True)
        add("GET", "/object_manager_attributes/{id}", cls.attributes_show, admin=True)
        add("PUT", "/object_manager_attributes/{id}", cls.attributes_update, admin=True)
        add("DELETE", "/object_manager_attributes/{id}", cls.attributes_destroy, admin=True)
        add("POST", "/object_manager_attributes_execute_migrations", cls.attributes_migrate, admin=True)
        add("POST", "/object_manager_attributes_discard_changes", cls.attributes_discard, admin=True)
        for table in ("calendars", "slas", "triggers", "webhooks"):
            add("GET", f"/{table}", _generic_index(table), admin=True)
            add("POST", f"/{table}", _generic_create(table), admin=True)
            add("GET", f"/{table}/{{id}}", _generic_show(table), admin=True)
            add("PUT", f"/{table}/{{id}}", _generic_update(table), admin=True)
            add("DELETE", f"/{table}/{{id}}", _generic_destroy(table), admin=True)

    # ----------------------------------------------------------------- tags

    def tags_list(self, request: Request, _args: dict[str, str]) -> Response:
        object_name, o_id = request.params.get("object"), request.params.get("o_id")
        with self.state.lock:
            if object_name == "Ticket" and o_id not in (None, ""):
                ticket = self.state.get("tickets", o_id)
                if not self.state.ticket_readable(request.user, ticket):
                    raise Forbidden("Not authorized")
            try:
                tags = self.state.tags_of(object_name, int(o_id))
            except (TypeError, ValueError):
                tags = []
        return Response({"tags": tags})

    def tags_add(self, request: Request, _args: dict[str, str]) -> Response:
        params = request.params
        return Response(self.state.tag_add(params.get("object"), params.get("o_id"), params.get("item"),
                                           request.user["id"]), 201)

    def tags_remove(self, request: Request, _args: dict[str, str]) -> Response:
        params = request.params
        return Response(self.state.tag_remove(params.get("object"), params.get("o_id"), params.get("item"),
                                              request.user["id"]))

    def tag_list(self, request: Request, _args: dict[str, str]) -> Response:
        """GET /tag_list (admin): every Tag::Item with its count, by name."""
        counts = {name: 0 for name in self.state.tag_items}
        for tags in self.state.tags.values():
            for tag in tags:
                counts[tag] = counts.get(tag, 0) + 1
        return Response([{"id": i + 1, "name": n, "count": counts[n]} for i, n in enumerate(sorted(counts))])

    def tag_search(self, request: Request, _args: dict[str, str]) -> Response:
        term = str(request.params.get("term") or "").strip().lower()
        names = sorted({t for t in self.state.tag_items if term in t.lower()})
        return Response([{"id": i + 1, "value": n} for i, n in enumerate(names[: int(request.params.get("limit") or 10)])])

    # ----------------------------------------------------------------- mentions

    def mentions_list(self, request: Request, _args: dict[str, str]) -> Response:
        params = request.params
        mentions = self.state.mentions_of(params.get("mentionable_type"), params.get("mentionable_id"),
                                          request.user["id"])
        with self.state.lock:
            return Response({"mentions": [self.state.attributes("mentions", m) for m in mentions]})

    def mentions_create(self, request: Request, _args: dict[str, str]) -> Response:
        params = request.params
        result = self.state.add_mention(params.get("mentionable_type"), params.get("mentionable_id"),
                                        request.user["id"], params.get("user_id"))
        return Response(result, 201)  # mentions_controller.rb#create: render json: true, status: :created

    def mentions_destroy(self, request: Request, args: dict[str, str]) -> Response:
        mention = self.state.remove_mention(args["id"], request.user["id"])
        with self.state.lock:
            return Response(self.state.attributes("mentions", mention))

    # ----------------------------------------------------------------- object manager

    def attributes_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            return Response([self.state.attribute_full(a) for a in self.state.all("attributes")])

    def attributes_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            return Response(self.state.with_ids("attributes", self.state.get("attributes", args["id"])))

    def attributes_create(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            record = self.state.add_attribute(request.data, request.user["id"])
            return Response(self.state.with_ids("attributes", record), 201)

    def attributes_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            record = self.state.update_attribute(args["id"], request.data, request.user["id"])
            return Response(self.state.with_ids("attributes", record))

    def attributes_destroy(self, request: Request, args: dict[str, str]) -> Response:
        try:
            self.state.remove_attribute(args["id"], request.user["id"])
        except NotFound as exc:  # the controller rescues everything as 422
            raise Unprocessable(exc.message) from exc
        return Response({})

    def attributes_migrate(self, request: Request, _args: dict[str, str]) -> Response:
        self.state.execute_migrations()
        return Response({})

    def attributes_discard(self, request: Request, _args: dict[str, str]) -> Response:
        self.state.discard_attribute_changes()
        return Response({})



# --------------------------------------------------------------------------- generic handlers


def _lookup_index(table: str) -> Handler:
    def handler(app: Any, request: Request, _args: dict[str, str]) -> Response:
        with app.state.lock:
            records = paginate(app.state.all(table), request.params, default=500, maximum=500)
            return Response(app._list(table, records, request))
    return handler


def _lookup_show(table: str) -> Handler:
    def handler(app: Any, request: Request, args: dict[str, str]) -> Response:
        with app.state.lock:
            return Response(app._render(table, app.state.get(table, args["id"]), request))
    return handler


def _generic_index(table: str) -> Handler:
    return _lookup_index(table)


def _generic_show(table: str) -> Handler:
    return _lookup_show(table)


def _generic_create(table: str) -> Handler:
    def handler(app: Any, request: Request, _args: dict[str, str]) -> Response:
        with app.state.lock:
            record = app.state.create_generic(table, request.data, request.user["id"])
            return Response(app._render(table, record, request), 201)
    return handler


def _generic_update(table: str) -> Handler:
    def handler(app: Any, request: Request, args: dict[str, str]) -> Response:
        with app.state.lock:
            record = app.state.update_generic(table, args["id"], request.data, request.user["id"])
            return Response(app._render(table, record, request))
    return handler


def _generic_destroy(table: str) -> Handler:
    def handler(app: Any, request: Request, args: dict[str, str]) -> Response:
        app.state.delete_generic(table, args["id"])
        return Response({})
    return handler


