"""The tests' own hand: a party that may publish and subscribe as any part of the system, so
that one test can play sources, services and readers at once. It exists only in the servers
the test fixtures start, never in a deployment's authorisation."""

from __future__ import annotations

from services.adapters.permissions import Permissions

HARNESS = "harness"
HARNESS_PERMISSIONS = Permissions(publish=(">",), subscribe=(">",))
