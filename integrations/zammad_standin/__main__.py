"""``python -m integrations.zammad_standin --port 3000 --seed FILE``: serve a stand-in Zammad."""

from __future__ import annotations

import argparse
import sys

from integrations.zammad_standin.server import StandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.zammad_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--seed", default=None, help="YAML/JSON seed file (default: the bundled seed.yaml; "
                                                     "'empty' for a bare desk)")
    parser.add_argument("--webhook-backoff", type=float, default=10.0,
                        help="seconds times the attempt number between webhook retries (Zammad: 10)")
    parser.add_argument("--call-delay", type=float, default=0.0,
                        help="seconds spent on every API request (a real Zammad: about 0.03)")
    parser.add_argument("--no-elasticsearch", action="store_true",
                        help="behave as a Zammad without Elasticsearch (search runs on the database)")
    args = parser.parse_args(argv)
    from integrations.settings import setup_logging

    setup_logging()
    standin = StandIn(args.seed, host=args.host, port=args.port, webhook_backoff=args.webhook_backoff,
                      call_delay=args.call_delay, elasticsearch=False if args.no_elasticsearch else None)
    print(f"Zammad stand-in at {standin.url}/api/v1  admin token: {standin.admin_token}", flush=True)
    try:
        standin.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
