"""The errors the gateway makes itself, in the transcoder's gRPC-status JSON shape.

One table serves the strict-input filter (``envoy/strict_json.lua``) and the local
replies of Envoy's own filters (``local_reply_config`` in ``envoy/envoy.yaml.j2``), so a
client reads every refusal the same way: HTTP status, ``{"code": <gRPC code>, "message",
"details": [ErrorInfo{reason, domain, metadata}, BadRequest{field_violations}]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

DOMAIN = "ptplatform.dev"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
FIELD_VIOLATIONS = "field_violations"
"""The transcoder prints google.rpc.Status details with ``preserve_proto_field_names``,
so a service's BadRequest reads ``field_violations``; the gateway's own read the same."""
METADATA_NAMESPACE = "ptplatform.strict_json"
"""Dynamic metadata the filter sets on a refusal, so local_reply_config leaves it as is."""

INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, PERMISSION_DENIED = 3, 4, 5, 7
RESOURCE_EXHAUSTED, UNIMPLEMENTED, UNAVAILABLE, UNAUTHENTICATED, UNKNOWN = 8, 12, 14, 16, 2


@dataclass(frozen=True)
class GatewayError:
    reason: str
    status: int
    code: int
    when: str


STRICT_INPUT = (
    GatewayError("MALFORMED_JSON", 400, INVALID_ARGUMENT, "the body is not RFC 8259 JSON"),
    GatewayError(
        "UNKNOWN_FIELD",
        400,
        INVALID_ARGUMENT,
        "a body field or query parameter the method does not have",
    ),
    GatewayError(
        "DUPLICATE_FIELD",
        400,
        INVALID_ARGUMENT,
        "a body field (by either name) or a query parameter given twice",
    ),
    GatewayError(
        "PATH_FIELD_IN_BODY", 400, INVALID_ARGUMENT, "a field the URL sets is also in the body"
    ),
    GatewayError("WRONG_JSON_TYPE", 400, INVALID_ARGUMENT, "a value of the wrong JSON type"),
    GatewayError(
        "INVALID_HEADER_NAME",
        400,
        INVALID_ARGUMENT,
        "a header name gRPC does not allow (other than lower-case letters, digits, `- _ .`)",
    ),
    GatewayError(
        "BODY_TOO_LARGE",
        413,
        INVALID_ARGUMENT,
        "the body is over `PT_GATEWAY_MAX_REQUEST_BODY_BYTES`",
    ),
    GatewayError(
        "URI_TOO_LONG", 414, INVALID_ARGUMENT, "the URL is over `PT_GATEWAY_MAX_URL_BYTES`"
    ),
)


@dataclass(frozen=True)
class LocalReply:
    """A local_reply_config mapper: Envoy's own reply of one HTTP status, as JSON."""

    status: int | None
    """None: every other status from 400 on."""
    error: GatewayError
    message: str = "%LOCAL_REPLY_BODY%"
    plain: bool = False
    """Keep the older ``{"code", "message"}`` body (the rate limit's, which clients know)."""
    as_is: bool = False
    """The reply is JSON already (the 405 routes' direct responses): left as it is."""
    any_caller: bool = False
    """Map it whoever called: an HTTP/1 codec refusal (431) is made before the request's
    headers are read, so there is no content-type to tell a gRPC caller by (and a gRPC
    caller speaks HTTP/2, whose codec resets the stream instead)."""
    path_regex: str | None = None
    """Only for requests whose whole ``:path`` matches (put before the status's general
    mapper)."""

    def body(self, limits: dict[str, int]) -> str | None:
        """The json_format of the mapper, as a YAML flow mapping (JSON); None: as it is."""
        if self.as_is:
            return None
        if self.plain:
            return json.dumps({"code": self.error.code, "message": self.message})
        metadata: dict[str, str] = {}
        if self.error.reason in LIMIT_OF:
            metadata["limit"] = str(limits[LIMIT_OF[self.error.reason]])
        info = {
            "@type": ERROR_INFO,
            "reason": self.error.reason,
            "domain": DOMAIN,
            "metadata": metadata,
        }
        return json.dumps({"code": self.error.code, "message": self.message, "details": [info]})


LIMIT_OF = {
    "BODY_TOO_LARGE": "max_request_body_bytes",
    "HEADERS_TOO_LARGE": "max_request_headers_bytes",
}

