"""pytest plugin: a real S3-protocol server on 127.0.0.1 for the whole session (moto's server mode).

It speaks S3 over real HTTP (signing, conditional puts with If-None-Match, listing, streaming), so the client library
is exercised as it is against AWS S3, Supabase Storage's S3 endpoint, Cloudflare R2 or MinIO; it stands in for them
and accepts any credentials. To point a remote at a real bucket instead: `s3://<bucket>/<prefix>` with
AWS_ENDPOINT_URL (omit it for AWS), AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set.

    def test_x(s3_server): remote = open_remote(s3_server.fresh_url(), env=s3_server.env)

moto comes with the `test` extra (`pip install -e ".[test]"`). The server is stopped at session end.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

BUCKET = "storytree-objects"
ACCESS_KEY = "test"
SECRET_KEY = "moto-test-secret-0123456789-not-a-real-key"  # tests assert it never shows up in messages


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>
    bucket: str
    env: dict[str, str] = field(default_factory=dict)  # the AWS_* variables a client needs

    def fresh_url(self, name: str = "") -> str:
        """An s3:// URL under a prefix no other test uses (one bucket, many isolated remotes)."""
        return f"s3://{self.bucket}/{name or 't'}-{uuid.uuid4().hex[:10]}"

    def client(self):  # noqa: ANN201 - boto3's client type is generated at run time
        """A boto3 client for the server: to plant bytes or inspect keys behind the code under test's back."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # part of the test extra: missing means a broken install, not an optional service
        pytest.fail(f"moto[server] is not installed ({exc}); run `.venv/bin/pip install -e \".[test]\"`",
                    pytrace=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
               "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
        running = S3Server(endpoint, BUCKET, env)
        running.client().create_bucket(Bucket=BUCKET)
        yield running
    finally:
        server.stop()
