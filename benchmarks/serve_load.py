"""`selfimprove serve` under load: 1, 8 and 32 concurrent clients against the embedded model on loopback, the
server in its own process (`selfimprove serve`), with concurrent requests' engine calls merged and, side by
side, one at a time (`--no-merge-requests`, as behind a lock); each mode in a fresh server process.
Each client sends `--requests` chat requests (plain route, 32 tokens, T 0.7, its own seed) one after another.
Prints p50 / p95 latency, aggregate generated tokens/s, errors, and the merged / one-at-a-time throughput ratio.

    python benchmarks/serve_load.py             # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai


def start_server(merge: bool, store: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "selfimprove.cli", "serve", "--port", str(port), "--served-name", "gemma",
               "--store", str(store), "--max-concurrent-per-key", "64", "--requests-per-minute", "100000",
               "--merge-requests" if merge else "--no-merge-requests"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {' '.join(command)}")
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def load(url: str, clients: int, requests: int, max_tokens: int) -> tuple[list[float], int, float, int]:
    """(latencies, generated tokens, wall seconds, errors) of `clients` threads each sending `requests`."""
    client = openai.OpenAI(base_url=url, api_key="none", timeout=600, max_retries=0)
    latencies, tokens, errors = [], [0], [0]
    lock = threading.Lock()

    def one(i: int) -> None:
        for j in range(requests):
            started = time.perf_counter()
            try:
                reply = client.chat.completions.create(
                    model="gemma", max_tokens=max_tokens, temperature=0.7, seed=i * 1000 + j,
                    messages=[{"role": "user", "content": f"Write a short sentence about the number {i + j}."}],
                )  # fmt: skip
            except openai.OpenAIError:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                tokens[0] += reply.usage.completion_tokens

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, tokens[0], time.perf_counter() - started, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    print(f"{'sharing':<12} {'clients':>7} {'requests':>8} {'p50 s':>7} {'p95 s':>7} {'tok/s':>7} errors")
    throughput: dict[tuple[bool, int], float] = {}
    for merge in (True, False):
        name = "merged" if merge else "one at once"
        process, url = start_server(merge, Path(tempfile.mkdtemp()) / "s.sqlite")
        try:
            for clients in (1, 8, 32):
                latencies, tokens, wall, errors = load(url, clients, args.requests, args.max_tokens)
                ordered = sorted(latencies)
                p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
                throughput[merge, clients] = tokens / wall
                print(f"{name:<12} {clients:>7} {len(latencies):>8} {statistics.median(latencies):>7.2f} "
                      f"{p95:>7.2f} {tokens / wall:>7.1f} {errors}")  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=60)
    for clients in (1, 8, 32):
        ratio = throughput[True, clients] / throughput[False, clients]
        print(f"{clients} clients: merged / one-at-a-time throughput {ratio:.2f}x")


if __name__ == "__main__":
    main()
