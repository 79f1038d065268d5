"""Pure metric logic: periods, query builders, metric definitions. No Dagster imports here."""