METHOD_NOT_ALLOWED = GatewayError(
    "METHOD_NOT_ALLOWED",
    405,
    UNIMPLEMENTED,
    "the path is known, the method is not (header `Allow` lists those it has)",
)

LOCAL_REPLIES = (
    LocalReply(
        400,
        GatewayError(
            "INVALID_REQUEST",
            400,
            INVALID_ARGUMENT,
            "the transcoder cannot read the request (a query value of the wrong type, an unknown"
            " enum name)",
        ),
    ),
    LocalReply(
        401,
        GatewayError(
            "TOKEN_IN_URL",
            401,
            UNAUTHENTICATED,
            "a token in the URL (`?access_token=`): tokens are taken from the Authorization"
            " header only",
        ),
        "a token in the URL (access_token) is not accepted: send it in the Authorization"
        " header (Authorization: Bearer <token>)",
        path_regex=r"[^?]*\?(.*&)?access_token=.*",
    ),
    LocalReply(
        401,
        GatewayError(
            "UNAUTHENTICATED", 401, UNAUTHENTICATED, "no token, or a token jwt_authn refuses"
        ),
    ),
    LocalReply(
        403,
        GatewayError(
            "PERMISSION_DENIED",
            403,
            PERMISSION_DENIED,
            "jwt_authn refuses the token for this route",
        ),
    ),
    LocalReply(
        404,
        GatewayError("NO_ROUTE", 404, NOT_FOUND, "no route knows the path"),
        "no route for %REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    ),
    LocalReply(405, METHOD_NOT_ALLOWED, as_is=True, any_caller=True),
    LocalReply(
        413,
        GatewayError("BODY_TOO_LARGE", 413, INVALID_ARGUMENT, "the body is over a buffer limit"),
    ),
    LocalReply(
        408,
        GatewayError(
            "REQUEST_TIMEOUT",
            408,
            DEADLINE_EXCEEDED,
            "the request did not arrive whole within the gateway's request timeout",
        ),
    ),
    LocalReply(
        431,
        GatewayError(
            "HEADERS_TOO_LARGE",
            431,
            INVALID_ARGUMENT,
            "URL and headers over `PT_GATEWAY_MAX_REQUEST_HEADERS_KB`",
        ),
        any_caller=True,
    ),
    LocalReply(
        429,
        GatewayError("RATE_LIMITED", 429, RESOURCE_EXHAUSTED, "over the rate limit: retry later"),
        plain=True,
    ),
    LocalReply(
        503, GatewayError("UNAVAILABLE", 503, UNAVAILABLE, "no healthy instance of the service")
    ),
    LocalReply(
        504, GatewayError("DEADLINE_EXCEEDED", 504, DEADLINE_EXCEEDED, "the route timeout passed")
    ),
    LocalReply(None, GatewayError("GATEWAY_ERROR", 0, UNKNOWN, "any other error Envoy makes")),
)


@dataclass(frozen=True)
class GrpcLocalReply:
    """A refusal Envoy makes of a gRPC caller, with the code a gRPC server would give
    (Envoy's own mapping makes 408 and 413 UNKNOWN). ``message`` is formatted with the
    edge settings (``ptctl.envoy.EdgeSettings``)."""

    status: int
    code: int
    message: str


GRPC_LOCAL_REPLIES = (
    GrpcLocalReply(
        413,
        RESOURCE_EXHAUSTED,
        "the request message is larger than the gateway takes ({max_grpc_message_bytes} bytes)",
    ),
    GrpcLocalReply(
        408,
        DEADLINE_EXCEEDED,
        "the request did not end within {request_timeout_s} s (the gateway's request timeout)",
    ),
)


def method_not_allowed(template: str, allow: str) -> str:
    """The body of a 405 route (a direct response, which local_reply_config does not see)."""
    info = {
        "@type": ERROR_INFO,
        "reason": METHOD_NOT_ALLOWED.reason,
        "domain": DOMAIN,
        "metadata": {"allow": allow, "path": template},
    }
    message = f"{template} takes only {allow}"
    body = {"code": METHOD_NOT_ALLOWED.code, "message": message, "details": [info]}
    return json.dumps(body, separators=(",", ":"))
