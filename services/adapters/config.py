"""Settings from the environment, read once by the composition root."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from events.streams import DEFAULT_NATS_PORT, DEFAULT_PARTITIONS, DEFAULT_REPLICAS


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".jiedu")
    nats_url: str | None = None
    """An existing server; None starts Jiedu's own nats-server under `data_dir`."""
    nats_port: int = DEFAULT_NATS_PORT
    partitions: int = DEFAULT_PARTITIONS
    replicas: int = DEFAULT_REPLICAS
    """Copies of every stream and bucket (3 in a cluster); the log is refused with fewer."""
    intake_batch: int = 512
    lease_ttl_s: float = 6.0
    ack_wait_s: float = 30.0
    wait_for_case_s: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    """Delays between tries of an event whose case (or referenced item) is not there yet;
    sources are not ordered among themselves. After the last, it is refused."""
    organs_file: Path | None = None
    credentials_dir: Path | None = None
    """The parties' seeds and the server authorisation; default `<data_dir>/creds`."""
    database_url: str | None = None
    log_level: str = "info"
    instance: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")

    @property
    def credentials(self) -> Path:
        return self.credentials_dir or self.data_dir / "creds"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "JIEDU_DATA_DIR" in env:
            values["data_dir"] = Path(env["JIEDU_DATA_DIR"])
        if env.get("NATS_URL"):
            values["nats_url"] = env["NATS_URL"]
        for key, name, conv in (
            ("JIEDU_NATS_PORT", "nats_port", int),
            ("JIEDU_PARTITIONS", "partitions", int),
            ("JIEDU_REPLICAS", "replicas", int),
            ("JIEDU_INTAKE_BATCH", "intake_batch", int),
            ("JIEDU_LEASE_TTL", "lease_ttl_s", float),
            ("JIEDU_ACK_WAIT", "ack_wait_s", float),
            ("JIEDU_WAIT_FOR_CASE", "wait_for_case_s", _floats),
            ("JIEDU_ORGANS_FILE", "organs_file", Path),
            ("JIEDU_CREDENTIALS", "credentials_dir", Path),
            ("DATABASE_URL", "database_url", str),
            ("JIEDU_LOG_LEVEL", "log_level", str),
        ):
            if env.get(key):
                values[name] = conv(env[key])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
