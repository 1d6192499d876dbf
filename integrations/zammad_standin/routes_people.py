"""Users, organizations and groups endpoints (users_controller.rb, organizations_controller.rb,
groups_controller.rb; searches per app/models/concerns/can_search.rb, see search.py)."""

from __future__ import annotations

from typing import Any, Callable

from integrations.zammad_standin.errors import Forbidden
from integrations.zammad_standin.protocol import Request, Response, paginate
from integrations.zammad_standin.search import ORGANIZATION_TEXT_COLUMNS, USER_TEXT_COLUMNS, search_records


class PeopleRoutes:
    """Mixed into ZammadApp."""

    state: Any

    @classmethod
    def register_people(cls, add: Callable[..., None]) -> None:
        add("GET", "/users/me", cls.users_me)
        add("GET", "/users/search", cls.users_search)
        add("GET", "/users", cls.users_index)
        add("POST", "/users", cls.users_create)
        add("GET", "/users/{id}", cls.users_show)
        add("PUT", "/users/{id}", cls.users_update)
        add("DELETE", "/users/{id}", cls.users_destroy, admin=True)
        add("GET", "/organizations/search", cls.organizations_search)
        add("GET", "/organizations", cls.organizations_index)
        add("POST", "/organizations", cls.organizations_create)
        add("GET", "/organizations/{id}", cls.organizations_show)
        add("PUT", "/organizations/{id}", cls.organizations_update)
        add("DELETE", "/organizations/{id}", cls.organizations_destroy, admin=True)
        add("GET", "/groups", cls.groups_index)
        add("POST", "/groups", cls.groups_create, admin=True)
        add("GET", "/groups/{id}", cls.groups_show)
        add("PUT", "/groups/{id}", cls.groups_update, admin=True)
        add("DELETE", "/groups/{id}", cls.groups_destroy, admin=True)

    # ----------------------------------------------------------------- users

    def users_me(self, request: Request, _args: dict[str, str]) -> Response:
        return Response(self._render("users", request.user, request))

    def users_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            users = self.state.all("users")
            if not self.state.is_agent(request.user):
                users = [u for u in users if u["id"] == request.user["id"]]
            users = paginate(users, request.params, default=500, maximum=500)
            return Response(self._list("users", users, request))

    def users_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            user = self.state.get("users", args["id"])
            if not self.state.is_agent(request.user) and user["id"] != request.user["id"]:
                raise Forbidden("Not authorized")
            return Response(self._render("users", user, request))

    def users_create(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            user = self.state.create_user(request.data, request.user["id"])
            return Response(self._render("users", user, request), 201)

    def users_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            target = self.state.get("users", args["id"])
            if not self.state.is_agent(request.user) and target["id"] != request.user["id"]:
                raise Forbidden("Not authorized")
            user = self.state.update_user(args["id"], request.data, request.user["id"])
            return Response(self._render("users", user, request))

    def users_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_user(args["id"])
        return Response({})

    def users_search(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            found = search_records(self.state, "users", request.params, USER_TEXT_COLUMNS)
            if request.params.get("page") and request.params.get("per_page"):
                found = paginate(found, request.params, default=100, maximum=500)
            else:
                found = found[: min(int(request.params.get("limit") or 100), 500)]
            return Response(self._list("users", found, request))

    # ----------------------------------------------------------------- organizations

    def organizations_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            orgs = self.state.all("organizations")
            if not self.state.is_agent(request.user):
                orgs = [o for o in orgs if o["id"] == request.user.get("organization_id")]
            return Response(self._list("organizations", paginate(orgs, request.params, default=500, maximum=500),
                                       request))

    def organizations_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            org = self.state.get("organizations", args["id"])
            if not self.state.is_agent(request.user) and org["id"] != request.user.get("organization_id"):
                raise Forbidden("Not authorized")
            return Response(self._render("organizations", org, request))

    def organizations_create(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            org = self.state.create_named("organizations", request.data, request.user["id"])
            return Response(self._render("organizations", org, request), 201)

    def organizations_update(self, request: Request, args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            org = self.state.update_named("organizations", args["id"], request.data, request.user["id"])
            return Response(self._render("organizations", org, request))

    def organizations_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_organization(args["id"])
        return Response({})

    def organizations_search(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            found = search_records(self.state, "organizations", request.params, ORGANIZATION_TEXT_COLUMNS)
            if request.params.get("page") and request.params.get("per_page"):
                found = paginate(found, request.params, default=100, maximum=500)
            else:
                found = found[: min(int(request.params.get("limit") or 100), 500)]
            return Response(self._list("organizations", found, request))

    # ----------------------------------------------------------------- groups

    def groups_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            groups = paginate(self.state.all("groups"), request.params, default=500, maximum=500)
            return Response(self._list("groups", groups, request))

    def groups_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            return Response(self._render("groups", self.state.get("groups", args["id"]), request))

    def groups_create(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            group = self.state.create_named("groups", request.data, request.user["id"])
            return Response(self._render("groups", group, request), 201)

    def groups_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            group = self.state.update_named("groups", args["id"], request.data, request.user["id"])
            return Response(self._render("groups", group, request))

    def groups_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_group(args["id"])
        return Response({})

