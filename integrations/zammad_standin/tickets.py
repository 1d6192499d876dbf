"""Tickets and articles: create, update, delete, and the transactions they run.

- tickets_controller.rb#create: customer lookup/creation (``customer``, ``guess:``), then
  ``param_cleanup`` (unknown keys dropped), ``tags`` (each checked by Tag.tag_allowed?),
  ``mentions`` (Mention.subscribe!, validated by lib/validations/mention_validator.rb) and
  ``article``, all in one Transaction.execute: a refused mention rolls the ticket back.
- tickets_controller.rb#update: ``param_cleanup``, preferences merged, ``number`` ignored,
  customers may not change owner/customer/organization; ``article`` is created inside the
  same locked update (one transaction, one trigger run).
- app/models/concerns/checks_core_workflow.rb: a field the object manager marks required for
  the screen (create_middle / edit) and the user's permission must have a value -> 422
  ``Missing required value for field 'x'!``.
- updated_by: has_default_model_user_relations.rb stamps the acting user on every save
  (an update that changes nothing still saves).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterable, Mapping

from integrations.zammad_standin.errors import NotFound, Unprocessable, validation_failed

#: screens of app/models/object_manager/attribute.rb: permission keys checked in this order.
SCREEN_PERMISSIONS = ("ticket.agent", "ticket.customer", "-all-")


class TicketsMixin:
    """Mixed into State."""

    def next_ticket_number(self) -> str:
        """Ticket::Number::Increment (lib/ticket/number/increment.rb): system_id + counter, padded."""
        self.ticket_counter += 1
        system_id = str(self.settings.get("system_id", ""))
        counter = str(self.ticket_counter)
        size = int(self.settings.get("ticket_number_min_size", 5))
        return system_id + "0" * max(0, size - len(system_id) - len(counter)) + counter

    def required_fields(self, screen: str, user: Mapping[str, Any]) -> list[str]:
        """Ticket attributes the object manager marks ``required`` for this screen and user."""
        keys = ["ticket.agent"] if self.is_agent(user) else ["ticket.customer"]
        out = []
        for attribute in self.all("attributes"):
            if self.attribute_object(attribute) != "Ticket" or not attribute.get("active", True):
                continue
            if attribute["name"] not in self.columns("tickets"):
                continue  # not migrated yet: no column, nothing to check
            screen_spec = (attribute.get("screens") or {}).get(screen) or {}
            for key in keys + ["-all-"]:
                spec = screen_spec.get(key)
                if isinstance(spec, dict):
                    if spec.get("required") and spec.get("shown", True) is not False:
                        out.append(attribute["name"])
                    break
        return out

    def check_mandatory(self, ticket: Mapping[str, Any], screen: str, user: Mapping[str, Any]) -> None:
        """checks_core_workflow.rb#check_mandatory: a required, visible field without a value."""
        for name in self.required_fields(screen, user):
            if ticket.get(name) is None:
                raise Unprocessable(f"Missing required value for field '{name}'!")

    def create_ticket(self, params: Mapping[str, Any], actor: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Ticket (and first article when ``article`` is given); runs a ``create`` transaction."""
        with self.lock:
            params = dict(params)
            article_params = params.pop("article", None)
            tags = params.pop("tags", None)
            mentions = params.pop("mentions", None)
            if isinstance(params.get("customer"), dict):
                customer_params = params.pop("customer")
                found = self.user_by(customer_params.get("id") or customer_params.get("email")
                                     or customer_params.get("login"))
                params["customer_id"] = (found or self.create_user(customer_params, actor))["id"]
            if isinstance(params.get("customer_id"), str) and params["customer_id"].startswith("guess:"):
                email = params["customer_id"][len("guess:"):]
                if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
                    raise Unprocessable(f"Invalid email '{email}' of customer", human=False, direct=True)
                found = self.user_by(email)
                params["customer_id"] = (found or self.create_user({"email": email}, actor))["id"]
            params = self.lookup_names("tickets", params)
            clean = self.cleanup("tickets", params, new=True)
            actor_user = self.get("users", actor)
            if not self.is_agent(actor_user):
                for key in ("owner_id", "customer_id", "preferences"):
                    clean.pop(key, None)
                clean["customer_id"] = actor
            if not str(clean.get("title") or "").strip():
                raise validation_failed("Title can't be blank")
            if clean.get("group_id") is None:
                # TicketPolicy#ensure_group? (app/policies/ticket_policy.rb)
                raise Unprocessable("The required value 'group_id' is missing.")
            clean.setdefault("state_id", self.by_name("ticket_states", "new")["id"])
            clean.setdefault("priority_id", self.by_name("ticket_priorities", "2 normal")["id"])
            if clean.get("customer_id") is None:
                clean["customer_id"] = actor
            if clean.get("owner_id") is None:
                clean["owner_id"] = 1
            if "organization_id" not in clean:
                clean["organization_id"] = self.get("users", clean["customer_id"]).get("organization_id")
            probe = dict(self.columns("tickets"), **clean)
            self.check_mandatory(probe, "create_middle", actor_user)
            mention_users = [self.get("users", m) for m in (mentions or [])]
            for user in mention_users:  # validated before anything is stored: the transaction rolls back
                if not self.agent_access(user, probe, "read"):
                    raise validation_failed("A mentioned user has no agent access to this ticket")
            clean["number"] = self.next_ticket_number()
            clean["created_by_id"] = clean["updated_by_id"] = actor
            ticket = self.insert("tickets", clean)
            self.history_log("created", ticket["id"], actor)
            for tag in (tags.split(",") if isinstance(tags, str) else (tags or [])):
                if str(tag).strip() and self.tag_allowed(str(tag).strip(), actor):
                    self._store_tag(ticket["id"], str(tag).strip(), actor)
            for user in mention_users:
                self._add_mention(ticket["id"], user["id"], actor)
            article = None
            if article_params:
                article = self._create_article(ticket, dict(article_params), actor)
            self.escalation_update(ticket)
            snapshot = copy.deepcopy(ticket)
        self._transaction("create", ticket, article, actor, changes=set(clean), before=None, after=snapshot)
        return ticket, article

    def update_ticket(self, rid: Any, params: Mapping[str, Any], actor: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        with self.lock:
            ticket = self.get("tickets", rid)
            before = copy.deepcopy(ticket)
            params = dict(params)
            article_params = params.pop("article", None)
            params = self.lookup_names("tickets", params)
            clean = self.cleanup("tickets", params, new=False)
            clean.pop("number", None)
            actor_user = self.get("users", actor)
            if not self.is_agent(actor_user):
                for key in ("owner_id", "customer_id", "organization_id", "preferences"):
                    clean.pop(key, None)
            if "title" in clean and not str(clean["title"] or "").strip():
                raise validation_failed("Title can't be blank")
            if "group_id" in clean and clean["group_id"] in (None, ""):
                raise validation_failed("Group can't be blank")
            if "preferences" in clean and isinstance(clean["preferences"], dict):
                merged = dict(ticket.get("preferences") or {})
                merged.update(clean["preferences"])
                clean["preferences"] = merged
            if "customer_id" in clean and "organization_id" not in clean:
                clean["organization_id"] = self.get("users", clean["customer_id"]).get("organization_id")
            self.check_mandatory(dict(ticket, **clean), "edit", actor_user)
            changed = {k for k, v in clean.items() if ticket.get(k) != v}
            ticket.update(copy.deepcopy(clean))
            if "owner_id" in changed:
                ticket["last_owner_update_at"] = self.clock.now()
            self._state_bookkeeping(ticket, before)
            # Rails' update! saves (and stamps updated_by_id) even when nothing changed
            self.touch(ticket, actor)
            self.history_update(ticket, before, actor)
            article = None
            if article_params:
                article = self._create_article(ticket, dict(article_params), actor)
            self.escalation_update(ticket)
            snapshot = copy.deepcopy(ticket)
        self._transaction("update", ticket, article, actor, changes=changed, before=before, after=snapshot)
        return ticket, article

    def _state_bookkeeping(self, ticket: dict[str, Any], before: Mapping[str, Any]) -> None:
        """Ticket#check_close / reset_pending_time (app/models/ticket.rb): close_at on first close,
        last_close_at on every close; pending_time cleared when the state is no longer pending."""
        if ticket.get("state_id") == before.get("state_id"):
            return
        kind = self.state_type(ticket["state_id"])
        if kind == "closed":
            now = self.clock.now()
            ticket["last_close_at"] = now
            if ticket.get("close_at") is None:
                ticket["close_at"] = now
        if kind not in ("pending reminder", "pending action"):
            ticket["pending_time"] = None

    def delete_ticket(self, rid: Any) -> None:
        with self.lock:
            ticket = self.get("tickets", rid)
            del self.tables["tickets"][ticket["id"]]
            for article in self.articles_of(ticket["id"]):
                del self.tables["articles"][article["id"]]
            for mention in [m for m in self.all("mentions") if m["mentionable_id"] == ticket["id"]]:
                del self.tables["mentions"][mention["id"]]
            for row in self.rows_with("histories", ticket["id"]):
                del self.tables["histories"][row["id"]]  # has_history.rb#history_destroy
            self.tags.pop(("Ticket", ticket["id"]), None)

    # ----------------------------------------------------------------- articles

    def _create_article(self, ticket: dict[str, Any], params: dict[str, Any], actor: int) -> dict[str, Any]:
        actor_user = self.get("users", actor)
        params.pop("ticket_id", None)
        if "type" in params and not isinstance(params["type"], dict):
            kind = self.by_name("article_types", params.pop("type"))
            if kind is None:
                raise Unprocessable("No lookup value found for 'type'")
            params["type_id"] = kind["id"]
        if "sender" in params and not isinstance(params["sender"], dict):
            sender = self.by_name("article_senders", params.pop("sender"))
            if sender is None:
                raise Unprocessable("No lookup value found for 'sender'")
            params["sender_id"] = sender["id"]
        params.pop("attachments", None)
        clean = self.cleanup("articles", params, new=True)
        clean.setdefault("type_id", self.by_name("article_types", "note")["id"])
        if clean.get("sender_id") is None:
            clean["sender_id"] = self.by_name("article_senders", "Agent" if self.is_agent(actor_user) else "Customer")["id"]
        if clean.get("body") is None:
            clean["body"] = ""
        if clean.get("from") is None:
            name = f"{actor_user.get('firstname') or ''} {actor_user.get('lastname') or ''}".strip()
            clean["from"] = name or actor_user.get("email") or actor_user.get("login")
        if isinstance(clean.get("internal"), str):
            clean["internal"] = clean["internal"].lower() == "true"
        clean["internal"] = bool(clean.get("internal") or False)
        clean["ticket_id"] = ticket["id"]
        clean["created_by_id"] = clean["updated_by_id"] = actor
        article = self.insert("articles", clean)
        self.history_log("created", article["id"], actor, history_object="Ticket::Article",
                         related_o_id=ticket["id"], related_history_object="Ticket")
        now = article["created_at"]
        sender = self.name_of("article_senders", article["sender_id"])
        kind = self.name_of("article_types", article["type_id"])
        if ticket.get("create_article_type_id") is None:
            ticket["create_article_type_id"] = article["type_id"]
            ticket["create_article_sender_id"] = article["sender_id"]
        ticket["article_count"] = len(self.articles_of(ticket["id"]))
        # app/models/ticket/article/has_ticket_contact_attributes_impact.rb
        if not article["internal"] and kind != "note":
            ticket["last_contact_at"] = now
            if sender == "Customer":
                ticket["last_contact_customer_at"] = now
            elif sender == "Agent":
                ticket["last_contact_agent_at"] = now
                # the first public answer of an agent is the ticket's first response
                if ticket.get("first_response_at") is None:
                    ticket["first_response_at"] = now
        return article

    def create_article(self, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            params = dict(params)
            if params.get("ticket_id") is None:
                raise NotFound("Couldn't find Ticket without an ID")
            ticket = self.get("tickets", params["ticket_id"])
            before = copy.deepcopy(ticket)
            article = self._create_article(ticket, params, actor)
            self.touch(ticket, actor)
            self.escalation_update(ticket)
            snapshot = copy.deepcopy(ticket)
        self._transaction("update", ticket, article, actor, changes={"article"}, before=before, after=snapshot)
        return article

    # ----------------------------------------------------------------- transactions

    def _transaction(self, action: str, ticket: Mapping[str, Any], article: Mapping[str, Any] | None,
                     actor: int, *, changes: Iterable[str], before: Mapping[str, Any] | None,
                     after: Mapping[str, Any]) -> None:
        """TransactionDispatcher: one event per request and ticket, handed to the triggers."""
        event = {"object": "Ticket", "type": action, "ticket_id": ticket["id"],
                 "article_id": article["id"] if article else None, "user_id": actor,
                 "changes": set(changes), "before": before, "after": after,
                 "tags": self.tags_of("Ticket", ticket["id"])}
        self.transactions.append(event)
        if self.on_transaction is not None:
            self.on_transaction(event)
