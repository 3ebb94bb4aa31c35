"""The Sapiom surface's routing table: ``operationId`` (in ``openapi.yaml``) -> handler."""

from __future__ import annotations

from qstash_sim.api.sapiom_v1 import handlers as gw
from qstash_sim.api.sapiom_v1 import transactions as tx
from qstash_sim.http.surface import Handler

HANDLERS: dict[str, Handler] = {
    # the messaging gateway, /v1/qstash/...
    "publishMessage": gw.publish,
    "enqueueMessage": gw.enqueue,
    "batchMessages": gw.batch,
    "getMessage": gw.get_message,
    "cancelMessage": gw.cancel_message,
    "listQueues": gw.list_queues,
    "getQueue": gw.get_queue,
    "deleteQueue": gw.delete_queue,
    "pauseQueue": gw.pause_queue,
    "resumeQueue": gw.resume_queue,
    "createSchedule": gw.create_schedule,
    "listSchedules": gw.list_schedules,
    "getSchedule": gw.get_schedule,
    "deleteSchedule": gw.delete_schedule,
    "pauseSchedule": gw.pause_schedule,
    "pauseSchedulePost": gw.pause_schedule,
    "resumeSchedule": gw.resume_schedule,
    "resumeSchedulePost": gw.resume_schedule,
    # the Sapiom API, /v1/transactions...
    "createTransaction": tx.create_transaction,
    "listTransactions": tx.list_transactions,
    "getTransaction": tx.get_transaction,
    "reauthorizeTransaction": tx.reauthorize_transaction,
    "completeTransaction": tx.complete_transaction,
    "addTransactionCost": tx.add_transaction_cost,
    "addTransactionFacts": tx.add_transaction_facts,
}
