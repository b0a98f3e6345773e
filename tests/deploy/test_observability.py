"""Observability as code (deploy/observability/): the Prometheus alert rules, the Grafana
dashboard, the runbook (docs/operations.md) and the Kubernetes scraping agree with each
other and with what the platform really exports.

Every PromQL expression is parsed with promql-parser, and every metric it selects must
appear in a live scrape of a platform: the four services' /metrics and Envoy's
/stats/prometheus. A family a service declares but has no sample of yet (a labelled
counter nothing incremented) still counts, by its HELP/TYPE lines. The one exception is
``up``, which Prometheus synthesises for every target it scrapes and no target exports.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ptctl import k8s
from ptctl.envoy import GatewaySettings
from ptctl.launcher import CONTEXTS, ROOT, Platform
from ptkit.metrics import grpc_code
from tests.conftest import fresh_platform
from tests.deploy.test_k8s_manifests import container_ports, resource, workload_pod

OBSERVABILITY = ROOT / "deploy" / "observability"
ALERTS = OBSERVABILITY / "prometheus" / "alerts.yml"
PROMETHEUS = OBSERVABILITY / "prometheus" / "prometheus.yml"
DASHBOARD = OBSERVABILITY / "grafana" / "ptplatform-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"
RUNBOOK_PREFIX = "docs/operations.md#"

SYNTHESISED_BY_PROMETHEUS = frozenset({"up"})
"""Series Prometheus makes itself for every scrape target: no scrape shows them."""

DASHBOARD_PANELS = (
    "Request rate per method",
    "Error ratio per method (server faults)",
    "Latency p50 per method (unary)",
    "Latency p99 per method (unary)",
    "Outbox backlog",
    "Outbox oldest event age",
    "Consumer lag per durable",
    "Consumer ack-pending per durable",
    "Redeliveries",
    "Terminations (rejected envelopes)",
    "Dead letters",
    "Breaker overflows (Envoy)",
    "Open circuit breakers (Envoy)",
    "RSS per service",
)
GRAFANA_INTERVALS = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
GRAFANA_VARIABLE = re.compile(r"\$\{([a-zA-Z_]\w*)(?::\w+)?\}|\$([a-zA-Z_]\w*)")
"""``$name``, ``${name}``, ``${name:format}``; not ``$1`` (label_replace's group)."""
SAMPLE_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?=[{ ])")
DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")
LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[^,()]+),\s*(?P<label>\w+)\)$")


# ---- what the files hold ------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of every heading outside code blocks."""
    found, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.add(slug(match[1]))
    return found


def grafana_to_promql(expr: str, variables: set[str]) -> str:
    """``expr`` as Prometheus would get it from Grafana: intervals and variables replaced.
    A variable the dashboard does not define fails."""
    expr = GRAFANA_INTERVALS.sub("5m", expr)

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in variables, f"undefined dashboard variable ${name} in {expr}"
        return "value"

    return GRAFANA_VARIABLE.sub(value, expr)


# ---- PromQL -------------------------------------------------------------------------


def selectors(node: Any) -> Iterator[promql_parser.VectorSelector]:
    """Every vector selector of a parsed expression (those inside range vectors too)."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node
    elif isinstance(node, promql_parser.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from selectors(argument)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from selectors(node.expr)
        if node.param is not None:
            yield from selectors(node.param)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(
        node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
    ):
        yield from selectors(node.expr)
    else:
        assert isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral), node


def matchers(selector: promql_parser.VectorSelector) -> list[promql_parser.Matcher]:
    found = selector.matchers
    return [*found.matchers, *(m for group in found.or_matchers for m in group)]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects. A selector without a literal name (only
    ``{__name__=~...}``) cannot be checked, so it fails."""
    names = set()
    for selector in selectors(promql_parser.parse(expr)):
        name = selector.name or next(
            (
                m.value
                for m in matchers(selector)
                if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
            ),
            None,
        )
        assert name, f"a selector without a metric name in {expr}"
        names.add(name)
    return names


