"""Plain data: messages, queues, schedules, accounts, commands, and the world that holds them (with the journal
and the ledger). No I/O, no JSON.
"""
