"""The registration cache: bindings by key, found by the user a call is addressed to.

The supervisor owns the authoritative cache and is its single writer; every change it makes
becomes a ``BindingEvent`` that it pushes to the workers, and each worker keeps a replica by
``apply``-ing those events, so retargeting a call is a local read (DESIGN.md section 1).
``RegistrationCache`` is the small interface both sides program against, so that a shared
backend (Redis, for several nodes) can replace ``MemoryCache`` later.

Rules:

1. One binding per ``BindingKey``; a put with an existing key replaces the binding, and
   every index follows it (the client may come back on another connection, and with it
   another alias or user).
2. ``lookup(user)`` first looks for a binding whose *alias* user is ``user`` (the PBX calls
   the exact Contact it was given), then for the most recently refreshed binding of the AOR
   user ``user`` (the latest ``client_expires_at``; on a tie, the latest put).
3. Listeners run synchronously, in subscription order, after the change is complete. A
   listener that raises does not stop the others, nor leave the cache half-changed: every
   listener sees every event, then the error propagates to the caller that made the change
   (one error as is, several as an ``ExceptionGroup``). Swallowing it would hide a bug in a
   listener; raising at once would leave later listeners, and so replicas, behind.
4. No clock: expiry happens when the holder calls ``expire(now)`` at ``next_expiry()``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar, final

from rtcgw.registrations.binding import Binding, BindingKey

__all__ = ["BindingEvent", "Listener", "MemoryCache", "RegistrationCache"]

_Name = TypeVar("_Name", bound=Hashable)
#: name -> keys of the bindings with that name; a dict rather than a set because its order
#: (the order of the puts) decides ties in ``lookup``, and must not depend on hash seeds.
_Index: TypeAlias = dict[_Name, dict[BindingKey, None]]

#: The expiry heap is compacted when stale entries outnumber live ones by this many.
_HEAP_SLACK = 64


@final
@dataclass(frozen=True, slots=True)
class BindingEvent:
    """A change of the cache: ``binding`` was put, or removed if ``removed``, for ``reason``.

    ``reason`` is the writer's word: "registered", "refreshed", "unregistered", "expired",
    "connection closed" or anything else it passes.
    """

    binding: Binding
    removed: bool
    reason: str


Listener: TypeAlias = Callable[[BindingEvent], None]


class RegistrationCache(Protocol):
    """What a registration cache backend provides: the interface of DESIGN.md section 1."""

    def put(self, binding: Binding, reason: str) -> BindingEvent:
        """Add ``binding``, or replace the one with its key, and tell the listeners."""
        ...

    def remove(self, key: BindingKey, reason: str) -> Binding | None:
        """Remove the binding with ``key`` and tell the listeners; None if there was none."""
        ...

    def lookup(self, user: str) -> Binding | None:
        """The binding a request for ``user`` (alias or AOR user) goes to, or None."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every later change; returns the function that stops it."""
        ...


def _add(index: _Index[_Name], name: _Name, key: BindingKey) -> None:
    index.setdefault(name, {})[key] = None


def _discard(index: _Index[_Name], name: _Name, key: BindingKey) -> None:
    keys = index.get(name)
    if keys is None:
        return
    keys.pop(key, None)
    if not keys:
        # Empty entries would make the memory grow with every user ever seen.
        del index[name]


