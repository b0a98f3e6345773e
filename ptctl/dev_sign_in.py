"""Development sign-in for the web console: ``POST /console/dev/sign-in`` mints a token.

It stands in for a studio's identity provider under ``make run``, and only there: the
launcher starts it when ``PT_DEV_SIGN_IN`` is on (the default without a production
issuer), Envoy routes the one path to it, and the Kubernetes gateway has no such route
(docs/console.md names the OIDC flow that replaces it). It signs with the users' key,
the one ``ptctl token`` uses, and only for the user roles: never the service role.

``python -m ptctl.dev_sign_in --port P --keys DIR --issuer I --audience A`` serves it on
127.0.0.1:P with the standard library's HTTP server; Envoy is its only client.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ptctl.console import DEV_SIGN_IN_PATH
from ptctl.gateway_errors import (
    BAD_REQUEST,
    DOMAIN,
    ERROR_INFO,
    FIELD_VIOLATIONS,
    INVALID_ARGUMENT,
    NOT_FOUND,
)
from ptkit.auth import Role
from ptkit.domain import InvalidValue
from ptkit.logs import configure_logging
from ptkit.tokens import KeyFiles, mint_token
from ptkit.validation import require_principal_id

TTL_SECONDS = 3600
MAX_BODY_BYTES = 1024
USER_ROLES = tuple(role.value for role in Role if role is not Role.SERVICE)

log = logging.getLogger("ptctl.dev_sign_in")


@dataclass(frozen=True)
class Issuer:
    """What the minted tokens say and are signed with."""

    keys: KeyFiles
    issuer: str
    audience: str

    def sign_in(self, request: object) -> dict[str, object]:
        """The token for ``{"role", "subject"}``; InvalidValue names the field at fault."""
        if not isinstance(request, Mapping):
            raise InvalidValue("the body must be a JSON object", reason="MALFORMED_JSON")
        unknown = sorted(set(request) - {"role", "subject"})
        if unknown:
            raise InvalidValue(
                f"unknown field {unknown[0]!r}", reason="UNKNOWN_FIELD", field=unknown[0]
            )
        role = request.get("role")
        if role not in USER_ROLES:
            raise InvalidValue(
                f"role must be one of {', '.join(USER_ROLES)}",
                reason="INVALID_ROLE",
                field="role",
                metadata={"roles": ",".join(USER_ROLES)},
            )
        subject = request.get("subject")
        subject = require_principal_id("subject", subject if isinstance(subject, str) else "")
        token = mint_token(self.keys, Role(role), subject, TTL_SECONDS, self.issuer, self.audience)
        return {"token": token, "role": role, "subject": subject, "expires_in": TTL_SECONDS}


def error_body(error: InvalidValue) -> dict[str, object]:
    """The refusal in the API's gRPC-status JSON shape (ptctl/gateway_errors.py)."""
    details: list[dict[str, object]] = [
        {"@type": ERROR_INFO, "reason": error.reason, "domain": DOMAIN, "metadata": error.metadata}
    ]
    if error.field:
        violation = {"field": error.field, "description": str(error)}
        details.append({"@type": BAD_REQUEST, FIELD_VIOLATIONS: [violation]})
    return {"code": INVALID_ARGUMENT, "message": str(error), "details": details}


def handler_for(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class SignInHandler(BaseHTTPRequestHandler):
        server_version = "ptplatform-dev-sign-in"

        def do_POST(self) -> None:
            if self.path != DEV_SIGN_IN_PATH:
                self._reply(HTTPStatus.NOT_FOUND, {"code": NOT_FOUND, "message": "not found"})
                return
            try:
                reply = issuer.sign_in(self._json_body())
            except InvalidValue as error:
                self._reply(HTTPStatus.BAD_REQUEST, error_body(error))
                return
            log.info("signed in", extra={"role": reply["role"], "subject": reply["subject"]})
            self._reply(HTTPStatus.OK, reply)

        def _json_body(self) -> object:
            length = self.headers.get("content-length") or "0"
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                raise InvalidValue(
                    f"the body must be JSON of at most {MAX_BODY_BYTES} bytes",
                    reason="BODY_TOO_LARGE",
                    metadata={"limit": str(MAX_BODY_BYTES)},
                )
            try:
                return json.loads(self.rfile.read(int(length)) or b"null")
            except ValueError:
                raise InvalidValue("the body is not JSON", reason="MALFORMED_JSON") from None

        def _reply(self, status: HTTPStatus, body: Mapping[str, object]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("cache-control", "no-store")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Requests are in Envoy's access log; this server logs sign-ins only."""

    return SignInHandler


def serve(port: int, issuer: Issuer) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(issuer))
    server.daemon_threads = True
    log.info("development sign-in listening", extra={"port": port})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ptctl.dev_sign_in", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keys", type=Path, required=True, help="the users' key pair folder")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    args = parser.parse_args(argv)
    configure_logging("dev_sign_in")
    serve(args.port, Issuer(KeyFiles(args.keys), args.issuer, args.audience))


if __name__ == "__main__":
    main()
