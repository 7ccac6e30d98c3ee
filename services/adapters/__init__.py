"""Adapters: what talks to the world outside Python — the JetStream log (`eventlog`), the
read-model databases (`readmodels`), the embedded nats-server (`natsserver`), settings from the
environment (`config`) and the log output (`logs`).

Adapters import the contract (`events`), the pure code (`domain`, `projections`) and each other;
never a service, an entry point or a tool, so a service can be tested against real adapters
without dragging in the rest of the system.
"""
