"""Which running workflow runs a bulk cancel by filter selects (``client.cancel({filter})``, ``{all: true}``).

``@upstash/workflow`` 1.3.3 sends the filter in the query of ``DELETE /v2/workflows/runs``: ``workflowUrl``
(a prefix unless ``workflowUrlExactMatch=true``), ``fromDate``/``toDate`` (the run's creation, ms),
``label``, ``callerIp``, ``flowControlKey`` (of the run's trigger message), ``host``, ``path``; several
values of one filter match any of them, filters combine with AND. At most ``count`` runs, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qstash_sim.core.filters import host_of, path_of
from qstash_sim.domain.message import Message
from qstash_sim.domain.workflow import WorkflowRun

if TYPE_CHECKING:
    from qstash_sim.core.workflow import Workflows

__all__ = ["RunFilter", "running_matching"]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Run attributes to match; ``None`` (the default) is no condition."""

    urls: frozenset[str] | None = None
    exact: bool = False  # urls must match exactly (else they are prefixes)
    labels: frozenset[str] | None = None
    caller_ips: frozenset[str] | None = None
    flow_keys: frozenset[str] | None = None
    hosts: frozenset[str] | None = None  # lower case
    paths: frozenset[str] | None = None
    from_ms: int | None = None  # inclusive
    to_ms: int | None = None

    @property
    def empty(self) -> bool:
        """No condition at all (``{all: true}``)."""
        return all(getattr(self, f) is None for f in ("urls", "labels", "caller_ips", "flow_keys", "hosts", "paths"))

    def matches(self, run: WorkflowRun, trigger: Message | None) -> bool:
        """``run`` (with its trigger message, if still kept) meets every condition."""
        url = run.url
        if self.urls is not None and not any(url == u if self.exact else url.startswith(u) for u in self.urls):
            return False
        if self.labels is not None and not self.labels.intersection(run.labels):
            return False
        if self.hosts is not None and host_of(url) not in self.hosts:
            return False
        if self.paths is not None and path_of(url) not in self.paths:
            return False
        if self.from_ms is not None and run.created_ms < self.from_ms:
            return False
        if self.to_ms is not None and run.created_ms > self.to_ms:
            return False
        if self.caller_ips is not None and (trigger is None or trigger.caller_ip not in self.caller_ips):
            return False
        flow = trigger.flow_control if trigger is not None else None
        return self.flow_keys is None or (flow is not None and flow.key in self.flow_keys)


def running_matching(workflows: Workflows, account: str, flt: RunFilter, count: int) -> list[str]:
    """The ids of at most ``count`` running runs of ``account`` that ``flt`` matches, oldest first."""
    acc = workflows.core.world.accounts.find(account)
    out: list[str] = []
    for run in workflows.all_runs(account):
        if len(out) >= count:
            break
        if run.finished:
            continue
        trigger = acc.messages.get(run.trigger_message_id) if acc is not None else None
        if flt.matches(run, trigger):
            out.append(run.run_id)
    return out
