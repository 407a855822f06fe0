"""Your model server (a stand-in): KServe's v1 protocol on --port — GET /v1/models/NAME says it is ready,
POST /v1/models/NAME:predict answers {"instances": [[x], ...]} with {"predictions": [y, ...]}. It fits the
line of train.py when it starts; yours would load the model your training wrote (from a volume or a bucket).
serve.yaml runs it as `python3 /app/serve.py` in the image the `build:` step made of this folder."""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from train import fit

ap = argparse.ArgumentParser()
ap.add_argument("--model-name", default="my-model")
ap.add_argument("--port", type=int, default=8080)
args = ap.parse_args()
w, b, _ = fit()


class Handler(BaseHTTPRequestHandler):
    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 — http.server's name
        if self.path == f"/v1/models/{args.model_name}":
            return self._answer(200, {"name": args.model_name, "ready": True})
        self._answer(404, {"error": f"no route {self.path}"})

    def do_POST(self):  # noqa: N802
        if self.path != f"/v1/models/{args.model_name}:predict":
            return self._answer(404, {"error": f"no route {self.path}"})
        try:
            instances = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))["instances"]
            predictions = [round(w * float(x[0] if isinstance(x, list) else x) + b, 2) for x in instances]
        except (ValueError, KeyError, TypeError, IndexError) as e:
            return self._answer(400, {"error": f"expected {{\"instances\": [[x], ...]}}: {e}"})
        self._answer(200, {"predictions": predictions})

    def log_message(self, *a):
        pass


ThreadingHTTPServer(("", args.port), Handler).serve_forever()
