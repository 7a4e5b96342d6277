"""Pull benchmark (issue 21): N objects of S MB from a real S3-protocol server (moto's server mode, in its own
process on 127.0.0.1), three ways at the same concurrency C, alternating within each repetition:

    get_many     storytree's `ObstoreRemote.get_many`: streamed to a temp file beside each destination, sha256 checked
                 while streaming, fsynced and renamed into place (what a pull does)
    raw threads  `obstore.get(store, key).bytes()` in a thread pool of C: bytes in memory, nothing checked or written
    raw async    `obstore.get_async` + `bytes_async` under an asyncio semaphore of C
    raw+hash+write  raw streams in a thread pool of C, hashed, written and fsynced in place (no temp file, no rename,
                 no folder fsync): the least a verified, durable pull does, to show what get_many adds to it

The ratio is get_many's throughput over the faster raw way's (goal >= 0.8x). Medians of the repetitions.

    .venv/bin/python bench/objects_pull.py                 # N=100, S=2, C=8, 5 repetitions
    .venv/bin/python bench/objects_pull.py 100 2 8 --reps 7

Prints the figures of this run; results go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storytree_build.objects.keys import hash_bytes, relative_key  # noqa: E402
from storytree_build.objects.remote import STREAM_CHUNK, open_remote  # noqa: E402

BUCKET = "bench"
ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "bench-not-secret", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of another process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            return server, endpoint
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("moto server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=100)
    parser.add_argument("mb", type=float, nargs="?", default=2.0)
    parser.add_argument("concurrency", type=int, nargs="?", default=8)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    import boto3
    import obstore

    server, endpoint = start_moto()
    scratch = Path(tempfile.mkdtemp(prefix="objects-pull-"))
    try:
        env = {**ENV, "AWS_ENDPOINT_URL": endpoint}
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="x",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        remote = open_remote(f"s3://{BUCKET}/pull", env=env)
        size = int(args.mb * 2**20)
        shas = []
        for i in range(args.n):
            data = os.urandom(size)
            path = scratch / "src"
            path.write_bytes(data)
            shas.append(hash_bytes(data))
            remote.put(shas[-1], path)
        store = remote._store  # the very same obstore store (client, limits) for the raw runs
        keys = [relative_key(s) for s in shas]

        def run_get_many() -> None:
            dest = scratch / "pulled"
            results = remote.get_many([(s, dest / s[:2] / s) for s in shas], max_workers=args.concurrency)
            failed = [r for r in results if not r.ok]
            if failed:
                raise SystemExit(f"{len(failed)} failed: {failed[0].error}")

        def clean() -> None:  # untimed: the next pull writes new files, as a pull into a fresh clone does
            shutil.rmtree(scratch / "pulled", ignore_errors=True)
            os.sync()

        def run_raw_threads() -> None:
            with ThreadPoolExecutor(args.concurrency) as pool:
                total = sum(pool.map(lambda k: len(obstore.get(store, k).bytes()), keys))
            assert total == size * args.n

        def run_floor() -> None:  # the least a verified, durable pull does: stream, hash, write, fsync; no temp file
            def one(sha: str) -> None:
                path = scratch / "pulled" / sha[:2] / sha
                path.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with open(path, "wb") as out:
                    for chunk in obstore.get(store, relative_key(sha)).stream(min_chunk_size=STREAM_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                    os.fsync(out.fileno())
                assert digest.hexdigest() == sha

            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(one, shas))

        def run_raw_async() -> None:
            async def pull() -> int:
                gate = asyncio.Semaphore(args.concurrency)

                async def one(key: str) -> int:
                    async with gate:
                        result = await obstore.get_async(store, key)
                        return len(await result.bytes_async())

                return sum(await asyncio.gather(*(one(k) for k in keys)))

            assert asyncio.run(pull()) == size * args.n

        ways = {"get_many": run_get_many, "raw threads": run_raw_threads, "raw async": run_raw_async,
                "raw+hash+write": run_floor}
        times: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}  # this process's CPU seconds (user + system)
        server_cpu: dict[str, list[float]] = {name: [] for name in ways}  # moto's, in its own process
        run_get_many()  # warm the server and the connection pool once
        for rep in range(args.reps):
            order = list(ways) if rep % 2 == 0 else list(reversed(ways))
            for name in order:
                clean()
                started, cpu_started, server_started = time.perf_counter(), time.process_time(), cpu_of(server.pid)
                ways[name]()
                times[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
                server_cpu[name].append(cpu_of(server.pid) - server_started)

        total_mb = args.n * args.mb
        print(f"{args.n} x {args.mb:g} MB from moto's S3 server, concurrency {args.concurrency}, "
              f"{args.reps} repetitions (median, range):")
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, t in times.items():
            print(f"  {name:14} {medians[name]:.3f} s ({min(t):.3f}-{max(t):.3f})  "
                  f"{total_mb / medians[name]:.0f} MB/s  CPU: client {statistics.median(cpu[name]):.2f} s, "
                  f"server {statistics.median(server_cpu[name]):.2f} s")
        raw_best = min(medians["raw threads"], medians["raw async"])
        print(f"  machine: {os.cpu_count()} CPUs, 1-minute load average {os.getloadavg()[0]:.1f} at the end")
        print(f"  ratio get_many / faster raw: {raw_best / medians['get_many']:.2f}x (goal >= 0.8)")
        print(f"  ratio get_many / raw threads: {medians['raw threads'] / medians['get_many']:.2f}x, "
              f"/ raw async: {medians['raw async'] / medians['get_many']:.2f}x, "
              f"/ raw+hash+write: {medians['raw+hash+write'] / medians['get_many']:.2f}x")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
