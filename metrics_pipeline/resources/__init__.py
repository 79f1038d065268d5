from metrics_pipeline.resources.database import SourceDatabase, SourceUnavailableError
from metrics_pipeline.resources.warehouse import Warehouse

__all__ = ["SourceDatabase", "SourceUnavailableError", "Warehouse"]
