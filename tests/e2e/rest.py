"""What a curl user of the gateway sees: a stdlib HTTP/JSON client, and the tokens an
attacker or a careless client would send (expired, signed by a key nobody trusts)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from ptctl.keys import ensure_keys
from ptctl.launcher import Platform
from ptkit.auth import Role
from ptkit.tokens import mint_token


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    text: str

    @property
    def json(self) -> Any:
        assert self.content_type == "application/json", (self.status, self.content_type, self.text)
        return json.loads(self.text)

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type() if self.headers.get("content-type") else ""

    def error(self) -> tuple[int, int, str]:
        """(HTTP status, gRPC code, message) of a JSON error reply."""
        body = self.json
        return self.status, body["code"], body["message"]


class Rest:
    """Plain HTTP/1.1 requests to the gateway. A request without a body sends no
    content-type, as ``curl URL`` does."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("content-type", "application/json")
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=sent, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Reply(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read().decode())

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> Reply:
        return self.call("GET", path, token, **kwargs)

    def post(self, path: str, token: str | None = None, body: Any = None, **kwargs: Any) -> Reply:
        return self.call("POST", path, token, body=body if body is not None else {}, **kwargs)


def ok(reply: Reply) -> Any:
    """The JSON body of a 200 reply."""
    assert reply.status == 200, (reply.status, reply.text)
    return reply.json


def token_signed_by_another_key(directory: Path, role: Role | str, subject: str) -> str:
    """Well-formed, unexpired, right issuer and key id, but signed by a key nobody trusts."""
    return mint_token(ensure_keys(directory), Role(role), subject)


def expired_token(platform: Platform, role: Role | str, subject: str) -> str:
    """Signed by the platform's key, expired an hour ago (beyond any clock skew)."""
    return mint_token(platform.keys, Role(role), subject, ttl_seconds=60, now=time.time() - 3660)


def access_log_entry(platform: Platform, request_id: str) -> dict[str, Any] | None:
    """The gateway listener's access log entry of one request, once Envoy wrote it."""
    log = platform.envoy.log_file.read_text(errors="replace")
    for line in log.splitlines():
        if request_id in line and line.startswith("{"):
            entry = json.loads(line)
            if entry.get("listener") == "gateway" and entry.get("request_id") == request_id:
                return entry
    return None