def label_values(expr: str, label: str) -> set[str]:
    """The values that ``label``'s equality and regex matchers name (split on ``|``)."""
    values = set()
    for selector in selectors(promql_parser.parse(expr)):
        for matcher in matchers(selector):
            if matcher.name == label and matcher.op in (
                promql_parser.MatchOp.Equal,
                promql_parser.MatchOp.Re,
            ):
                values |= set(matcher.value.split("|"))
    return values


# ---- what a scrape shows ------------------------------------------------------------

_SERIES_OF_EMPTY_FAMILY = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


def series_names(exposition: str) -> set[str]:
    """The names of the series a Prometheus text exposition offers: its samples', as
    written (the parser reports an Envoy counter ``x`` as ``x_total``, which Prometheus
    does not store), and for a family with no sample yet, the ones its TYPE implies (a
    counter ``x`` is the series ``x_total``; a histogram ``x`` is ``x_bucket``,
    ``x_count`` and ``x_sum``)."""
    names = {match[0] for line in exposition.splitlines() if (match := SAMPLE_NAME.match(line))}
    for family in text_string_to_metric_families(exposition):
        if not family.samples:
            suffixes = _SERIES_OF_EMPTY_FAMILY.get(family.type, ("",))
            names |= {family.name + suffix for suffix in suffixes}
    return names


def unknown_metrics(used: set[str], scraped: set[str]) -> set[str]:
    return used - scraped - SYNTHESISED_BY_PROMETHEUS


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture(scope="module")
def with_stats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Every service and Envoy with its stats listener (any non-zero port: the launcher
    picks a free one)."""
    var_dir: Path = tmp_path_factory.mktemp("observability")
    with fresh_platform(var_dir, gateway=GatewaySettings(stats_port=1)) as platform:
        yield platform


@pytest.fixture(scope="module")
def service_expositions(with_stats: Platform) -> list[str]:
    """One replica's /metrics of every service."""
    expositions = [
        scrape(f"http://127.0.0.1:{ports[0]}/metrics")
        for ports in with_stats.config.metrics_ports.values()
    ]
    assert len(expositions) == len(CONTEXTS)
    return expositions


@pytest.fixture(scope="module")
def scraped(with_stats: Platform, service_expositions: list[str]) -> set[str]:
    """Every series name the services and Envoy's stats listener offer."""
    stats_port = with_stats.config.gateway.stats_port
    envoy = scrape(f"http://127.0.0.1:{stats_port}/stats/prometheus")
    return set().union(*map(series_names, [*service_expositions, envoy]))


# ---- the alert rules ----------------------------------------------------------------


def test_every_alert_rule_is_complete() -> None:
    rules = alert_rules()
    assert len(rules) >= 10
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= rule.keys(), rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook_url"].startswith(RUNBOOK_PREFIX), rule["alert"]
        assert DURATION.fullmatch(rule["for"]), rule["alert"]


def test_every_runbook_url_names_a_heading_of_the_operations_guide() -> None:
    headings = anchors(OPERATIONS.read_text())
    for rule in alert_rules():
        anchor = rule["annotations"]["runbook_url"].removeprefix(RUNBOOK_PREFIX)
        assert anchor == rule["alert"].lower(), "the runbook entry is named after its alert"
        assert anchor in headings, f"docs/operations.md has no heading for {rule['alert']}"


