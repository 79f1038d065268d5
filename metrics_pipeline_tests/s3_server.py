"""A real S3 API for tests: `local_stack.MotoS3Server` (moto as an HTTP server in a subprocess, not
patched boto3) in a temporary folder.

`MotoS3Server().start()` also puts its fake credentials into the environment (restored by `stop()`),
so code under test that builds its own client through the normal AWS credential chain talks to the
server given only its `endpoint_url`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from metrics_pipeline import local_stack

UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")  # never a developer's real profile


class MotoS3Server(local_stack.MotoS3Server):
    """Start with `start()`, stop with `stop()`; `endpoint_url`, `client()` and `create_bucket()`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="metrics_moto_"))
        super().__init__(self.folder)
        self._saved: dict[str, str | None] = {}

    def start(self) -> MotoS3Server:
        super().start()
        env = {k: v for k, v in self.env().items() if k != "AWS_ENDPOINT_URL_S3"}  # tests pass the endpoint
        self._saved = {name: os.environ.get(name) for name in (*env, *UNSET)}
        for name in UNSET:
            os.environ.pop(name, None)
        os.environ.update(env)
        return self

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            for name, value in self._saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            shutil.rmtree(self.folder, ignore_errors=True)
