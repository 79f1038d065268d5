"""A real S3 API for tests: moto in server mode on a free localhost port (HTTP, not patched boto3).

`MotoS3Server().start()` sets fake AWS credentials in the environment (restored by `stop()`), so code
under test that builds its own client through the normal AWS credential chain talks to the server
given only its `endpoint_url`.
"""

from __future__ import annotations

import logging
import os
import uuid

import boto3

REGION = "us-east-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # never pick up a developer's real profile or config
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


class MotoS3Server:
    """Start with `start()`, stop with `stop()`; `endpoint_url`, `client()` and `create_bucket()`."""

    def __init__(self) -> None:
        self._server = None
        self._saved: dict[str, str | None] = {}
        self.endpoint_url = ""

    def start(self) -> MotoS3Server:
        from moto.server import ThreadedMotoServer

        names = [*FAKE_ENV, *UNSET, "NO_PROXY", "no_proxy"]
        self._saved = {name: os.environ.get(name) for name in names}
        for name in UNSET:
            os.environ.pop(name, None)
        os.environ.update(FAKE_ENV)
        for name in ("NO_PROXY", "no_proxy"):  # a proxy must not intercept localhost
            os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"]))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # port 0: the OS picks a free port when the server binds (no race with a pre-probed port)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        try:
            if self._server is not None:
                self._server.stop()
        finally:
            for name, value in self._saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def create_bucket(self, prefix: str = "exports") -> str:
        """A new, empty bucket with a unique name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
