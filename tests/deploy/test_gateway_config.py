"""The gateway configuration as ``ptctl run`` renders it: valid for Envoy, admin on
loopback, JSON errors for HTTP callers, and the token issuer set by configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ptctl import console
from ptctl.envoy import API_DOCS, GatewaySettings, LimitSettings, RateLimitSettings
from ptctl.keys import ensure_keys
from ptctl.launcher import Platform, PlatformConfig, TrustedIssuer
from ptkit.config import ConfigError, Env
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles
from tests.helpers import assert_envoy_accepts


def rendered(config: PlatformConfig) -> dict[str, Any]:
    return yaml.safe_load(Platform(config).render_envoy_config())


def http_filters(envoy: dict[str, Any]) -> dict[str, Any]:
    gateway = next(
        listener
        for listener in envoy["static_resources"]["listeners"]
        if listener["name"] == "gateway"
    )
    manager = gateway["filter_chains"][0]["filters"][0]["typed_config"]
    return {"manager": manager} | {f["name"]: f["typed_config"] for f in manager["http_filters"]}


def test_the_default_config_passes_envoy_validation(tmp_path: Path) -> None:
    platform = Platform(PlatformConfig.defaults(tmp_path, Env({})))
    config = tmp_path / "envoy.yaml"
    config.write_text(platform.render_envoy_config())
    assert_envoy_accepts(config)


def test_admin_is_a_socket_only_its_owner_opens_and_the_gateway_on_the_configured_port(
    tmp_path: Path,
) -> None:
    platform = Platform(PlatformConfig.defaults(tmp_path, Env({"PT_GATEWAY_PORT": "18080"})))
    envoy = yaml.safe_load(platform.render_envoy_config())
    assert envoy["admin"]["address"] == {
        "pipe": {"path": str(tmp_path.resolve() / "envoy-admin.sock"), "mode": 0o600}
    }
    listeners = {
        listener["name"]: listener["address"]["socket_address"]
        for listener in envoy["static_resources"]["listeners"]
    }
    assert listeners["gateway"] == {"address": "127.0.0.1", "port_value": 18080}
    moved = Env({"PT_GATEWAY_ADMIN_SOCKET": str(tmp_path / "admin.sock")})
    assert (
        Platform(PlatformConfig.defaults(tmp_path, moved)).admin_socket == tmp_path / "admin.sock"
    )


def test_an_admin_socket_path_too_long_for_unix_sockets_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    deep = Env({"PT_GATEWAY_ADMIN_SOCKET": str(tmp_path / ("x" * 100) / "admin.sock")})
    with pytest.raises(ConfigError, match="longer than 100 characters"):
        Platform(PlatformConfig.defaults(tmp_path, deep)).render_envoy_config()


def test_errors_envoy_makes_are_json_for_http_callers_only(tmp_path: Path) -> None:
    mappers = http_filters(rendered(PlatformConfig.defaults(tmp_path, Env({}))))["manager"][
        "local_reply_config"
    ]["mappers"]
    strict, grpc_too_large, grpc_timeout, *by_status = mappers
    for mapper, code in ((grpc_too_large, "8"), (grpc_timeout, "4")):
        grpc_status = mapper["headers_to_add"][0]["header"]
        assert grpc_status == {"key": "grpc-status", "value": code}
    matcher = strict["filter"]["metadata_filter"]
    assert matcher["matcher"]["filter"] == "ptplatform.strict_json"
    assert matcher["match_if_key_not_found"] is False
    assert "body_format_override" not in strict, "the filter's refusals are JSON already"

    def status_of(mapper: dict[str, Any]) -> dict[str, Any]:
        found = mapper["filter"]
        if "and_filter" in found:
            found = found["and_filter"]["filters"][0]
        return found["status_code_filter"]["comparison"]

    def code_and_reason(mapper: dict[str, Any]) -> tuple[int, str] | None:
        if "body_format_override" not in mapper:
            return None
        body = mapper["body_format_override"]["json_format"]
        return body["code"], body["details"][0]["reason"] if "details" in body else ""

    assert [
        (status_of(m)["op"], status_of(m)["value"]["default_value"], code_and_reason(m))
        for m in by_status
    ] == [
        ("EQ", 400, (3, "INVALID_REQUEST")),
        ("EQ", 401, (16, "TOKEN_IN_URL")),
        ("EQ", 401, (16, "UNAUTHENTICATED")),
        ("EQ", 403, (7, "PERMISSION_DENIED")),
        ("EQ", 404, (5, "NO_ROUTE")),
        ("EQ", 405, None),
        ("EQ", 413, (3, "BODY_TOO_LARGE")),
        ("EQ", 408, (4, "REQUEST_TIMEOUT")),
        ("EQ", 431, (3, "HEADERS_TOO_LARGE")),
        ("EQ", 429, (8, "")),
        ("EQ", 503, (14, "UNAVAILABLE")),
        ("EQ", 504, (4, "DEADLINE_EXCEEDED")),
        ("GE", 400, (2, "GATEWAY_ERROR")),
    ]
    rate_limited = by_status[9]["body_format_override"]["json_format"]
    assert rate_limited == {"code": 8, "message": "%LOCAL_REPLY_BODY%"}, "clients know this one"
    for mapper in by_status:
        if "and_filter" not in mapper["filter"]:
            assert status_of(mapper)["value"]["default_value"] in (405, 431)
            continue
        http_caller = mapper["filter"]["and_filter"]["filters"][1]["or_filter"]["filters"]
        no_grpc_content_type, transcoded = (f["header_filter"]["header"] for f in http_caller)
        assert no_grpc_content_type["invert_match"] is True
        assert no_grpc_content_type["treat_missing_header_as_empty"] is True
        assert transcoded == {"name": "x-envoy-original-path", "present_match": True}


def test_the_strict_input_filter_sits_between_authentication_and_the_transcoder(
    tmp_path: Path,
) -> None:
    envoy = rendered(PlatformConfig.defaults(tmp_path, Env({})))
    names = [f["name"] for f in http_filters(envoy)["manager"]["http_filters"]]
    assert names == [
        "jwt_identify",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.lua",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.buffer",
        "envoy.filters.http.router",
    ]
    source = http_filters(envoy)["envoy.filters.http.lua"]["default_source_code"]["inline_string"]
    assert source.startswith("-- Rendered by ptctl/strict_json.py")
    assert "function envoy_on_request(handle)" in source
    transcoder = http_filters(envoy)["envoy.filters.http.grpc_json_transcoder"]
    assert transcoder["max_request_body_size"] == 32 * 1024
    assert transcoder["request_validation_options"] == {
        "reject_unknown_method": False,
        "reject_unknown_query_parameters": True,
        "reject_binding_body_field_collisions": True,
    }


def test_the_limits_are_set_by_configuration(tmp_path: Path) -> None:
    env = Env(
        {
            "PT_GATEWAY_MAX_REQUEST_BODY_BYTES": "4096",
            "PT_GATEWAY_MAX_URL_BYTES": "2048",
            "PT_GATEWAY_MAX_REQUEST_HEADERS_KB": "24",
        }
    )
    config = PlatformConfig.defaults(tmp_path, env)
    assert config.gateway.limits == LimitSettings(4096, 2048, 24)
    filters = http_filters(rendered(config))
    assert filters["manager"]["max_request_headers_kb"] == 24
    assert filters["envoy.filters.http.grpc_json_transcoder"]["max_request_body_size"] == 4096
    source = filters["envoy.filters.http.lua"]["default_source_code"]["inline_string"]
    assert '["max_body_bytes"] = 4096' in source
    assert '["max_url_bytes"] = 2048' in source
    ephemeral = PlatformConfig.ephemeral(tmp_path, contexts=["order"], gateway=config.gateway)
    assert ephemeral.gateway.limits == config.gateway.limits


def test_a_header_limit_the_services_cannot_take_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="PT_GATEWAY_MAX_REQUEST_HEADERS_KB"):
        PlatformConfig.defaults(tmp_path, Env({"PT_GATEWAY_MAX_REQUEST_HEADERS_KB": "60"}))
    with pytest.raises(ConfigError, match="more than the services accept"):
        LimitSettings(max_request_headers_kb=60)


def test_known_paths_answer_405_with_allow_after_the_grpc_routes(tmp_path: Path) -> None:
    envoy = rendered(PlatformConfig.defaults(tmp_path, Env({})))
    routes = http_filters(envoy)["manager"]["route_config"]["virtual_hosts"][0]["routes"]
    grpc = [i for i, r in enumerate(routes) if "prefix" in r["match"]]
    rest = [r for r in routes if "safe_regex" in r["match"]]
    assert max(grpc) < routes.index(rest[0])
    allow = {
        r["match"]["safe_regex"]["regex"]: {
            h["header"]["key"]: h["header"]["value"] for h in r["response_headers_to_add"]
        }["allow"]
        for r in rest
    }
    assert allow["^/v1/orders$"] == "GET, POST"
    assert allow["^/v1/orders/[^/]+$"] == "GET"
    assert allow["^/v1/orders/[^/]+:cancel$"] == "POST"
    regexes = [r["match"]["safe_regex"]["regex"] for r in rest]
    assert regexes.index("^/v1/orders/[^/]+:cancel$") < regexes.index("^/v1/orders/[^/]+$")
    body = json.loads(rest[0]["direct_response"]["body"]["inline_string"])
    assert body["code"] == 12
    assert body["details"][0]["reason"] == "METHOD_NOT_ALLOWED"


def test_the_rate_limit_is_set_by_configuration(tmp_path: Path) -> None:
    env = Env({"PT_RATE_LIMIT_BURST": "7", "PT_RATE_LIMIT_PER_SECOND": "3"})
    limit = http_filters(rendered(PlatformConfig.defaults(tmp_path, env)))[
        "envoy.filters.http.local_ratelimit"
    ]
    assert limit["token_bucket"] == {"max_tokens": 7, "tokens_per_fill": 3, "fill_interval": "1s"}
    assert limit["rate_limited_as_resource_exhausted"] is True


def test_each_client_has_a_bucket_inside_the_global_ceiling(tmp_path: Path) -> None:
    env = Env({"PT_RATE_LIMIT_CLIENT_BURST": "9", "PT_RATE_LIMIT_ADDRESS_PER_SECOND": "4"})
    filters = http_filters(rendered(PlatformConfig.defaults(tmp_path, env)))
    identify = filters["jwt_identify"]
    assert identify["providers"]["ptplatform"]["payload_in_metadata"] == "jwt_payload"
    [rule] = identify["rules"]
    assert rule["requires"]["requires_any"]["requirements"][1] == {"allow_missing_or_failed": {}}
    limit = filters["envoy.filters.http.local_ratelimit"]
    assert limit["always_consume_default_token_bucket"] is True
    subject, anonymous = limit["rate_limits"]
    sub = {"key": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "sub"}]}
    assert subject["actions"] == [{"metadata": {"descriptor_key": "subject", "metadata_key": sub}}]
    assert anonymous["actions"][1] == {"remote_address": {}}
    per_subject, per_address = limit["descriptors"]
    assert per_subject["entries"] == [{"key": "subject", "value": ""}]
    assert per_subject["token_bucket"]["max_tokens"] == 9
    assert per_address["entries"] == [
        {"key": "subject", "value": "-"},
        {"key": "remote_address", "value": ""},
    ]
    assert per_address["token_bucket"]["tokens_per_fill"] == 4


def test_tokens_are_read_from_the_authorization_header_only(tmp_path: Path) -> None:
    filters = http_filters(rendered(PlatformConfig.defaults(tmp_path, Env({}))))
    for name in ("jwt_identify", "envoy.filters.http.jwt_authn"):
        provider = filters[name]["providers"]["ptplatform"]
        assert provider["from_headers"] == [{"name": "authorization", "value_prefix": "Bearer "}]
        assert "from_params" not in provider and "from_cookies" not in provider


def test_an_ephemeral_platform_keeps_the_rate_limit_it_was_given(tmp_path: Path) -> None:
    gateway = GatewaySettings(rate_limit=RateLimitSettings(burst=3, per_second=1))
    config = PlatformConfig.ephemeral(tmp_path, contexts=["order"], gateway=gateway)
    assert config.gateway.rate_limit == RateLimitSettings(burst=3, per_second=1)
    assert config.gateway.gateway_port != 8080


def kids(keys: KeyFiles) -> set[str]:
    return {key["kid"] for key in json.loads(keys.jwks.read_text())["keys"]}


def test_without_configuration_the_development_keys_are_trusted(tmp_path: Path) -> None:
    platform = Platform(PlatformConfig.defaults(tmp_path, Env({})))
    provider = http_filters(yaml.safe_load(platform.render_envoy_config()))[
        "envoy.filters.http.jwt_authn"
    ]["providers"]["ptplatform"]
    assert provider["issuer"] == DEV_ISSUER
    assert provider["audiences"] == [DEV_AUDIENCE]
    assert provider["local_jwks"]["filename"] == str(platform.keys.jwks.resolve())
    env = platform.services["order"][0].env
    users = json.loads(Path(env["PT_JWT_PUBLIC_KEY_FILE"]).read_text())
    services = json.loads(Path(env["PT_JWT_SERVICE_KEY_FILE"]).read_text())
    assert {key["kid"] for key in users["keys"]} == kids(platform.keys)
    assert {key["kid"] for key in services["keys"]} == kids(platform.service_keys)
    assert kids(platform.keys).isdisjoint(kids(platform.service_keys))
    assert (env["PT_JWT_ISSUER"], env["PT_JWT_AUDIENCE"]) == (DEV_ISSUER, DEV_AUDIENCE)


@pytest.fixture
def idp(tmp_path: Path) -> KeyFiles:
    """Stands in for a production identity provider's published keys."""
    return ensure_keys(tmp_path / "idp")


