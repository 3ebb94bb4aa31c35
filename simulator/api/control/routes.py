"""The control plane's routing table: ``operationId`` (in ``openapi.yaml``) -> handler."""

from __future__ import annotations

from qstash_sim.api.control import handlers as h
from qstash_sim.api.control import sapiom, scenarios, views, workflows
from qstash_sim.http.surface import Handler

HANDLERS: dict[str, Handler] = {
    "simHealth": h.health,
    "simReset": h.reset,
    "simState": h.state,
    "simMessages": h.messages,
    "simScheduleFires": views.schedule_fires,
    "simLedger": h.ledger,
    "simJournal": h.journal,
    "simDeliveries": h.deliveries,
    "simClock": h.clock,
    "simClockAdvance": h.clock_advance,
    "simSettle": h.settle,
    "simSigningKeys": h.signing_keys,
    "simAccounts": h.accounts,
    "simRotateSigningKeys": h.rotate_signing_keys,
    "simListScenarios": scenarios.list_scenarios,
    "simLoadScenario": scenarios.load_scenario,
    "simClearScenarios": scenarios.clear_scenarios,
    "simDeleteScenario": scenarios.delete_scenario,
    "simPaymentGet": sapiom.sim_payment_get,
    "simPaymentSet": sapiom.sim_payment_set,
    "simTransactions": sapiom.sim_transactions,
    "simWorkflowRuns": workflows.list_runs,
    "simWorkflowRun": workflows.get_run,
    "simWorkflowRunWait": workflows.wait_run,
}
