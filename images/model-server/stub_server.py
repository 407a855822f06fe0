"""KServe model server for the stub linear model (model.npz with `w` and `b`, as e2e/models/stub_train.py
writes it). Serves the v1 (`/v1/models/<name>:predict`, {"instances": [[x...], ...]}) and the v2 /
Open Inference protocol (`/v2/models/<name>/infer`) on --http_port.

A missing or broken artifact makes the server exit non-zero with one clear line, so the predictor's
Deployment never becomes Available and the InferenceService reports it (bad-model scenario)."""

from __future__ import annotations

import argparse
import os
import sys

import kserve
import numpy as np
from kserve import Model, ModelServer
from kserve.utils.utils import get_predict_input, get_predict_response


class StubModel(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.w = None
        self.b = 0.0

    def load(self) -> bool:
        path = os.path.join(self.model_dir, "model.npz")
        m = np.load(path)
        w, b = np.asarray(m["w"], dtype=np.float64), float(np.asarray(m["b"]).reshape(-1)[0])
        if w.ndim != 1:
            raise ValueError(f"{path}: w must be a vector, has shape {w.shape}")
        self.w, self.b = w, b
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        x = np.asarray(get_predict_input(payload), dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.shape[-1] != self.w.shape[0]:
            raise kserve.errors.InvalidInput(f"expected {self.w.shape[0]} features per instance, got {x.shape[-1]}")
        y = x @ self.w + self.b
        return get_predict_response(payload, y, self.name)


def main() -> int:
    ap = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    ap.add_argument("--model_dir", default="/mnt/models")
    args, _ = ap.parse_known_args()
    model = StubModel(args.model_name, args.model_dir)
    try:
        model.load()
    except Exception as e:  # noqa: BLE001 - one clear line, then a non-zero exit
        print(f"stub-server: cannot load model from {args.model_dir}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 3
    ModelServer().start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