def test_a_production_issuer_and_its_keys_are_set_by_configuration(
    tmp_path: Path, idp: KeyFiles
) -> None:
    env = Env(
        {
            "PT_JWT_ISSUER": "https://login.studio.example",
            "PT_JWT_AUDIENCE": "studio-api",
            "PT_JWT_JWKS_FILE": str(idp.jwks),
        }
    )
    platform = Platform(PlatformConfig.defaults(tmp_path / "var", env))
    provider = http_filters(yaml.safe_load(platform.render_envoy_config()))[
        "envoy.filters.http.jwt_authn"
    ]["providers"]["ptplatform"]
    assert provider["issuer"] == "https://login.studio.example"
    assert provider["audiences"] == ["studio-api"]
    assert provider["local_jwks"]["filename"] == str(idp.jwks.resolve())
    for processes in platform.services.values():
        service_env = processes[0].env
        users = json.loads(Path(service_env["PT_JWT_PUBLIC_KEY_FILE"]).read_text())
        services = json.loads(Path(service_env["PT_JWT_SERVICE_KEY_FILE"]).read_text())
        assert {key["kid"] for key in users["keys"]} == kids(idp)
        assert {key["kid"] for key in services["keys"]} == kids(platform.service_keys)
        assert service_env["PT_JWT_ISSUER"] == "https://login.studio.example"
        assert service_env["PT_JWT_AUDIENCE"] == "studio-api"