@final
class MemoryCache:
    """A registration cache in this process's memory, indexed for every lookup it offers.

    Expiry uses a heap with lazy deletion: a replaced or removed binding leaves its entry
    behind, recognised as stale by a sequence number, and the heap is rebuilt from the live
    bindings when stale entries dominate, so its size stays within twice the cache's (plus a
    constant slack that keeps small caches from rebuilding on every change).
    """

    __slots__ = (
        "_bindings",
        "_by_alias_user",
        "_by_aor",
        "_by_connection",
        "_by_user",
        "_expiries",
        "_expiry_seq",
        "_listeners",
        "_next_listener",
        "_next_seq",
    )

    def __init__(self) -> None:
        self._bindings: dict[BindingKey, Binding] = {}
        self._by_user: _Index[str] = {}
        self._by_alias_user: _Index[str] = {}
        self._by_aor: _Index[str] = {}
        self._by_connection: _Index[int] = {}
        self._expiries: list[tuple[float, int, BindingKey]] = []
        self._expiry_seq: dict[BindingKey, int] = {}
        self._next_seq = 0
        self._listeners: dict[int, Listener] = {}
        self._next_listener = 0

    # -- changes ----------------------------------------------------------------------------

    def put(self, binding: Binding, reason: str) -> BindingEvent:
        """Add ``binding``, or replace the one with its key, and tell the listeners.

        Raises:
            Exception: whatever a listener raised, after the change and every listener.
        """
        self._store(binding)
        event = BindingEvent(binding, removed=False, reason=reason)
        self._notify((event,))
        return event

    def remove(self, key: BindingKey, reason: str) -> Binding | None:
        """Remove the binding with ``key`` and tell the listeners; None (and no event) if absent."""
        binding = self._drop(key)
        if binding is not None:
            self._notify((BindingEvent(binding, removed=True, reason=reason),))
        return binding

    def remove_connection(
        self, connection_id: int, reason: str = "connection closed"
    ) -> tuple[Binding, ...]:
        """Remove every binding reached over ``connection_id``; returns them."""
        keys = tuple(self._by_connection.get(connection_id, ()))
        return self._drop_all(keys, reason)

    def expire(self, now: float, reason: str = "expired") -> tuple[Binding, ...]:
        """Remove every binding whose client side ended at or before ``now``, earliest first."""
        keys: list[BindingKey] = []
        while self._expiries and self._expiries[0][0] <= now:
            _, seq, key = heapq.heappop(self._expiries)
            if self._expiry_seq.get(key) == seq:
                keys.append(key)
        return self._drop_all(keys, reason)

    def apply(self, event: BindingEvent) -> None:
        """Mirror a change the owning cache made, and pass ``event`` itself to the listeners.

        A removal of a binding this replica does not hold still reaches the listeners: the
        owner's word is what counts, and a replica that is catching up must not lose it.
        """
        if event.removed:
            self._drop(event.binding.key)
        else:
            self._store(event.binding)
        self._notify((event,))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every later change; returns the function that stops it."""
        token = self._next_listener
        self._next_listener += 1
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: BindingKey) -> Binding | None:
        """The binding with ``key``, or None."""
        return self._bindings.get(key)

    def lookup(self, user: str) -> Binding | None:
        """The binding with alias user ``user``, else the latest refreshed of AOR user ``user``."""
        keys = self._by_alias_user.get(user) or self._by_user.get(user)
        if not keys:
            return None
        latest: Binding | None = None
        for key in keys:
            binding = self._bindings[key]
            # ">=": on a tie the later put wins, as the index keeps the order of the puts.
            if latest is None or binding.client_expires_at >= latest.client_expires_at:
                latest = binding
        return latest

    def is_registered(self, user: str) -> bool:
        """True if ``lookup(user)`` finds a binding."""
        return user in self._by_alias_user or user in self._by_user

    def of_connection(self, connection_id: int) -> tuple[Binding, ...]:
        """The bindings reached over ``connection_id``, in the order they were put."""
        return self._resolve(self._by_connection.get(connection_id, ()))

    def of_aor(self, aor: str) -> tuple[Binding, ...]:
        """The bindings of the address-of-record ``aor``, in the order they were put."""
        return self._resolve(self._by_aor.get(aor, ()))

    def next_expiry(self) -> float | None:
        """The earliest ``client_expires_at`` in the cache, or None if it is empty."""
        while self._expiries:
            _, seq, key = self._expiries[0]
            if self._expiry_seq.get(key) == seq:
                return self._expiries[0][0]
            heapq.heappop(self._expiries)
        return None

    def __len__(self) -> int:
        return len(self._bindings)

    def __iter__(self) -> Iterator[Binding]:
        # A snapshot, so that a listener or loop body may change the cache meanwhile.
        return iter(tuple(self._bindings.values()))

    def __contains__(self, key: object) -> bool:
        return key in self._bindings

    # -- internals --------------------------------------------------------------------------

    def _resolve(self, keys: Iterable[BindingKey]) -> tuple[Binding, ...]:
        return tuple(self._bindings[key] for key in keys)

    def _store(self, binding: Binding) -> None:
        key = binding.key
        old = self._bindings.pop(key, None)
        if old is not None:
            self._unindex(old)
        self._bindings[key] = binding
        _add(self._by_user, binding.user, key)
        alias_user = binding.alias_user
        if alias_user:
            _add(self._by_alias_user, alias_user, key)
        _add(self._by_aor, binding.aor, key)
        _add(self._by_connection, binding.connection_id, key)
        self._push_expiry(key, binding.client_expires_at)

    def _drop(self, key: BindingKey) -> Binding | None:
        binding = self._bindings.pop(key, None)
        if binding is not None:
            self._unindex(binding)
            del self._expiry_seq[key]
            self._compact_expiries()
        return binding

    def _drop_all(self, keys: Iterable[BindingKey], reason: str) -> tuple[Binding, ...]:
        removed = tuple(b for b in map(self._drop, keys) if b is not None)
        self._notify(tuple(BindingEvent(b, removed=True, reason=reason) for b in removed))
        return removed

    def _unindex(self, binding: Binding) -> None:
        key = binding.key
        _discard(self._by_user, binding.user, key)
        _discard(self._by_alias_user, binding.alias_user, key)
        _discard(self._by_aor, binding.aor, key)
        _discard(self._by_connection, binding.connection_id, key)

    def _push_expiry(self, key: BindingKey, expires_at: float) -> None:
        seq = self._next_seq
        self._next_seq += 1
        self._expiry_seq[key] = seq
        heapq.heappush(self._expiries, (expires_at, seq, key))
        self._compact_expiries()

    def _compact_expiries(self) -> None:
        if len(self._expiries) > 2 * len(self._bindings) + _HEAP_SLACK:
            self._expiries = [
                (self._bindings[k].client_expires_at, s, k) for k, s in self._expiry_seq.items()
            ]
            heapq.heapify(self._expiries)

    def _notify(self, events: tuple[BindingEvent, ...]) -> None:
        errors: list[Exception] = []
        for event in events:
            # A snapshot: a listener may subscribe or unsubscribe while being called.
            for listener in tuple(self._listeners.values()):
                try:
                    listener(event)
                except Exception as error:  # re-raised below, see rule 3 of the module
                    errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("registration cache listeners failed", errors)
