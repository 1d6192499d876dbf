"""Tickets and articles endpoints (tickets_controller.rb, ticket_articles_controller.rb):
search with and without Elasticsearch (search.py), ticket history (GET /ticket_history/:id)."""

from __future__ import annotations

from typing import Any, Callable

from integrations.zammad_standin.errors import Forbidden
from integrations.zammad_standin.protocol import Request, Response, paginate
from integrations.zammad_standin.search import search_tickets


class TicketRoutes:
    """Mixed into ZammadApp."""

    state: Any

    @classmethod
    def register_tickets(cls, add: Callable[..., None]) -> None:
        add("GET", "/tickets/search", cls.tickets_search)
        add("GET", "/tickets", cls.tickets_index)
        add("POST", "/tickets", cls.tickets_create)
        add("GET", "/tickets/{id}", cls.tickets_show)
        add("PUT", "/tickets/{id}", cls.tickets_update)
        add("DELETE", "/tickets/{id}", cls.tickets_destroy, admin=True)
        add("GET", "/ticket_articles/by_ticket/{id}", cls.articles_by_ticket)
        add("GET", "/ticket_articles", cls.articles_index, admin=True)
        add("POST", "/ticket_articles", cls.articles_create)
        add("GET", "/ticket_articles/{id}", cls.articles_show)
        add("PUT", "/ticket_articles/{id}", cls.articles_update)
        add("DELETE", "/ticket_articles/{id}", cls.articles_destroy, admin=True)
        add("POST", "/tickets/search", cls.tickets_search)
        add("GET", "/ticket_history/{id}", cls.ticket_history)

    # ----------------------------------------------------------------- tickets

    def _visible_tickets(self, request: Request) -> list[dict[str, Any]]:
        """TicketPolicy::ReadScope: agents see their groups' tickets, customers their own/shared."""
        return [t for t in self.state.all("tickets") if self.state.ticket_readable(request.user, t)]

    def _ticket(self, request: Request, rid: Any, *, change: bool = False) -> dict[str, Any]:
        """TicketPolicy#show? (read) or #update? (change access, or the customer's own ticket)."""
        ticket = self.state.get("tickets", rid)
        state, user = self.state, request.user
        allowed = (state.agent_access(user, ticket, "change") or
                   (not state.agent_access(user, ticket, "read") and state.customer_access(user, ticket))) \
            if change else state.ticket_readable(user, ticket)
        if not allowed:
            raise Forbidden("Not authorized")
        return ticket

    def tickets_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            tickets = paginate(self._visible_tickets(request), request.params, default=100, maximum=100)
            return Response(self._list("tickets", tickets, request, default="attributes"))

    def tickets_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            ticket = self._ticket(request, args["id"])
            if request.params.get("all") in ("true", True):
                return Response(self._ticket_all(ticket))
            return Response(self._render("tickets", ticket, request, default="attributes"))

    def _ticket_all(self, ticket: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        articles = state.articles_of(ticket["id"])
        assets: dict[str, Any] = {"Ticket": {str(ticket["id"]): state.with_ids("tickets", ticket)},
                                  "TicketArticle": {str(a["id"]): state.with_names("articles", a) for a in articles}}
        return {"ticket_id": ticket["id"], "ticket_article_ids": [a["id"] for a in articles],
                "assets": assets, "links": [], "tags": state.tags_of("Ticket", ticket["id"]),
                "mentions": [m["id"] for m in state.all("mentions") if m["mentionable_id"] == ticket["id"]],
                "time_accountings": [], "form_meta": {}}

    def tickets_create(self, request: Request, _args: dict[str, str]) -> Response:
        ticket, _article = self.state.create_ticket(request.data, request.user["id"])
        with self.state.lock:
            return Response(self._render("tickets", ticket, request), 201)

    def tickets_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            self._ticket(request, args["id"], change=True)
        ticket, _article = self.state.update_ticket(args["id"], request.data, request.user["id"])
        with self.state.lock:
            return Response(self._render("tickets", ticket, request))

    def tickets_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_ticket(args["id"])
        return Response(raw=b"", content_type="text/html", headers={"Cache-Control": "no-cache"})

    def tickets_search(self, request: Request, _args: dict[str, str]) -> Response:
        """GET/POST /tickets/search (tickets_controller.rb#search -> CanSearch, see search.py)."""
        state = self.state
        with state.lock:
            found = search_tickets(state, request.user, request.params)
            page = paginate(found, request.params, default=50, maximum=200)
            if request.expand:
                return Response(self._list("tickets", page, request))
            return Response({"tickets": [t["id"] for t in page], "tickets_count": len(found),
                             "assets": {"Ticket": {str(t["id"]): state.with_ids("tickets", t) for t in page}}})

    def ticket_history(self, request: Request, args: dict[str, str]) -> Response:
        """GET /ticket_history/:id (tickets_controller.rb#ticket_history -> HasHistory#history_get(true))."""
        with self.state.lock:
            ticket = self._ticket(request, args["id"])
            return Response({"history": self.state.ticket_history(ticket["id"]), "assets": {}})

    # ----------------------------------------------------------------- articles

    def articles_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            articles = paginate(self.state.all("articles"), request.params, default=500, maximum=500)
            return Response([self.state.with_names("articles", a) if request.expand else self.state.with_ids("articles", a)
                             for a in articles])

    def _visible_articles(self, request: Request, ticket: dict[str, Any]) -> list[dict[str, Any]]:
        articles = self.state.articles_of(ticket["id"])
        if not self.state.is_agent(request.user):
            articles = [a for a in articles if not a["internal"]]
        return articles

    def articles_by_ticket(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            ticket = self._ticket(request, args["id"])
            return Response([self.state.with_names("articles", a) for a in self._visible_articles(request, ticket)])

    def articles_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            article = self.state.get("articles", args["id"])
            ticket = self._ticket(request, article["ticket_id"])
            if article not in self._visible_articles(request, ticket):
                raise Forbidden("Not authorized")
            return Response(self.state.with_names("articles", article))

    def articles_create(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            if request.data.get("ticket_id") is not None:
                self._ticket(request, request.data["ticket_id"])
        article = self.state.create_article(request.data, request.user["id"])
        with self.state.lock:
            return Response(self.state.with_names("articles", article), 201)

    def articles_update(self, request: Request, args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            article = self.state.get("articles", args["id"])
            if request.data.get("internal") is not None:
                value = request.data["internal"]
                article["internal"] = value if isinstance(value, bool) else str(value).lower() == "true"
            highlight = (request.data.get("preferences") or {}).get("highlight") if isinstance(
                request.data.get("preferences"), dict) else None
            if highlight:
                article["preferences"] = dict(article["preferences"] or {}, highlight=str(highlight))
            self.state.touch(article, request.user["id"])
            return Response(self.state.with_names("articles", article))

    def articles_destroy(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            article = self.state.get("articles", args["id"])
            del self.state.tables["articles"][article["id"]]
            ticket = self.state.find("tickets", article["ticket_id"])
            if ticket is not None:
                ticket["article_count"] = len(self.state.articles_of(ticket["id"]))
            return Response({})

