"""Tags and mentions of tickets.

Tags (app/models/tag.rb, tags_controller.rb, policies/controllers/tags_controller_policy.rb):
- add/remove need agent 'change' access to the ticket's group (403 otherwise);
- a tag that does not exist yet is refused (403) unless the ``tag_new`` setting is on or the
  user has admin.tag (Tag.tag_allowed?); duplicates are found case-insensitively and are a
  no-op (answer ``true``, nothing written);
- a change touches the ticket (touch_reference_by_params: updated_at only, updated_by kept)
  and runs an update transaction (Tag includes HasTransactionDispatcher), so triggers fire;
  the touch commits, so the escalation is recomputed (app/models/ticket/escalation.rb
  after_commit): a tag that makes another SLA match changes the ticket's escalation;
- Tag::WritesToTicketHistory logs 'added' / 'removed' with attribute 'tag'.

Mentions (app/models/mention.rb, mentions_controller.rb, policies/controllers/mentions_controller_policy.rb,
lib/validations/mention_validator.rb):
- POST subscribes the current user (X-On-Behalf-Of makes that someone else): the policy
  refuses (403) a user who cannot be mentioned (no agent read access to the group);
  with ``user_id`` of another user the caller needs agent 'change' access and the
  mentioned user is checked by the validator: 422 ``A mentioned user has no agent access
  to this ticket``; subscribing twice is a no-op; the answer is ``true`` (201);
- a new or removed mention updates the ticket with updated_by = the mention's creator
  (Mention#update_mentionable), which runs an update transaction;
- DELETE removes only one's own mention (403 otherwise).
"""

from __future__ import annotations

import copy
from typing import Any

from integrations.zammad_standin.errors import Forbidden, NotFound, ServerError, Unprocessable, validation_failed
from integrations.zammad_standin.schema import ATTRIBUTE_OBJECTS


