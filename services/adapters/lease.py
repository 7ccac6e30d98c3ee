"""A lease (租约) in a JetStream key-value bucket: one holder at a time among processes on any
machines, taken over once its holder stops renewing it.

The value names the owner and the wall-clock time until which the lease holds; every change
is a compare-and-set on the key's revision, so of two processes trying at once one wins. The
intake leases its partitions the same way (services/intake.py); this one is for a single key,
as the standby projector processes of a cluster use it (services/projector.py).
"""

from __future__ import annotations

import contextlib
import time

import orjson
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class Lease:
    """`key` of `bucket`, held by `owner` for `ttl_s` seconds after each take or renewal."""

    def __init__(self, kv: KeyValue, key: str, owner: str, ttl_s: float) -> None:
        self.kv = kv
        self.key = key
        self.owner = owner
        self.ttl_s = ttl_s
        self.revision: int | None = None
        self.renewed = 0.0
        """Monotonic time of the last take or renewal the server confirmed."""

    def _value(self) -> bytes:
        return orjson.dumps({"owner": self.owner, "until": time.time() + self.ttl_s})

    @property
    def held(self) -> bool:
        """Held as far as this process knows: taken, and confirmed within the TTL (past it,
        another process may have taken it over, so the holder must behave as if it had not)."""
        return self.revision is not None and time.monotonic() - self.renewed < self.ttl_s

    async def try_take(self) -> bool:
        """Take the lease if it is free or has expired; True if this process holds it now."""
        try:
            entry = await self.kv.get(self.key)
        except KeyNotFoundError:
            entry = None
        try:
            if entry is None or entry.value is None or not entry.value:
                revision = await self.kv.create(self.key, self._value())
            else:
                held = orjson.loads(entry.value)
                if held.get("owner") != self.owner and float(held.get("until", 0)) > time.time():
                    return False
                revision = await self.kv.update(self.key, self._value(), last=entry.revision)
        except KeyWrongLastSequenceError:
            return False  # another process took it first
        except Exception as e:  # nats-py raises a plain APIError for some CAS failures
            if "wrong last sequence" in str(e):
                return False
            raise
        self.revision, self.renewed = revision, time.monotonic()
        return True

    async def renew(self) -> bool:
        """Extend the lease; False once it is lost (taken by another after it expired). A
        server that does not answer (a node lost, a leader being elected) is not a loss by
        itself: `held` turns False once the TTL has passed without a renewal."""
        if self.revision is None:
            return False
        try:
            self.revision = await self.kv.update(self.key, self._value(), last=self.revision)
        except KeyWrongLastSequenceError:
            self.revision = None
            return False
        except Exception as e:
            if "wrong last sequence" in str(e):
                self.revision = None
                return False
            return self.held
        self.renewed = time.monotonic()
        return True

    async def release(self) -> None:
        """Give the lease back so that a standby takes it at once, not after the TTL."""
        revision, self.revision = self.revision, None
        if revision is not None:
            with contextlib.suppress(Exception):  # expired and taken meanwhile: nothing to give
                await self.kv.delete(self.key, last=revision)


async def bucket_keys(js: JetStreamContext, bucket: str) -> list[str]:
    """The keys of a lease bucket, in one request that times out like any other.

    Not `KeyValue.keys()`: nats-py lists keys through a push watcher whose iteration has no
    timeout, so a watcher created while a node goes (its consumer's first messages never come)
    waits for ever, and with it the loop that should renew or take the leases (seen in the
    failover test: an intake stopped tending its leases for good after a node was killed). The
    stream's per-subject counts name the same keys; a deleted key's marker is still counted,
    so its `get` finds nothing, as it does for a key deleted between the two calls."""
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    return sorted(subject.removeprefix(prefix) for subject in info.state.subjects or {})
