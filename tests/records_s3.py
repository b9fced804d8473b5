"""An S3-compatible server for records' storage tests and benchmarks: moto's server as
its own process on a free loopback port (like a real object store, it holds its memory
apart from the service's)."""

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3

from tools.processes import _wait_port, free_port

ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


class MotoS3:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "MotoS3":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / "moto.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from moto.server import ThreadedMotoServer; import threading; "
                f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={self.port}, "
                "verbose=False); s.start(); threading.Event().wait()",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_port(self.port, 30, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"records-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str) -> dict[str, object]:
        """RECORDS_* settings pointing the files backend at this server's `bucket`."""
        return {
            "files_backend": "s3",
            "s3_endpoint_url": self.url,
            "s3_bucket": bucket,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
        }
