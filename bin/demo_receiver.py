#!/usr/bin/env python3
"""A webhook receiver for the walk-through: prints each delivery and checks its signature.

    python3 dev.py receiver [--port 9000] [--secret whsec_...] [--status 200]

It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deliveries.signing import signature  # needs no Django setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", help="the subscription's whsec_ secret, to verify signatures")
    parser.add_argument("--status", type=int, default=200, help="status code to answer with")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            msg_id = self.headers.get("webhook-id", "")
            ts = self.headers.get("webhook-timestamp", "0")
            print(f"\n--- {time.strftime('%H:%M:%S')} POST {self.path}")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type"):
                print(f"{name}: {self.headers.get(name)}")
            print(json.dumps(json.loads(body or b"null"), indent=2))
            if args.secret:
                expected = signature(args.secret, msg_id, int(ts), body)
                given = self.headers.get("webhook-signature", "").split()
                ok = any(hmac.compare_digest(expected, sig) for sig in given)
                print("signature:", "VALID" if ok else "INVALID")
            self.send_response(args.status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{args.port}/ (answering {args.status}); Ctrl-C to stop")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
