"""Resource instances, configured from environment variables with embedded SQLite defaults."""

from __future__ import annotations

import os

import dagster as dg

from metrics_pipeline.contract import DATABASES
from metrics_pipeline.resources import SourceDatabase, Warehouse
from metrics_pipeline.resources.exporter import ExportResource
from metrics_pipeline.settings import database_url, url_env_var


def resource_key(database: str) -> str:
    return f"{database}_db"


def _url(name: str) -> str | dg.EnvVar:
    """An EnvVar when the variable is set, so the UI shows its name rather than a URL with secrets."""
    var = url_env_var(name)
    return dg.EnvVar(var) if os.environ.get(var) else database_url(name)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        **{resource_key(db): SourceDatabase(name=db, url=_url(db)) for db in DATABASES},
        "warehouse": Warehouse(url=_url("warehouse")),
        "exporter": ExportResource.from_env(),
    }


def warehouse_from_env() -> Warehouse:
    """The warehouse for use outside Dagster (CLI), its URL resolved from the environment now."""
    return Warehouse(url=database_url("warehouse"))
