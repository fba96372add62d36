#!/usr/bin/env python3
"""A tiny webhook receiver for the demo: prints each notify it gets and checks its signature."""
import hashlib, hmac, http.server, json, sys

secret = sys.argv[2].encode() if len(sys.argv) > 2 else b""

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(self.headers.get("X-Releasectl-Signature", ""), expected)
        text = json.loads(body).get("text", "")
        print(f"[webhook] {self.headers.get('X-Releasectl-Event')}: {text} (signature {'valid' if signed else 'INVALID'})", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
