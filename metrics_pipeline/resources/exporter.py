"""ExportResource: where the monthly exports are written (S3 through dagster-aws, or a local folder)."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from metrics_pipeline.exports import ExportTarget, target_from_uri
from metrics_pipeline.settings import EXPORT_S3_ENDPOINT_ENV, EXPORT_URI_ENV, export_uri


class ExportResource(dg.ConfigurableResource):
    """The export root: `s3://bucket/prefix` (any S3-compatible store) or a local folder / `file://` URI."""

    uri: str = Field(description=f"s3://bucket/prefix, file:///absolute/path or a folder path ({EXPORT_URI_ENV})")
    s3_endpoint_url: str | None = Field(
        default=None, description=f"endpoint of an S3-compatible store; AWS when unset ({EXPORT_S3_ENDPOINT_ENV})")
    s3_region_name: str | None = Field(default=None, description="AWS region; the AWS chain decides when unset")
    s3_max_attempts: int = Field(default=5, description="boto3 attempts per S3 call (retries included)")

    @classmethod
    def from_env(cls) -> ExportResource:
        """Configured from METRICS_EXPORT_URI / METRICS_EXPORT_S3_ENDPOINT_URL: an EnvVar when set (the UI
        shows the variable's name), else the embedded default folder `$METRICS_DATA_DIR/exports`."""
        uri = dg.EnvVar(EXPORT_URI_ENV) if os.environ.get(EXPORT_URI_ENV) else export_uri()
        endpoint = dg.EnvVar(EXPORT_S3_ENDPOINT_ENV) if os.environ.get(EXPORT_S3_ENDPOINT_ENV) else None
        return cls(uri=uri, s3_endpoint_url=endpoint)

    def target(self) -> ExportTarget:
        """The configured target; raises ConfigError naming METRICS_EXPORT_URI on a malformed URI."""
        # outside Dagster (scripts, tests) an EnvVar field is not resolved yet: resolve it here
        uri, endpoint = (v.get_value() if isinstance(v, dg.EnvVar) else v for v in (self.uri, self.s3_endpoint_url))
        return target_from_uri(uri, s3_endpoint_url=endpoint, s3_region_name=self.s3_region_name,
                               s3_max_attempts=self.s3_max_attempts)