def test_a_missing_jwks_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        TrustedIssuer.from_env(Env({"PT_JWT_JWKS_FILE": "missing/jwks.json"}))
    assert str(refused.value) == "PT_JWT_JWKS_FILE='missing/jwks.json' does not exist"


def test_a_notification_watch_is_never_cut_by_a_timeout(tmp_path: Path) -> None:
    envoy = rendered(PlatformConfig.defaults(tmp_path, Env({})))
    routes = http_filters(envoy)["manager"]["route_config"]["virtual_hosts"][0]["routes"]
    [watch] = [r for r in routes if "WatchNotifications" in r["match"].get("prefix", "")]
    assert watch["route"]["timeout"] == "0s"
    assert watch["route"]["idle_timeout"] == "0s"


def test_the_api_reference_is_served_by_envoy_from_build_files_without_a_token(
    tmp_path: Path,
) -> None:
    envoy = rendered(PlatformConfig.defaults(tmp_path, Env({})))
    route_config = http_filters(envoy)["manager"]["route_config"]
    routes = route_config["virtual_hosts"][0]["routes"]
    served = {
        r["match"]["path"]: r["direct_response"]
        for r in routes
        if "path" in r["match"] and "direct_response" in r
    }
    assert set(API_DOCS) <= set(served)
    assert all(path.startswith(console.PREFIX) for path in set(served) - set(API_DOCS))
    largest = max(Path(reply["body"]["filename"]).stat().st_size for reply in served.values())
    assert largest <= route_config["max_direct_response_body_size_bytes"]
    exempt = {
        rule["match"]["path"]
        for rule in http_filters(envoy)["envoy.filters.http.jwt_authn"]["rules"]
        if "path" in rule["match"] and "requires" not in rule
    }
    assert exempt == set(served) | {"/console", console.DEV_SIGN_IN_PATH}


