"""Load and cold start of ``zoo demo`` against a hand-written minimal gr.Interface.

    python benchmarks/demo_load.py [--clients 16] [--requests 20] [--procs 4]

Both servers serve the same trained digits model (``lenet5.digits``, or a stand-in
trained for seconds when its weights are absent) in a subprocess on 127.0.0.1:

- cold start: from launching the process to the first answer a client gets;
- load: ``clients`` gradio_client clients (spread over ``procs`` processes, because a
  gradio_client call costs ~150 ms of client CPU) each send ``requests`` digit images;
  requests/s over the whole run, p50/p95 latency, failures (must be 0).

Not part of the test suite; prints the figures and zoo/baseline ratios. The machine is
shared and noisy: compare the ratios, measured in the same run, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIGIT = str(Path(__file__).resolve().parents[1] / "demos" / "examples" / "digit_7.png")

BASELINE = '''
import os, sys
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
import gradio as gr
import numpy as np
import torch
import zoo

model = zoo.get(sys.argv[1])
model.eval()


def predict(image):
    img = image.convert("L").resize((32, 32))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None, None]
    if x.mean() > 0.5:          # dark ink on paper: the model wants light on dark
        x = 1 - x
    with torch.inference_mode():
        p = torch.softmax(model((x - 0.5) / 0.5), dim=-1)[0]
    return {str(i): float(v) for i, v in enumerate(p)}


demo = gr.Interface(predict, gr.Image(type="pil"), gr.Label(num_top_classes=5),
                    api_name="predict", flagging_mode="never")
_, url, _ = demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[2]),
                        prevent_thread_lock=True, quiet=True)
print("Serving on", url, flush=True)
demo.block_thread()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path) -> tuple[subprocess.Popen, str, float]:
    """Launch a server; return (process, url, seconds to the first answer)."""
    from gradio_client import Client, handle_file

    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    while "Serving on " not in log.read_text():
        if proc.poll() is not None or time.perf_counter() - t0 > 300:
            raise SystemExit(f"server failed to start:\n{log.read_text()}")
        time.sleep(0.05)
    url = log.read_text().split("Serving on ", 1)[1].split()[0]
    Client(url, verbose=False).predict(handle_file(DIGIT), api_name="/predict")
    return proc, url, time.perf_counter() - t0


def _worker(url: str, threads: int, requests: int, go, out) -> None:
    import threading

    from gradio_client import Client, handle_file

    clients = [Client(url, verbose=False) for _ in range(threads)]
    lat: list[float] = []
    fails: list[str] = []

    def run(c):
        for _ in range(requests):
            t = time.perf_counter()
            try:
                ans = c.predict(handle_file(DIGIT), api_name="/predict")
                if ans["label"] != "7":
                    fails.append(f"wrong answer {ans['label']}")
            except Exception as e:  # counted and reported
                fails.append(repr(e)[:200])
            lat.append(time.perf_counter() - t)

    go.wait()
    ts = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((lat, fails))


def load(url: str, clients: int, requests: int, procs: int) -> dict:
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [ctx.Process(target=_worker, args=(url, n, requests, go, out)) for n in per if n]
    for p in ps:
        p.start()
    time.sleep(8)                       # let the workers import and connect
    t0 = time.perf_counter()
    go.set()
    lat, fails = [], []
    for _ in ps:
        a, b = out.get()
        lat += a
        fails += b
    wall = time.perf_counter() - t0
    for p in ps:
        p.join()
    lat.sort()
    return {"rps": len(lat) / wall, "p50": statistics.median(lat),
            "p95": lat[int(0.95 * (len(lat) - 1))], "fails": len(fails), "n": len(lat),
            "first_fail": fails[0] if fails else ""}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--procs", type=int, default=4)
    args = ap.parse_args(argv)

    from zoo.demos.standins import digits_model

    tmp = Path(tempfile.mkdtemp(prefix="zoo-demo-bench-"))
    model = digits_model(tmp)
    base_py = tmp / "baseline.py"
    base_py.write_text(BASELINE)
    results = {}
    for name, cmd in (
        ("zoo demo", [sys.executable, "-m", "zoo", "demo", model]),
        ("minimal gr.Interface", [sys.executable, str(base_py), model]),
    ):
        port = free_port()
        full = cmd + (["--port", str(port)] if name == "zoo demo" else [str(port)])
        proc, url, cold = start(full, tmp / f"{name.split()[0]}.log")
        try:
            stats = load(url, args.clients, args.requests, args.procs)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        results[name] = {"cold": cold, **stats}
        print(f"{name:22s} cold start {cold:6.2f} s  {stats['rps']:6.2f} req/s  "
              f"p50 {stats['p50'] * 1000:6.0f} ms  p95 {stats['p95'] * 1000:6.0f} ms  "
              f"{stats['n']} requests, {stats['fails']} failures {stats['first_fail']}",
              flush=True)
    z, b = results["zoo demo"], results["minimal gr.Interface"]
    print(f"\nmodel: {model}; {args.clients} clients x {args.requests} requests "
          f"over {args.procs} processes")
    print(f"ratios zoo/baseline: throughput {z['rps'] / b['rps']:.2f}x, "
          f"cold start {z['cold'] / b['cold']:.2f}x, p50 latency {z['p50'] / b['p50']:.2f}x")
    if z["fails"] or b["fails"]:
        raise SystemExit("failures under load")


if __name__ == "__main__":
    main()
