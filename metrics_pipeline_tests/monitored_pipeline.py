"""A small deployment for the monitoring tests, made as the pipeline makes it: SQLite sources, warehouse
and Dagster instance (the root dagster.yaml) in one folder, with

- two days of activity (2026-01-05 and 06) materialized by a `daily_metrics_job` range run;
- the sources observed by `observe_sources_job`, whose freshness checks find every table stale
  (their newest change is in January 2026) and store 15 open `freshness` alerts (high);
- then a failed `daily_metrics_job` run: `daily_ai_metrics` after its source table was dropped.

So the newest partitions are old (the freshness rules fire), the last nightly run failed, and high
data-quality alerts are open. Also: the queries of the Grafana dashboard.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from metrics_pipeline.contract import DATABASES
from metrics_pipeline.local_stack import environment
from metrics_pipeline.runner import run_range
from metrics_pipeline_tests.sources import Sources

ROOT = Path(__file__).resolve().parents[1]
DAYS = ["2026-01-05", "2026-01-06"]
NEWEST_USER_UPDATE = "2026-01-06 18:30:00"
NEWEST_SESSION_UPDATE = "2026-01-06 20:05:00"


@dataclass
class MonitoredPipeline:
    sources: Sources
    home: Path

    @property
    def env(self) -> dict[str, str]:
        """What the exporter reads: the instance and the warehouse."""
        return {"DAGSTER_HOME": str(self.home), "METRICS_WAREHOUSE_URL": self.sources.warehouse_url}

    def instance(self) -> dg.DagsterInstance:
        with environment(self.env):
            return dg.DagsterInstance.from_config(str(self.home))


def build(root: Path) -> MonitoredPipeline:
    sources = Sources({db: f"sqlite:///{root}/{db}.db" for db in DATABASES}, f"sqlite:///{root}/warehouse.db",
                      str(root / "exports"))
    sources.insert("users", {"id": "u1", "created_at": "2026-01-05 10:00:00", "platform": "ios"},
                   {"id": "u2", "created_at": "2026-01-06 09:00:00", "platform": "android"},
                   {"id": "u3", "created_at": NEWEST_USER_UPDATE, "platform": "ios"})
    sources.insert("user_sessions",
                   {"user_id": "u1", "started_at": "2026-01-05 12:00:00", "ended_at": "2026-01-05 12:10:00"},
                   {"user_id": "u1", "started_at": "2026-01-06 10:00:00", "ended_at": "2026-01-06 10:30:00"},
                   {"user_id": "u2", "started_at": "2026-01-06 11:00:00", "ended_at": "2026-01-06 11:10:00"},
                   {"user_id": "u1", "started_at": "2026-01-06 20:00:00", "ended_at": "2026-01-06 20:05:00",
                    "updated_at": NEWEST_SESSION_UPDATE})
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    pipeline = MonitoredPipeline(sources, home)
    defs = sources.defs()
    with pipeline.instance() as instance, environment(pipeline.env):
        assert run_range(defs, "day", DAYS, instance, assets=[dg.AssetKey("daily_activity_metrics")]).success
        assert defs.resolve_job_def("observe_sources_job").execute_in_process(instance=instance).success
        sources.execute("app", "DROP TABLE ai_requests")
        assert not run_range(defs, "day", DAYS, instance, assets=[dg.AssetKey("daily_ai_metrics")]).success
    return pipeline


def utc_timestamp(text: str) -> float:
    """Unix time of a naive UTC `YYYY-MM-DD[ HH:MM:SS]`."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


def dashboard_queries() -> list[str]:
    """Every PromQL query of the Grafana dashboard, its panels all on the `datasource` variable."""
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "metrics_pipeline.json").read_text())
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "grain"]
    assert dashboard["templating"]["list"][0] | {"current": {}} == {
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {},
        "hide": 0, "refresh": 1, "regex": "", "options": []}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in panels)
    return [t["expr"] for p in panels for t in p["targets"]]