class TagsMentionsMixin:
    """Mixed into State."""

    # ----------------------------------------------------------------- tags

    def tag_allowed(self, name: str, user_id: int) -> bool:
        """Tag.tag_allowed? (app/models/tag.rb)."""
        if self.settings.get("tag_new") not in (None, False, "", "false"):
            return True
        user = self.find("users", user_id)
        if user is not None and self.is_admin(user):  # admin.tag
            return True
        return name in self.tag_items

    def _store_tag(self, ticket_id: int, item: str, actor: int) -> bool:
        tags = self.tags.setdefault(("Ticket", ticket_id), [])
        if any(t.lower() == item.lower() for t in tags):  # Tag.tags_include? compares LOWER()
            return False
        tags.append(item)
        if item not in self.tag_items:
            self.tag_items.append(item)
        self.history_log("added", ticket_id, actor, history_attribute="tag", value_to=item)
        return True

    def tag_add(self, object_name: str, o_id: Any, item: str, actor: int) -> bool:
        return self._tag_change(object_name, o_id, item, actor, add=True)

    def tag_remove(self, object_name: str, o_id: Any, item: str, actor: int) -> bool:
        return self._tag_change(object_name, o_id, item, actor, add=False)

    def _tag_change(self, object_name: str, o_id: Any, item: str, actor: int, *, add: bool) -> bool:
        item = str(item or "").strip()
        table = ATTRIBUTE_OBJECTS.get(object_name)
        if table != "tickets":
            # TagsControllerPolicy#klass is nil for other objects: NoMethodError -> 500
            raise ServerError("undefined method `find' for nil:NilClass", human=False)
        with self.lock:
            record = self.get("tickets", o_id)
            user = self.get("users", actor)
            if not self.agent_access(user, record, "change"):
                raise Forbidden("Not authorized")
            if not item:
                raise Unprocessable("Need object, o_id and item.")
            if add and not self.tag_allowed(item, actor):
                raise Forbidden("Not authorized")  # raise Exceptions::Forbidden -> 'Not authorized'
            if add:
                changed = self._store_tag(record["id"], item, actor)
            else:
                tags = self.tags.setdefault(("Ticket", record["id"]), [])
                changed = item in tags
                if changed:
                    tags.remove(item)
                    self.history_log("removed", record["id"], actor, history_attribute="tag", value_to=item)
            if not changed:
                return True  # idempotent: nothing changed, no transaction
            before = copy.deepcopy(record)
            record["updated_at"] = self.clock.now()  # touch: updated_by_id is kept
            self.escalation_update(record)  # ticket/escalation.rb: after_commit runs on touch too (tags select SLAs)
            snapshot = copy.deepcopy(record)
        self._transaction("update", record, None, actor, changes={"tags"}, before=before, after=snapshot)
        return True

    # ----------------------------------------------------------------- mentions

    def _add_mention(self, ticket_id: int, user_id: int, actor: int) -> dict[str, Any] | None:
        """Mention.subscribe!: a no-op when already subscribed."""
        for mention in self.all("mentions"):
            if mention["mentionable_id"] == ticket_id and mention["user_id"] == user_id:
                return None
        mention = self.insert("mentions", {"mentionable_type": "Ticket", "mentionable_id": ticket_id,
                                           "user_id": user_id, "created_by_id": actor, "updated_by_id": actor})
        self.history_log("created", mention["id"], actor, history_object="Mention", related_o_id=ticket_id,
                         related_history_object="Ticket", value_to=str(user_id))
        return mention

    def _mentionable_ticket(self, mentionable_type: Any, mentionable_id: Any) -> dict[str, Any]:
        if mentionable_type != "Ticket":
            raise Unprocessable("The parameter 'mentionable_type' is invalid.")
        try:
            return self.get("tickets", mentionable_id)
        except NotFound:
            raise Forbidden("Not authorized") from None  # the policy cannot find it (mention_spec.rb)

    def add_mention(self, mentionable_type: Any, mentionable_id: Any, user_id: int,
                    target_user_id: Any = None) -> bool:
        """POST /mentions: subscribe ``target_user_id`` (default: the current user)."""
        with self.lock:
            ticket = self._mentionable_ticket(mentionable_type, mentionable_id)
            current = self.get("users", user_id)
            if target_user_id not in (None, "") and int(target_user_id) != user_id:
                if not self.agent_access(current, ticket, "change"):
                    raise Forbidden("Not authorized")
                target = self.get("users", target_user_id)
                if not self.agent_access(target, ticket, "read"):
                    raise validation_failed("A mentioned user has no agent access to this ticket")
            else:
                target = current
                if not self.agent_access(current, ticket, "read"):
                    raise Forbidden("Not authorized")  # Mention.mentionable? is false
            mention = self._add_mention(ticket["id"], target["id"], user_id)
            if mention is None:
                return True
            before = copy.deepcopy(ticket)
            self.touch(ticket, user_id)  # Mention#update_mentionable: updated_by = the mention's creator
            snapshot = copy.deepcopy(ticket)
        changes = {"updated_by_id"} if before.get("updated_by_id") != snapshot.get("updated_by_id") else set()
        self._transaction("update", ticket, None, user_id, changes=changes, before=before, after=snapshot)
        return True

    def mentions_of(self, mentionable_type: Any, mentionable_id: Any, user_id: int) -> list[dict[str, Any]]:
        """GET /mentions: the ticket's mentions, for users who may be mentioned there."""
        with self.lock:
            ticket = self._mentionable_ticket(mentionable_type, mentionable_id)
            if not self.agent_access(self.get("users", user_id), ticket, "read"):
                raise Forbidden("Not authorized")
            return [m for m in self.all("mentions") if m["mentionable_id"] == ticket["id"]]

    def remove_mention(self, rid: Any, user_id: int) -> dict[str, Any]:
        with self.lock:
            mention = self.find("mentions", rid)
            if mention is None or mention["user_id"] != user_id:
                raise Forbidden("Not authorized")  # MentionsControllerPolicy#destroy?: own mentions only
            del self.tables["mentions"][mention["id"]]
            self.history_log("removed", mention["id"], mention["created_by_id"], history_object="Mention",
                             related_o_id=mention["mentionable_id"], related_history_object="Ticket",
                             value_to=str(mention["user_id"]))
            ticket = self.find("tickets", mention["mentionable_id"])
            if ticket is None:
                return mention
            before = copy.deepcopy(ticket)
            self.touch(ticket, user_id)
            snapshot = copy.deepcopy(ticket)
        self._transaction("update", ticket, None, user_id, changes=set(), before=before, after=snapshot)
        return mention
