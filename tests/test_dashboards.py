"""Goal: the shipped Grafana dashboard queries only metrics a live broker exports, and the shipped
Prometheus config is valid; method: every metric name in the dashboard's queries is looked up in
/metrics of a real broker after a workload touching every subsystem; promtool checks the config."""

import json
import re
import shutil
import subprocess

import pytest

from conftest import REPO
from prom_text import scrape
from test_metrics import run_workload
from transforms import deploy_ok, plugin, wait_caught_up
from helpers import create_topic, produce_all, producer, unique

DASHBOARD = REPO / "deploy" / "grafana" / "sluice-dashboard.json"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
METRIC_NAME = re.compile(r"\b((?:sluice|process)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def queried_metrics(dashboard):
    """Every metric name in panel queries and template variable queries."""
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), str)]
    assert exprs, "the dashboard has no queries"
    return {name for e in exprs for name in METRIC_NAME.findall(e)}


def test_every_dashboard_metric_exists_in_a_live_broker(broker):
    names = queried_metrics(json.loads(DASHBOARD.read_text()))
    run_workload(broker)
    # Transform series exist while a transform is deployed: deploy one and let it work.
    source, sink, name = create_topic(broker.bootstrap, unique("tin")), unique("tout"), unique("up")
    deploy_ok(broker, {"name": name, "input": source, "output": sink}, plugin("uppercase"))
    produce_all(producer(broker.bootstrap), source, [(None, b"x")] * 10)
    wait_caught_up(broker, name, 10)
    m = scrape(broker)
    missing = []
    for name in sorted(names):
        if name in m.types and m.series(name):
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base and m.types.get(base) == "histogram" and m.series(name):
            continue
        missing.append(name)
    assert not missing, f"the dashboard queries metrics /metrics does not export: {missing}"
    # The panels cover each area the dashboard promises.
    for area in ("sluice_topic_bytes_in_total", "sluice_request_duration_seconds_bucket", "sluice_group_lag",
                 "sluice_group_members", "sluice_log_size_bytes", "process_resident_memory_bytes",
                 "sluice_transform_records_in_total", "sluice_transform_lag_records", "sluice_transform_state",
                 "sluice_tier_uploaded_bytes_total", "sluice_tier_upload_backlog_bytes", "sluice_tier_cache_hits_total"):
        assert area in names, area


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_prometheus_scrape_config_is_valid():
    r = subprocess.run(["promtool", "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