def test_the_alerts_cover_what_can_go_wrong() -> None:
    used = {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert {
        "pt_outbox_oldest_age_seconds",
        "pt_consumer_pending_messages",
        "pt_events_rejected_total",
        "pt_dead_letters",
        "pt_events_dead_lettered_total",
        "grpc_server_handled_total",
        "envoy_cluster_upstream_rq_pending_overflow",
        "envoy_cluster_circuit_breakers_default_rq_open",
        "pt_nats_connected",
        "up",
    } <= used


def test_every_alert_expression_parses_as_promql() -> None:
    for rule in alert_rules():
        promql_parser.parse(rule["expr"])


def test_grpc_codes_in_queries_are_the_codes_the_services_report() -> None:
    """ptkit.server labels grpc_code as go-grpc-prometheus does (``Internal``, not
    grpc.StatusCode's ``INTERNAL``): a matcher on another spelling matches nothing,
    silently."""
    codes = {grpc_code(code) for code in grpc.StatusCode}
    exprs = [rule["expr"] for rule in alert_rules()] + [
        grafana_to_promql(e, dashboard_variables()) for e in dashboard_exprs()
    ]
    named = set().union(*(label_values(expr, "grpc_code") for expr in exprs))
    assert {"Internal", "Unavailable"} <= named
    assert named <= codes, sorted(named - codes)


# ---- the dashboard ------------------------------------------------------------------


def dashboard_variables() -> set[str]:
    return {v["name"] for v in dashboard()["templating"]["list"]}


def test_the_dashboard_has_a_datasource_and_a_service_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    service = variables["service"]
    assert service["datasource"]["uid"] == "${datasource}"
    assert LABEL_VALUES.match(service["query"]["query"]), service["query"]


def test_the_dashboard_shows_every_panel_and_each_queries_something() -> None:
    panels = dashboard()["panels"]
    titles = [p["title"] for p in panels]
    assert set(DASHBOARD_PANELS) <= set(titles), sorted(set(DASHBOARD_PANELS) - set(titles))
    assert len(titles) == len(set(titles))
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']} has no target"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_every_dashboard_query_parses_as_promql() -> None:
    variables = dashboard_variables()
    for expr in dashboard_exprs():
        promql_parser.parse(grafana_to_promql(expr, variables))


# ---- every metric they name is exported ---------------------------------------------


def used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used (alert names, panel titles)."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(rule["alert"])
    variables = dashboard_variables()
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            for name in metric_names(grafana_to_promql(target["expr"], variables)):
                used.setdefault(name, set()).add(panel["title"])
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["query"]["query"])
            assert match, variable
            used.setdefault(match["metric"].strip(), set()).add(f"${variable['name']}")
    return used


def test_every_metric_the_rules_and_dashboard_use_is_in_a_live_scrape(
    scraped: set[str],
) -> None:
    used = used_metrics()
    missing = unknown_metrics(set(used), scraped)
    assert not missing, {name: sorted(used[name]) for name in sorted(missing)}


def test_the_operations_guide_lists_every_metric_of_the_platform(
    service_expositions: list[str],
) -> None:
    """ptkit/metrics.py promises it: every ``pt_*`` and ``grpc_server_*`` series a
    service declares is in docs/operations.md's table, by the name a query uses."""
    guide = OPERATIONS.read_text()
    declared = {
        match[1]
        for exposition in service_expositions
        for match in re.finditer(r"^# TYPE ((?:pt|grpc_server)_\w+) ", exposition, re.MULTILINE)
    }
    assert {"pt_build_info", "grpc_server_handled_total"} <= declared
    missing = {name for name in declared if f"| `{name}` |" not in guide}
    assert not missing, sorted(missing)


def test_the_metric_check_flags_a_misspelt_or_unexported_name(scraped: set[str]) -> None:
    assert "pt_outbox_oldest_age_seconds" in scraped
    assert "grpc_server_handling_seconds_bucket" in scraped
    assert "envoy_cluster_upstream_rq_pending_overflow" in scraped
    misspelt = metric_names('max by (source) (pt_outbox_oldest_age_secnds{source="order"})')
    assert unknown_metrics(misspelt, scraped) == {"pt_outbox_oldest_age_secnds"}
    # a counter is selected by its series name, a histogram by its buckets, count or sum
    assert unknown_metrics({"pt_events_rejected", "grpc_server_handling_seconds"}, scraped) == {
        "pt_events_rejected",
        "grpc_server_handling_seconds",
    }
    assert unknown_metrics({"up"}, scraped) == set()


def test_a_family_without_samples_offers_the_series_its_type_implies() -> None:
    exposition = (
        "# HELP pt_x_total Things\n# TYPE pt_x_total counter\n"
        "# HELP pt_h Durations\n# TYPE pt_h histogram\n"
        "# HELP pt_g Level\n# TYPE pt_g gauge\n"
        '# TYPE envoy_c counter\nenvoy_c{envoy_cluster_name="order"} 0\n'
    )
    assert series_names(exposition) == {
        "pt_x_total",
        "pt_h_bucket",
        "pt_h_count",
        "pt_h_sum",
        "pt_g",
        "envoy_c",
    }


