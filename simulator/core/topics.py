"""URL groups (QStash's topics): their endpoints, and publishing to every endpoint at once.

A publish, an enqueue, a batch item or a schedule fire naming a group creates **one message per endpoint**,
in the group's order; each is delivered to its endpoint's URL with ``Upstash-Topic-Name`` (the message's
``topic_name``) and keeps its own id, retries and DLQ entry. Deduplication is per endpoint: the same
``Upstash-Deduplication-Id`` sent to the group twice deduplicates every endpoint's message.

Stores are bounded: at most :data:`MAX_URL_GROUPS` groups per account and :data:`MAX_ENDPOINTS` endpoints
per group (QStash answers a plan limit with 412, and so does the simulator).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from qstash_sim.domain.account import Account
from qstash_sim.domain.commands import Caller, PublishCommand, PublishResult
from qstash_sim.domain.message import Message
from qstash_sim.domain.schedule import Schedule
from qstash_sim.domain.topic import Endpoint, UrlGroup
from qstash_sim.errors import ApiError, BadRequest, NotFound

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = [
    "MAX_ENDPOINTS",
    "MAX_URL_GROUPS",
    "add_endpoints",
    "delete_url_group",
    "fire_url_group",
    "get_url_group",
    "list_url_groups",
    "publish_to_group",
    "remove_endpoints",
]

MAX_URL_GROUPS = 1000  # per account
MAX_ENDPOINTS = 1000  # per group


def _limit(message: str) -> ApiError:
    return ApiError(message, status=412)


def get_url_group(core: SimulatorCore, caller: Caller, name: str) -> UrlGroup:
    """The caller's URL group ``name``, or 404."""
    group = core.account(caller.account).url_groups.get(name)
    if group is None:
        raise NotFound(f"url group {name} not found")
    return group


def list_url_groups(core: SimulatorCore, caller: Caller) -> list[UrlGroup]:
    """The caller's URL groups, oldest first."""
    return sorted(core.account(caller.account).url_groups.values(), key=lambda g: (g.created_ms, g.name))


def add_endpoints(core: SimulatorCore, caller: Caller, name: str, endpoints: list[Endpoint]) -> UrlGroup:
    """Add or update endpoints of group ``name`` (created if missing).

    An endpoint with a ``name`` replaces the group's endpoint of that name; one without replaces the
    endpoint with its URL; any other is appended. 412 past the caps (nothing changed then).
    """
    acc = core.account(caller.account)
    now = core.world.now
    group = acc.url_groups.get(name)
    if group is None:
        if len(acc.url_groups) >= MAX_URL_GROUPS:
            raise _limit(f"url group {name}: at most {MAX_URL_GROUPS} URL groups per account")
        group = UrlGroup(name=name, created_ms=now, updated_ms=now)
    merged = list(group.endpoints)
    for ep in endpoints:
        core.refuse_self(ep.url, "body /endpoints/url")
        if ep.name is not None:
            at = next((i for i, e in enumerate(merged) if e.name == ep.name), None)
        else:
            at = next((i for i, e in enumerate(merged) if e.url == ep.url and e.name is None), None)
        if at is None:
            merged.append(Endpoint(ep.url, ep.name))
        else:
            merged[at] = Endpoint(ep.url, ep.name)
    if len(merged) > MAX_ENDPOINTS:
        raise _limit(f"url group {name}: at most {MAX_ENDPOINTS} endpoints per group, this would make {len(merged)}")
    group.endpoints = merged
    group.updated_ms = now
    acc.url_groups[name] = group
    return group


def _targeting(acc: Account, name: str) -> Schedule | None:
    return next((s for s in acc.schedules.values() if s.url_group and s.destination == name), None)


def remove_endpoints(
    core: SimulatorCore, caller: Caller, name: str, selectors: list[tuple[str | None, str | None]]
) -> UrlGroup:
    """Remove the endpoints matching any ``(url, name)`` selector (each given part must match).

    Selectors that match nothing are skipped. A group left without endpoints is deleted (unless a schedule
    still targets it, which keeps it, empty); the group is returned as it is (or was) after the change.
    """
    acc = core.account(caller.account)
    group = get_url_group(core, caller, name)

    def selected(e: Endpoint) -> bool:
        return any((url is None or e.url == url) and (nm is None or e.name == nm) for url, nm in selectors)

    group.endpoints = [e for e in group.endpoints if not selected(e)]
    group.updated_ms = core.world.now
    if not group.endpoints and _targeting(acc, name) is None:
        del acc.url_groups[name]
    return group


def delete_url_group(core: SimulatorCore, caller: Caller, name: str) -> None:
    """Delete group ``name``; messages already created go on. 400 while a schedule targets it."""
    acc = core.account(caller.account)
    get_url_group(core, caller, name)
    sched = _targeting(acc, name)
    if sched is not None:
        raise BadRequest(f"url group {name}: schedule {sched.schedule_id} publishes to it; delete the schedule first")
    del acc.url_groups[name]


def publish_to_group(core: SimulatorCore, caller: Caller, cmd: PublishCommand, name: str) -> list[PublishResult]:
    """Publish ``cmd`` to every endpoint of group ``name`` (its ``settings.url`` is ignored), in order."""
    group = get_url_group(core, caller, name)
    return [core.publish(caller, cmd) for cmd in endpoint_commands(cmd, group)]


def endpoint_commands(cmd: PublishCommand, group: UrlGroup) -> list[PublishCommand]:
    """One command per endpoint of ``group``: its URL, the group's name, a per-endpoint deduplication id."""
    out: list[PublishCommand] = []
    for ep in group.endpoints:
        s = cmd.settings
        dedup = f"{s.dedup_id}\x00{group.name}\x00{ep.url}" if s.dedup_id else None
        settings = dataclasses.replace(s, url=ep.url, headers=dict(s.headers), labels=list(s.labels), dedup_id=dedup)
        out.append(PublishCommand(settings, cmd.body, cmd.queue, topic_name=group.name, endpoint_name=ep.name))
    return out


def fire_url_group(core: SimulatorCore, acc: Account, sched: Schedule, fire_ms: int) -> list[Message]:
    """A schedule's fire to a URL group: one message per endpoint, each charged and journalled."""
    group = acc.url_groups.get(sched.destination)
    now = core.world.now
    if group is None or not group.endpoints:
        core.world.journal.warn(
            now,
            f"schedule {sched.schedule_id}: url group {sched.destination} has no endpoints; nothing published",
            account=sched.account,
        )
        return []
    return [core.fire_message(acc, sched, fire_ms, ep.url, group.name, ep.name) for ep in group.endpoints]
