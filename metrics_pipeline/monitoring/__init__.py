"""What the user's monitoring stack (Prometheus, Alertmanager, Grafana) sees of the pipeline.

`warehouse_readings` and `instance_readings` read the warehouse and the Dagster instance into plain
values; `collector` turns them into Prometheus series, cached for a few seconds; `exporter` serves
them on `/metrics` (`metrics-pipeline exporter`). Everything here only reads.
"""
