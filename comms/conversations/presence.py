"""Presence: which recipients have at least one live WebSocket, across every ASGI process.

Each connection is a member of the recipient's sorted set, scored by its expiry; the consumer refreshes
it on a heartbeat. A user with two tabs stays online until the last one closes, and a killed process
leaves no one online for ever: its members expire, and the sweep (any process, atomically in Lua)
announces those recipients offline.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from comms.redis import redis_client

log = logging.getLogger(__name__)

PREFIX = "comms:presence:"
INDEX = "comms:presence:index"

_CONNECT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local before = redis.call('ZCARD', KEYS[1])
local expires = tonumber(ARGV[1]) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 2))
redis.call('ZADD', KEYS[2], expires, ARGV[4])
return before
"""
_DISCONNECT = """
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then redis.call('ZREM', KEYS[2], ARGV[3]) end
return {removed, left}
"""
_SWEEP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
local gone = {}
for _, rid in ipairs(due) do
  local key = ARGV[2] .. rid
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', KEYS[1], rid)
    table.insert(gone, rid)
  else
    redis.call('ZADD', KEYS[1], top[2], rid)
  end
end
return gone
"""


def _key(recipient_id: str) -> str:
    return f"{PREFIX}{recipient_id}"


def connect(*, recipient_id: str, conn_id: str, ttl: float) -> bool:
    """Register one connection; True when the recipient just came online (their first live connection)."""
    before = redis_client().eval(_CONNECT, 2, _key(recipient_id), INDEX, time.time(), conn_id, ttl, recipient_id)
    return int(before) == 0


def refresh(*, recipient_id: str, conn_id: str, ttl: float) -> None:
    connect(recipient_id=recipient_id, conn_id=conn_id, ttl=ttl)


def disconnect(*, recipient_id: str, conn_id: str) -> bool:
    """Drop one connection; True when it was the recipient's last one (and not already swept)."""
    removed, left = redis_client().eval(_DISCONNECT, 2, _key(recipient_id), INDEX, time.time(), conn_id,
                                        recipient_id)
    return int(removed) == 1 and int(left) == 0


def sweep() -> list[str]:
    """Recipients whose every connection expired (their process died): now offline, each returned once."""
    gone = redis_client().eval(_SWEEP, 1, INDEX, time.time(), PREFIX)
    return [g.decode() if isinstance(g, bytes) else str(g) for g in gone]


def online(recipient_ids: list[str]) -> set[str]:
    now = time.time()
    pipe = redis_client().pipeline(transaction=False)
    for rid in recipient_ids:
        pipe.zcount(_key(rid), now, "+inf")
    return {rid for rid, n in zip(recipient_ids, pipe.execute()) if n}


def participant_online(*, participant) -> bool:
    """COMMS_CONVERSATIONS_PRESENCE's default: does the participant's recipient have a live WebSocket on
    any ASGI process? Offline digests skip those who do.

    Redis saying nothing (no live connection, or Redis unreachable) answers False, and last_seen_at
    — which offline.py has already filtered on — decides alone.
    """
    if not participant.recipient_id:
        return False
    try:
        return bool(online([str(participant.recipient_id)]))
    except RedisError:
        log.warning("presence unavailable; last_seen_at decides whether participant %s is offline", participant.pk)
        return False