def test_metric_names_walks_the_whole_expression() -> None:
    expr = (
        "histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) / on () group_left"
        ' () (-b) + count_values("v", c offset 1h) or max_over_time(d[10m:1m]) > bool 1'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d"}
    with pytest.raises(ValueError):
        metric_names("sum(rate(a[5m])")
    with pytest.raises(AssertionError):
        metric_names('{__name__=~"pt_.*"}')


def test_grafana_variables_are_replaced_and_unknown_ones_fail() -> None:
    expr = 'rate(a{service=~"$service", x="${service:regex}"}[$__rate_interval])'
    assert grafana_to_promql(expr, {"service"}) == 'rate(a{service=~"value", x="value"}[5m])'
    with pytest.raises(AssertionError):
        grafana_to_promql('a{service=~"$servce"}', {"service"})
    replaced = 'label_replace(a, "x", "$1", "y", "(.*)")'
    assert grafana_to_promql(replaced, set()) == replaced


# ---- Kubernetes scraping ------------------------------------------------------------


def scraped_workloads() -> dict[str, dict[str, Any]]:
    workloads = {f"{context}-svc": resource("Deployment", f"{context}-svc") for context in CONTEXTS}
    return workloads | {
        "envoy": resource("Deployment", "envoy"),
        "nats": resource("StatefulSet", "nats"),
    }


def test_every_scraped_pod_announces_a_port_it_declares() -> None:
    paths = {}
    for name, workload in scraped_workloads().items():
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        declared = {
            port
            for c in workload_pod(workload)["containers"]
            for port in container_ports(c).values()
        }
        assert int(annotations["prometheus.io/port"]) in declared, name
        paths[name] = annotations["prometheus.io/path"]
    assert paths == {
        **{f"{context}-svc": "/metrics" for context in CONTEXTS},
        "envoy": "/stats/prometheus",
        "nats": "/metrics",
    }
    envoy = scraped_workloads()["envoy"]["spec"]["template"]["metadata"]["annotations"]
    assert envoy["prometheus.io/port"] == str(k8s.GATEWAY.stats_port)


def test_the_nats_exporter_sidecar_reads_the_monitoring_port_over_loopback() -> None:
    nats = resource("StatefulSet", "nats")
    containers = {c["name"]: c for c in workload_pod(nats)["containers"]}
    server, exporter = containers["nats"], containers["metrics"]
    assert exporter["image"] == "natsio/prometheus-nats-exporter:0.17.3"
    monitor = container_ports(server)["monitor"]
    config = resource("ConfigMap", "nats-config")["data"]["nats.conf"]
    assert f"http_port: {monitor}" in config
    args = exporter["args"]
    assert args[-1] == f"http://localhost:{monitor}"
    assert {"-varz", "-connz", "-routez", "-subz", "-jsz=all"} <= set(args)
    port = args[args.index("-port") + 1]
    annotations = nats["spec"]["template"]["metadata"]["annotations"]
    assert port == annotations["prometheus.io/port"] == str(container_ports(exporter)["metrics"])
    assert "volumeMounts" not in exporter, "the exporter holds no credentials"
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_example_prometheus_config_loads_the_rules_and_finds_annotated_pods() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert [PROMETHEUS.parent / f for f in config["rule_files"]] == [ALERTS]
    (job,) = config["scrape_configs"]
    assert [sd["role"] for sd in job["kubernetes_sd_configs"]] == ["pod"]
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == [k8s.NAMESPACE]
    relabels = job["relabel_configs"]
    sources = {label for r in relabels for label in r.get("source_labels", [])}
    for annotation in ("scrape", "port", "path"):
        assert f"__meta_kubernetes_pod_annotation_prometheus_io_{annotation}" in sources
    for relabel in relabels:
        re.compile(relabel.get("regex", "(.*)"))
    # the alerts select targets by the `app` label this relabelling makes
    targets = {r["target_label"] for r in relabels if "target_label" in r}
    assert {"app", "namespace", "pod"} <= targets
    apps = set().union(*(label_values(rule["expr"], "app") for rule in alert_rules()))
    assert apps and apps <= set(scraped_workloads()), sorted(apps - set(scraped_workloads()))
