"""The conversations WebSocket (Django Channels): one socket per client, all of the user's conversations.

Protocol (docs/api.md, "Conversations over WebSocket"): authenticate with the end-user inbox token
(`?token=` or a first frame `{"type": "auth", "token": …}` within COMMS_WS_AUTH_SECONDS), then receive
`message.*`, `receipt`, `typing`, `presence`, `participant.*` events and send `typing`, `ack`
(delivered), `read` and `ping` frames. Close codes: 4401 bad/expired token, 4403 origin refused,
4408 no auth in time, 4429 locked out for guessing tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from comms import errors as kernel_errors
from comms.conversations import presence, realtime
from comms.conversations.errors import ConversationNotFound
from comms.conversations.events import conversation_group, recipient_group
from comms.throttles import auth_failed, auth_locked
from delivery.inbox import recipient_for_token

log = logging.getLogger(__name__)
MAX_FRAME = 16 * 1024
CLOSE_UNAUTHENTICATED, CLOSE_ORIGIN, CLOSE_AUTH_TIMEOUT, CLOSE_LOCKED = 4401, 4403, 4408, 4429


def _request_like(scope: dict) -> SimpleNamespace:
    """The lockout counters key on the client address as for HTTP (comms.throttles)."""
    headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}
    meta = {"REMOTE_ADDR": (scope.get("client") or ("", 0))[0]}
    if "x-forwarded-for" in headers:
        meta["HTTP_X_FORWARDED_FOR"] = headers["x-forwarded-for"]
    return SimpleNamespace(META=meta)


def _authenticate(scope: dict, token: str):
    request = _request_like(scope)
    auth_locked(request)
    try:
        return recipient_for_token(token)
    except kernel_errors.Unauthenticated:
        auth_failed(request, kind="conversation socket token")
        raise


class ConversationConsumer(AsyncJsonWebsocketConsumer):
    recipient = None
    memberships: dict[str, str]

    async def connect(self) -> None:
        self.memberships = {}
        self.conn_id = uuid.uuid4().hex
        self.tasks: list[asyncio.Task] = []
        await self.accept()
        token = parse_qs(self.scope.get("query_string", b"").decode("latin1")).get("token", [""])[0]
        if token:
            await self._login(token)
        else:
            self.tasks.append(asyncio.create_task(self._auth_deadline()))

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.COMMS_WS_AUTH_SECONDS)
        if self.recipient is None:
            await self._refuse(CLOSE_AUTH_TIMEOUT, kernel_errors.Unauthenticated("No auth frame in time."))

    async def _refuse(self, code: int, err: kernel_errors.CommsError) -> None:
        await self.send_json({"type": "error", **err.as_dict()})
        await self.close(code=code, reason=f"{err.code}: {err.message}"[:120])

    async def _login(self, token: str) -> None:
        try:
            recipient = await database_sync_to_async(_authenticate)(self.scope, token)
        except kernel_errors.RateLimited as exc:
            await self._refuse(CLOSE_LOCKED, exc)
            return
        except kernel_errors.Unauthenticated as exc:
            await self._refuse(CLOSE_UNAUTHENTICATED, exc)
            return
        self.recipient = recipient
        await self.channel_layer.group_add(recipient_group(recipient.pk), self.channel_name)
        self.memberships = await database_sync_to_async(realtime.memberships)(recipient.pk)
        for conversation_id in self.memberships:
            await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
        came_online = await database_sync_to_async(presence.connect)(
            recipient_id=str(recipient.pk), conn_id=self.conn_id, ttl=settings.COMMS_PRESENCE_TTL_SECONDS)
        online = await database_sync_to_async(realtime.online_snapshot)(list(self.memberships))
        await self.send_json({"type": "ready", "recipient_id": recipient.external_id,
                              "participants": self.memberships, "online": online})
        if came_online:
            await database_sync_to_async(realtime.announce_presence)(recipient.pk, "online")
        self.tasks.append(asyncio.create_task(self._heartbeat()))
        realtime.ensure_sweeper()

    async def _heartbeat(self) -> None:
        ttl = settings.COMMS_PRESENCE_TTL_SECONDS
        while True:
            await asyncio.sleep(ttl / 3)
            await database_sync_to_async(presence.refresh)(recipient_id=str(self.recipient.pk),
                                                           conn_id=self.conn_id, ttl=ttl)

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            task.cancel()
        if self.recipient is None:
            return
        for conversation_id in self.memberships:
            await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
        await self.channel_layer.group_discard(recipient_group(self.recipient.pk), self.channel_name)
        went_offline = await database_sync_to_async(presence.disconnect)(
            recipient_id=str(self.recipient.pk), conn_id=self.conn_id)
        if went_offline:
            await database_sync_to_async(realtime.announce_presence)(self.recipient.pk, "offline")

    # --- frames from the client -----------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME:
            await self._error(kernel_errors.ValidationFailed(f"Send JSON text frames of at most {MAX_FRAME} bytes."))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error(kernel_errors.InvalidJson())
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self._error(kernel_errors.ValidationFailed('A frame is an object with a "type".'))
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict, **kwargs) -> None:
        kind = content["type"]
        if self.recipient is None:
            if kind == "auth" and isinstance(content.get("token"), str):
                await self._login(content["token"])
            else:
                await self._refuse(CLOSE_UNAUTHENTICATED, kernel_errors.Unauthenticated("Authenticate first."))
            return
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return
        handler = {"typing": self._typing, "ack": self._ack, "read": self._read}.get(kind)
        if handler is None:
            await self._error(kernel_errors.ValidationFailed(f"Unknown frame type '{kind[:40]}'."))
            return
        participant_id = self.memberships.get(str(content.get("conversation_id", "")))
        if participant_id is None:
            await self._error(ConversationNotFound(details={"conversation_id": str(content.get("conversation_id"))[:64]}))
            return
        try:
            await handler(content["conversation_id"], participant_id, content)
        except kernel_errors.CommsError as exc:
            await self._error(exc)

    async def _error(self, err: kernel_errors.CommsError) -> None:
        await self.send_json({"type": "error", **err.as_dict()})

    async def _typing(self, conversation_id: str, participant_id: str, content: dict) -> None:
        await database_sync_to_async(realtime.typing)(conversation_id=conversation_id, participant_id=participant_id)

    async def _ack(self, conversation_id: str, participant_id: str, content: dict) -> None:
        ids = content.get("message_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise kernel_errors.ValidationFailed("message_ids is a list of message ids.")
        await database_sync_to_async(realtime.delivered)(participant_id=participant_id, message_ids=ids)

    async def _read(self, conversation_id: str, participant_id: str, content: dict) -> None:
        index = content.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise kernel_errors.ValidationFailed("index is a non-negative integer.")
        await database_sync_to_async(realtime.read)(participant_id=participant_id, index=index)

    # --- events from the channel layer ------------------------------------------------------------
    async def conv_event(self, message: dict) -> None:
        event = message["event"]
        kind = event.get("type")
        conversation_id = event.get("conversation_id") or (event.get("message") or {}).get("conversation_id")
        mine = self.memberships.get(conversation_id)
        if kind == "typing" and event.get("participant_id") == mine:
            return  # no echo of one's own typing
        if kind == "participant.left" and event["participant"]["id"] == mine:
            self.memberships.pop(conversation_id, None)
            await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
        if "text" in message:
            await self.send(text_data=message["text"])
        else:
            await self.send_json(event)

    async def conv_revoked(self, message: dict) -> None:
        """The recipient was erased (GDPR): their sockets close like a revoked token."""
        await self.close(code=4401)

    async def conv_joined(self, message: dict) -> None:
        """Added to a conversation while connected: subscribe without reconnecting."""
        conversation_id = message["event"]["conversation_id"]
        self.memberships = await database_sync_to_async(realtime.memberships)(self.recipient.pk)
        if conversation_id in self.memberships:
            await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
            await self.send_json({"type": "conversation.joined", "conversation_id": conversation_id,
                                  "participant_id": self.memberships[conversation_id]})
