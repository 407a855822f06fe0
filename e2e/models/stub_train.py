"""Stub model, trained for real with data parallelism: a linear regression y = X·w + b.

Each rank (RANK of WORLD_SIZE, as the training operator sets them) holds a shard of a dataset generated
from a fixed seed, computes the mean-squared-error gradient on it, and the gradients are averaged
across ranks with a tiny TCP allreduce served by rank 0 at MASTER_ADDR:MASTER_PORT. After `--steps`
steps rank 0 writes the model to `--out` (model.npz: w, b; plus model.json with metrics).
numpy only; deterministic: same inputs → same weights (up to float summation order).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

SEED = 20241125
N_SAMPLES = 512
N_FEATURES = 4
TRUE_W = np.array([2.0, -1.0, 0.5, 3.0])
TRUE_B = 0.25


def dataset(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES))
    y = x @ TRUE_W + TRUE_B + rng.normal(scale=0.01, size=N_SAMPLES)
    return x, y


def shard(x: np.ndarray, y: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, np.ndarray]:
    return x[rank::world], y[rank::world]


def gradient(w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/d(w,b) of mean((x·w + b - y)^2), as one vector [dw..., db]."""
    err = x @ w + b - y
    return np.concatenate([2 * x.T @ err / len(y), [2 * err.mean()]])


# --- the allreduce: rank 0 sums everyone's vector and sends the mean back --------------------------

def _send(sock: socket.socket, v: np.ndarray) -> None:
    data = v.astype("<f8").tobytes()
    sock.sendall(struct.pack("<I", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


def _recv(sock: socket.socket) -> np.ndarray:
    (n,) = struct.unpack("<I", _recv_exact(sock, 4))
    return np.frombuffer(_recv_exact(sock, n), dtype="<f8").copy()


class AllReduce:
    def __init__(self, rank: int, world: int, addr: str, port: int, timeout: float = 300.0):
        self.rank, self.world, self.peers, self.sock = rank, world, [], None
        if world == 1:
            return
        if rank == 0:
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("0.0.0.0", port))
            srv.listen(world)
            srv.settimeout(timeout)
            for _ in range(world - 1):
                conn, _ = srv.accept()
                conn.settimeout(timeout)
                self.peers.append(conn)
            srv.close()
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    self.sock = socket.create_connection((addr, port), timeout=5)
                    self.sock.settimeout(timeout)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)

    def mean(self, v: np.ndarray) -> np.ndarray:
        if self.world == 1:
            return v
        if self.rank == 0:
            total = v.copy()
            for p in self.peers:
                total += _recv(p)
            avg = total / self.world
            for p in self.peers:
                _send(p, avg)
            return avg
        _send(self.sock, v)
        return _recv(self.sock)


def train(rank: int, world: int, steps: int, lr: float, reduce: AllReduce | None = None) -> tuple[np.ndarray, float, float]:
    x, y = shard(*dataset(), rank, world)
    w, b = np.zeros(N_FEATURES), 0.0
    for _ in range(steps):
        g = gradient(w, b, x, y)
        g = reduce.mean(g) if reduce else g
        w, b = w - lr * g[:-1], b - lr * g[-1]
    xa, ya = dataset()
    mse = float(np.mean((xa @ w + b - ya) ** 2))
    return w, float(b), mse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", "--epochs", type=int, default=200, help="full-batch gradient steps (= epochs)")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--out", default="/mnt/output")
    ap.add_argument("--corrupt", action="store_true", help="write a broken artifact (for the bad-model scenario)")
    ap.add_argument("--linger", type=float, default=0.0,
                    help="seconds to stay after training: Katib's metrics collector looks for the trial's process once, at its"
                         " start, and fails the trial when a ~1 s training has already exited ('unable to find main pid')")
    a = ap.parse_args(argv)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    addr, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "23456"))
    print(f"rank {rank}/{world} master {addr}:{port}", flush=True)
    t0 = time.monotonic()
    w, b, mse = train(rank, world, a.steps, a.lr, AllReduce(rank, world, addr, port))
    print(f"rank {rank}: w={np.round(w, 4).tolist()} b={b:.4f} mse={mse:.6f} in {time.monotonic() - t0:.2f}s", flush=True)
    # the objective a tuner reads (Katib's stdout collector: `<RFC 3339 time> name=value`)
    print(f"{datetime.now(timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')} loss={mse:.8g}", flush=True)
    if rank == 0:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        if a.corrupt:
            (out / "model.npz").write_bytes(b"not a model")
        else:
            tmp = out / "model.tmp.npz"
            np.savez(tmp, w=w, b=np.array([b]))
            os.replace(tmp, out / "model.npz")
        (out / "model.json").write_text(json.dumps({"features": N_FEATURES, "w": w.tolist(), "b": b, "mse": mse,
                                                    "world_size": world, "steps": a.steps}))
        print(f"wrote {out / 'model.npz'}", flush=True)
    time.sleep(a.linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
