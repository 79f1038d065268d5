"""Dagster's decorators for the beta and preview features this project uses on purpose, without the
warning Dagster prints at every load of the code location for each use. Only these features' own
warnings are silenced, and only while these decorators build a definition; any other beta, preview
or deprecation warning still shows.

- `backfill_policy` of `@asset` (beta): `BackfillPolicy.single_run()` makes a backfill one run per
  asset whose set-based SQL computes every partition of the range (DESIGN.md), not one run per day.
- `partitions_def` of `@asset_check` (preview): a check result per partition, so the UI shows which
  day of a backfill failed its check.
- `multi_observable_source_asset` (beta): one observation per source database that records every
  table's row count and newest `updated_at` (the late-data watermark).
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable
from contextlib import contextmanager

import dagster as dg


@contextmanager
def _allowing(message: str):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=re.escape(message), category=dg.BetaWarning)
        warnings.filterwarnings("ignore", message=re.escape(message), category=dg.PreviewWarning)
        yield


def _quiet(factory: Callable, message: str) -> Callable:
    """`factory` (a Dagster decorator factory) with the warning starting with `message` silenced both
    when the decorator is made and when it is applied (Dagster warns at either, by feature)."""

    @functools.wraps(factory)
    def make(*args, **kwargs):
        with _allowing(message):
            decorator = factory(*args, **kwargs)

        def apply(fn):
            with _allowing(message):
                return decorator(fn)

        return apply

    return make


asset = _quiet(dg.asset, "Parameter `backfill_policy` of function `asset` is currently in beta")
asset_check = _quiet(dg.asset_check, "Specifying a partitions_def on an AssetCheckSpec is currently in preview")
multi_observable_source_asset = _quiet(dg.multi_observable_source_asset,
                                       "Function `multi_observable_source_asset` is currently in beta")
