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
    parser.add_argument(
        "--log-name", default=None,
        help="write the log also to <data dir>/logs/LOG_NAME.log (as `jiedu up` has it do)",
    )
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.log_name:
        logs.for_process(settings, args.log_name)
    else:
        logs.configure(settings.log_level, fmt=settings.log_format)
    bootstrap.tune_gc()
    asyncio.run(serve(settings, args.host, args.port, parent=args.parent))


if __name__ == "__main__":
    main()
