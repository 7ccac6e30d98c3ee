"""The message-driven shells around the pure code, one room per role.

- `app`, `bootstrap`: the composition root — the running system as one app, and how its parts
  are connected (server, identities, streams).
- `intake`, `projector`, `deadlines`, `audit`, `report`: the services.
- `adapters/`: the JetStream log, the read-model stores, the embedded nats-server, settings, logs.
- `cli/`: the `jiedu` command, which parses arguments and calls the services.
- `tools/`: the demo quarter and the benchmark, which are not part of the running system.

Imports point down only (entry points → services → adapters → `projections`, `domain`,
`events`); `tests/test_architecture.py` keeps it so.
"""
