"""Filters and bulk selections from the wire: query parameters (qstash-js: repeated parameters, dates in ms)
and JSON bodies (qstash-py: ``{"messageIds": [...]}``, ``{"dlqIds": [...]}``), united.

The contract has validated and coerced every value (arrays, integers); this only gathers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qstash_sim.core.filters import Filter, Selection, unique
from qstash_sim.http.surface import Ctx

__all__ = ["filter_of", "selection_of"]

# query parameter -> Filter field (values are lists after the contract's coercion)
_LISTS = {
    "url": "urls",
    "topicName": "topic_names",
    "queueName": "queue_names",
    "scheduleId": "schedule_ids",
    "label": "labels",
    "flowControlKey": "flow_keys",
    "host": "hosts",
    "path": "paths",
    "callerIp": "caller_ips",
    "callerIP": "caller_ips",
    "responseStatus": "response_statuses",
}


def _values(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _gather(*sources: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for src in sources:
        for key, attr in _LISTS.items():
            if key in src:
                values = _values(src[key])
                if attr == "hosts":
                    values = [str(v).lower() for v in values]
                fields.setdefault(attr, [])
                fields[attr].extend(values)
        for key, attr in (("fromDate", "from_ms"), ("toDate", "to_ms")):
            if src.get(key) is not None:
                fields[attr] = int(src[key])
    return fields


def filter_of(ctx: Ctx, *, message_id_keys: Iterable[str] = ("messageId",)) -> Filter:
    """The filter named by the query (and, for bulk calls, the JSON body's filter keys)."""
    body = ctx.json if isinstance(ctx.json, dict) else {}
    fields = _gather(ctx.query, body)
    ids: list[str] = []
    for key in message_id_keys:
        ids.extend(_values(ctx.query.get(key)))
    if ids:
        fields["message_ids"] = ids
    return Filter.of(**fields)


def selection_of(ctx: Ctx, ids_key: str) -> Selection:
    """Ids from the query and the body united (then exactly those; ``[]`` selects nothing), else the filter."""
    body = ctx.json if isinstance(ctx.json, dict) else {}
    ids: list[str] | None = None
    if ids_key in ctx.query:
        ids = list(_values(ctx.query[ids_key]))
    if ids_key in body:
        ids = (ids or []) + list(_values(body[ids_key]))
    if ids is not None:
        return Selection(unique(ids))
    keys = ("messageId",) if ids_key == "dlqIds" else ()
    return Selection(None, filter_of(ctx, message_id_keys=keys))