def test_envoys_edge_proxy_guidance_is_applied(tmp_path: Path) -> None:
    env = Env({"PT_GATEWAY_MAX_HEAP_BYTES": str(256 * 1024 * 1024), "PT_GATEWAY_TRUSTED_HOPS": "1"})
    envoy = rendered(PlatformConfig.defaults(tmp_path, env))
    overload = envoy["overload_manager"]
    monitors = {m["name"]: m["typed_config"] for m in overload["resource_monitors"]}
    assert monitors["envoy.resource_monitors.fixed_heap"]["max_heap_size_bytes"] == 256 * 1024**2
    connections = monitors["envoy.resource_monitors.global_downstream_max_connections"]
    assert connections["max_active_downstream_connections"] == 10_000
    actions = {a["name"] for a in overload["actions"]}
    assert "envoy.overload_actions.stop_accepting_requests" in actions
    listeners = {lst["name"]: lst for lst in envoy["static_resources"]["listeners"]}
    for name in ("gateway", "internal"):
        assert listeners[name]["per_connection_buffer_limit_bytes"] == 33 * 1024
        manager = listeners[name]["filter_chains"][0]["filters"][0]["typed_config"]
        assert manager["common_http_protocol_options"]["headers_with_underscores_action"] == (
            "REJECT_REQUEST"
        )
        assert manager["http2_protocol_options"] == {
            "max_concurrent_streams": 100,
            "initial_stream_window_size": 65536,
            "initial_connection_window_size": 1048576,
        }
        assert (manager["request_headers_timeout"], manager["request_timeout"]) == ("5.0s", "10.0s")
        assert manager["normalize_path"] is manager["merge_slashes"] is True
        assert manager["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    gateway = http_filters(envoy)["manager"]
    assert (gateway["use_remote_address"], gateway["xff_num_trusted_hops"]) == (True, 1)
    for cluster in envoy["static_resources"]["clusters"]:
        if cluster["name"] != "envoy_admin":
            assert cluster["per_connection_buffer_limit_bytes"] == 33 * 1024


def test_unary_streams_watches_and_reflection_have_budgets_of_their_own(tmp_path: Path) -> None:
    envoy = rendered(PlatformConfig.defaults(tmp_path, Env({})))
    routes = http_filters(envoy)["manager"]["route_config"]["virtual_hosts"][0]["routes"]
    by_prefix = {r["match"]["prefix"]: r for r in routes if "prefix" in r["match"]}
    watch = by_prefix["/ptplatform.status.v1.StatusService/WatchNotifications"]["route"]
    unary = by_prefix["/ptplatform.status.v1.StatusService/"]["route"]
    reflection = by_prefix["/grpc.reflection."]
    assert (watch["cluster"], unary["cluster"], reflection["route"]["cluster"]) == (
        "status_watch",
        "status",
        "reflection",
    )
    assert unary["max_stream_duration"] == {
        "max_stream_duration": "25.0s",
        "grpc_timeout_header_max": "15.0s",
    }
    assert reflection["route"]["max_stream_duration"] == {"max_stream_duration": "60.0s"}
    assert reflection["typed_per_filter_config"]["envoy.filters.http.buffer"]["disabled"] is True
    buffer = http_filters(envoy)["envoy.filters.http.buffer"]
    assert buffer["max_request_bytes"] == 4 * 1024 * 1024 + 5
    breakers = {
        c["name"]: c["circuit_breakers"]["thresholds"][0]["max_requests"]
        for c in envoy["static_resources"]["clusters"]
        if "circuit_breakers" in c
    }
    assert breakers == {
        "order": 256,
        "manager": 256,
        "trainer": 256,
        "status": 256,
        "status_watch": 1024,
        "reflection": 32,
        "trainer_internal": 8,
    }


def test_the_internal_listener_routes_cancel_schedule_for_the_service_role_only(
    tmp_path: Path,
) -> None:
    platform = Platform(PlatformConfig.defaults(tmp_path, Env({})))
    envoy = yaml.safe_load(platform.render_envoy_config())
    internal = next(
        lst for lst in envoy["static_resources"]["listeners"] if lst["name"] == "internal"
    )
    manager = internal["filter_chains"][0]["filters"][0]["typed_config"]
    [route] = manager["route_config"]["virtual_hosts"][0]["routes"]
    assert route["match"] == {"path": "/ptplatform.trainer.v1.TrainerService/CancelSchedule"}
    rbac = route["typed_per_filter_config"]["envoy.filters.http.rbac"]["rbac"]["rules"]
    [principal] = rbac["policies"]["service-role"]["principals"]
    matcher = principal["sourced_metadata"]["metadata_matcher"]
    assert matcher["path"] == [{"key": "jwt_payload"}, {"key": "role"}]
    assert matcher["value"] == {"string_match": {"exact": "service"}}
    jwt = manager["http_filters"][0]["typed_config"]
    assert jwt["providers"]["service"]["local_jwks"]["filename"] == str(
        platform.services_trust.resolve()
    )
    assert jwt["rules"] == [{"match": route["match"], "requires": {"provider_name": "service"}}]
