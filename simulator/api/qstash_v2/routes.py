"""The native QStash surface's routing table: ``operationId`` (``qstash.*`` in ``openapi.yaml``) -> handler."""

from __future__ import annotations

from qstash_sim.api.qstash_v2 import dlq, keys, logs, messages, publish, queues, schedules, topics
from qstash_sim.http.surface import Handler

HANDLERS: dict[str, Handler] = {
    "qstash.publish": publish.publish,
    "qstash.enqueue": publish.enqueue,
    "qstash.batch": publish.batch,
    "qstash.getMessage": messages.get_message,
    "qstash.cancelMessage": messages.cancel_message,
    "qstash.cancelMessages": messages.cancel_messages,
    "qstash.upsertQueue": queues.upsert_queue,
    "qstash.listQueues": queues.list_queues,
    "qstash.getQueue": queues.get_queue,
    "qstash.deleteQueue": queues.delete_queue,
    "qstash.pauseQueue": queues.pause_queue,
    "qstash.resumeQueue": queues.resume_queue,
    "qstash.createSchedule": schedules.create_schedule,
    "qstash.listSchedules": schedules.list_schedules,
    "qstash.getSchedule": schedules.get_schedule,
    "qstash.deleteSchedule": schedules.delete_schedule,
    "qstash.pauseSchedule": schedules.pause_schedule,
    "qstash.pauseSchedulePost": schedules.pause_schedule,
    "qstash.resumeSchedule": schedules.resume_schedule,
    "qstash.resumeSchedulePost": schedules.resume_schedule,
    "qstash.listUrlGroups": topics.list_url_groups,
    "qstash.getUrlGroup": topics.get_url_group,
    "qstash.deleteUrlGroup": topics.delete_url_group,
    "qstash.addEndpoints": topics.add_endpoints,
    "qstash.removeEndpoints": topics.remove_endpoints,
    "qstash.listDlq": dlq.list_dlq,
    "qstash.getDlqMessage": dlq.get_dlq_message,
    "qstash.deleteDlqMessage": dlq.delete_dlq_message,
    "qstash.deleteDlqMessages": dlq.delete_dlq_messages,
    "qstash.retryDlqMessage": dlq.retry_dlq_message,
    "qstash.retryDlqMessages": dlq.retry_dlq_messages,
    "qstash.listEvents": logs.list_events,
    "qstash.listLogs": logs.list_events,
    "qstash.getSigningKeys": keys.get_signing_keys,
    "qstash.rotateSigningKeys": keys.rotate_signing_keys,
    "qstash.listFlowControlKeys": keys.list_flow_control_keys,
    "qstash.getFlowControlKey": keys.get_flow_control_key,
    "qstash.getGlobalParallelism": keys.get_global_parallelism,
}
