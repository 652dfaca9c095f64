"""`selfimprove serve` and optillm side by side, in front of the same llama.cpp server (llama-cpp-python's, the
embedded model), on the same problems: 20 GSM8K test problems (`../shared/data/gsm8k`) and 20 arithmetic level-2
problems, each asked as one chat message (the task's few-shot prompt) for self-consistency with 5 samples.

Between the two and llama.cpp sits a counting proxy (this script), so "upstream requests per problem" and
"completions generated per problem" are counted, not estimated. For each system: seconds per problem, upstream
requests and completions per problem, generated tokens per problem, accuracy (the task's own grader on the
returned text) with its Wilson interval, and the paired difference.

optillm is not a dependency of this project: install it apart (`python -m venv /tmp/optvenv &&
/tmp/optvenv/bin/pip install torch==2.13.0 optillm==0.4.0`) and give its executable:

    python benchmarks/serve_vs_optillm.py --optillm /tmp/optvenv/bin/optillm     # about 15 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from selfimprove.core.stats import paired_comparison, wilson_interval
from selfimprove.engines.embedded import embedded_model_path
from selfimprove.engines.openai_compat import OpenAICompatEngine
from selfimprove.serve.server import BackgroundServer
from selfimprove.serve.settings import ServeSettings
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.gsm8k import GSM8KTask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen | None, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not start within {seconds:.0f} s")


class CountingProxy:
    """Forwards every request to the upstream and counts the generation requests, their choices and tokens."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.requests = self.completions = self.tokens = 0
        self.asked_n: list[int] = []
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.client = httpx.AsyncClient(timeout=600)
        self.app.add_api_route("/{path:path}", self.forward, methods=["GET", "POST"])

    def reset(self) -> None:
        with self.lock:
            self.requests = self.completions = self.tokens = 0
            self.asked_n = []

    async def forward(self, path: str, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        reply = await self.client.request(request.method, f"{self.upstream}/{path}", content=body, headers=headers)
        if path.endswith("completions") and request.method == "POST":
            asked = json.loads(body or b"{}").get("n", 1)
            try:
                answer = reply.json()
            except ValueError:
                answer = {}
            with self.lock:
                self.requests += 1
                self.asked_n.append(asked or 1)
                self.completions += len(answer.get("choices") or [])
                self.tokens += (answer.get("usage") or {}).get("completion_tokens") or 0
        return Response(reply.content, reply.status_code, media_type=reply.headers.get("content-type"))

    def start(self, port: int) -> None:
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()


def problems(count: int) -> list[tuple[str, object, object]]:
    """(task label, task, problem): `count` GSM8K test problems and `count` arithmetic level-2 problems."""
    gsm8k = GSM8KTask(data=str(SHARED / "gsm8k" / "test_dev200.jsonl"), shots=4)
    arithmetic = ArithmeticTask(level="2", shots=4)
    return [("gsm8k", gsm8k, p) for p in gsm8k.problems(limit=count)] + [
        ("arithmetic", arithmetic, p) for p in arithmetic.problems(limit=count)
    ]


def ask_all(url: str, model: str, items, max_tokens: int, proxy: CountingProxy, extra: dict | None = None) -> dict:
    """Each problem asked once, one after another; what the system returned and cost."""
    client = openai.OpenAI(base_url=url, api_key="none", timeout=900, max_retries=0)
    proxy.reset()
    correct, seconds, errors = [], [], 0
    for _, task, problem in items:
        started = time.perf_counter()
        try:
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": task.format_prompt(problem)}],
                max_tokens=max_tokens, temperature=1.0, stop=list(task.stop), seed=0, extra_body=extra,
            )  # fmt: skip
            text = reply.choices[0].message.content or ""
        except openai.OpenAIError as exc:
            errors, text = errors + 1, ""
            print(f"  {problem.id}: {type(exc).__name__}: {str(exc)[:160]}", file=sys.stderr)
        seconds.append(time.perf_counter() - started)
        correct.append(bool(task.grade(problem, task.extract(text))))
        print(f"  {problem.id}: {seconds[-1]:.1f} s, correct={correct[-1]}", flush=True)
    count = len(items)
    return {
        "correct": correct, "accuracy": sum(correct) / count, "interval": wilson_interval(sum(correct), count),
        "seconds_per_problem": statistics.mean(seconds), "requests_per_problem": proxy.requests / count,
        "completions_per_problem": proxy.completions / count, "tokens_per_problem": proxy.tokens / count,
        "asked_n": sorted(set(proxy.asked_n)), "errors": errors,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optillm", required=True, help="optillm's executable (installed apart)")
    parser.add_argument("--problems", type=int, default=20, help="problems per task")
    parser.add_argument("--samples", type=int, default=5, help="self-consistency samples (optillm's k is 5)")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument(
        "--approach",
        action="append",
        default=None,
        help="optillm approach (repeat for several; default self_consistency)",
    )
    parser.add_argument("--out", default="/tmp/serve_vs_optillm.json")
    args = parser.parse_args()

    llama_port, proxy_port, ours_port, optillm_port = (free_port() for _ in range(4))
    llama = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()), "--port", str(llama_port),
         "--n_ctx", "4096", "--model_alias", "gemma"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    optillm = None
    try:
        wait_until_up(f"http://127.0.0.1:{llama_port}/v1/models", llama, "llama.cpp server")
        proxy = CountingProxy(f"http://127.0.0.1:{llama_port}")
        proxy.start(proxy_port)
        upstream = f"http://127.0.0.1:{proxy_port}/v1"
        wait_until_up(f"{upstream}/models", None, "the counting proxy")
        items = problems(args.problems)
        results = {}

        os.environ.setdefault("OPENAI_API_KEY", "none")
        engine = OpenAICompatEngine(base_url=upstream, model="gemma", max_concurrency=8)
        settings = ServeSettings(port=ours_port, served_name="gemma", store="/tmp/serve_vs_optillm.sqlite")
        ours = BackgroundServer(engine, settings)
        try:
            print("selfimprove serve:", flush=True)
            # optillm draws its k samples and no greedy path: so does ours here, for the same budget.
            no_greedy = {"selfimprove": {"settings": {"greedy_baseline": False}}}
            results["selfimprove"] = ask_all(ours.url, f"self-consistency-{args.samples}/gemma", items,
                                             args.max_tokens, proxy, no_greedy)  # fmt: skip
        finally:
            ours.stop()

        environment = {**os.environ, "OPENAI_API_KEY": "none"}
        for approach in args.approach or ["self_consistency"]:
            optillm = subprocess.Popen(
                [args.optillm, "--base-url", upstream, "--port", str(optillm_port), "--approach", approach],
                stdout=subprocess.DEVNULL, stderr=open(f"/tmp/optillm-{approach}.log", "w"), env=environment,
            )  # fmt: skip
            wait_until_up(f"http://127.0.0.1:{optillm_port}/v1/models", optillm, "optillm", seconds=600)
            print(f"optillm {approach}:", flush=True)
            results[f"optillm {approach}"] = ask_all(f"http://127.0.0.1:{optillm_port}/v1", "gemma", items,
                                                     args.max_tokens, proxy)  # fmt: skip
            optillm.terminate()
            optillm.wait(timeout=30)
            optillm = None
    finally:
        for process in (optillm, llama):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)

    print(f"\n{len(items)} problems ({args.problems} GSM8K + {args.problems} arithmetic L2), "
          f"self-consistency k={args.samples}, T 1, max_tokens {args.max_tokens}")  # fmt: skip
    print("| system | s / problem | upstream requests / problem | completions / problem | tokens / problem | "
          "accuracy | 95% interval | errors |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for name, r in results.items():
        low, high = r["interval"]
        print(f"| {name} | {r['seconds_per_problem']:.1f} | {r['requests_per_problem']:.1f} | "
              f"{r['completions_per_problem']:.1f} | {r['tokens_per_problem']:.0f} | {r['accuracy']:.1%} | "
              f"[{low:.1%}, {high:.1%}] | {r['errors']} |")  # fmt: skip
    ours = results["selfimprove"]
    for name, r in results.items():
        if name == "selfimprove":
            continue
        paired = paired_comparison(r["correct"], ours["correct"])
        low, high = paired.interval
        print(f"selfimprove - {name}: accuracy {paired.difference:+.1%} [{low:+.1%}, {high:+.1%}], McNemar p "
              f"{paired.p_value:.2f}; seconds {name} / selfimprove "
              f"{r['seconds_per_problem'] / ours['seconds_per_problem']:.2f}x")  # fmt: skip
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
