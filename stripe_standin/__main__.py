"""``python -m stripe_standin``: the stand-in in the foreground, one log line per request."""

from __future__ import annotations

import argparse
import sys

from stripe_standin.server import StripeStandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_standin",
                                     description="Local Stripe stand-in (API subset + webhooks).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    parser.add_argument("--connect-webhook-url", help="where events of connected accounts go")
    parser.add_argument("--connect-webhook-secret")
    parser.add_argument("--api-key-prefix", default="sk_test_")
    parser.add_argument("--initial-balance", type=int, default=0,
                        help="an opening available balance (live Stripe starts at zero)")
    parser.add_argument("--availability-days", type=int, default=2,
                        help="days card money stays pending before it is available")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    standin = StripeStandIn(args.host, args.port, webhook_url=args.webhook_url,
                            webhook_secret=args.webhook_secret,
                            connect_webhook_url=args.connect_webhook_url,
                            connect_webhook_secret=args.connect_webhook_secret,
                            availability_days=args.availability_days,
                            api_key_prefix=args.api_key_prefix,
                            initial_balance=args.initial_balance, verbose=not args.quiet)
    standin.start()
    webhook = f", webhooks -> {args.webhook_url}" if args.webhook_url else ""
    sys.stderr.write(f"stripe stand-in listening on {standin.url}{webhook}\n")
    sys.stderr.flush()
    standin.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
