"""`python -m services.api`: the HTTP API in a process of its own (started by `jiedu up`)."""

from __future__ import annotations

import argparse
import asyncio

from services import bootstrap
from services.adapters import logs
from services.adapters.config import Settings
from services.api.process import DEFAULT_HOST, DEFAULT_PORT, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.api", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--parent", type=int, default=None)
    args = parser.parse_args()
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    bootstrap.tune_gc()
    asyncio.run(serve(settings, args.host, args.port, parent=args.parent))


if __name__ == "__main__":
    main()
