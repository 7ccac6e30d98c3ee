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
    log_format: str = "auto"
    """How records reach standard error: `json`, `console` (warnings and errors, for people),
    or `auto` (console on a terminal); see `services.adapters.logs`."""
    log_max_bytes: int = 10 * 1024 * 1024
    """A log file's size at which it is rotated."""
    log_backups: int = 5
    """Rotated log files kept beside the current one."""
    keystore: Path | None = None
    """The data subjects' key store (`services.adapters.keystore`); default `<data_dir>/keys.sqlite3`."""
    personal_cipher: str = "AES-256-GCM"
    """How the intake seals personal fields: AES-256-GCM, or SM4-GCM where 商用密码 is required."""
    retention_file: Path | None = None
    """The retention rule for personal data; default `deploy/privacy/retention.json`."""
    instance: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")

    @property
    def credentials(self) -> Path:
        return self.credentials_dir or self.data_dir / "creds"

    def child_environment(self, nats_url: str) -> dict[str, str]:
        """The environment of a child process (`jiedu up`'s projector and API processes) that
        works on this data dir, on the server at `nats_url`, logging as this process does."""
        env = {
            **os.environ,
            "NATS_URL": nats_url,
            "JIEDU_DATA_DIR": str(self.data_dir),
            "JIEDU_CREDENTIALS": str(self.credentials),
            "JIEDU_LOG_LEVEL": self.log_level,
            "JIEDU_LOG_FORMAT": self.log_format,
            "JIEDU_LOG_MAX_BYTES": str(self.log_max_bytes),
            "JIEDU_LOG_BACKUPS": str(self.log_backups),
        }
        env.pop("DATABASE_URL", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        return env

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
            ("JIEDU_LOG_FORMAT", "log_format", str),
            ("JIEDU_LOG_MAX_BYTES", "log_max_bytes", int),
            ("JIEDU_LOG_BACKUPS", "log_backups", int),
            ("JIEDU_KEYSTORE", "keystore", Path),
            ("JIEDU_PERSONAL_CIPHER", "personal_cipher", str),
            ("JIEDU_RETENTION_FILE", "retention_file", Path),
        ):
            if env.get(key):
                values[name] = conv(env[key])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
