"""A small HTTP prediction service for the blood-cell classifier (chapter 9).

A teaching server: one request at a time, no authentication, this machine only.

    python shipping_serve.py SAVEDMODEL_DIR SERVICE.json

SERVICE.json holds the class names and the referral threshold (chosen on
validation in chapter 5). POST /predict with one 96x96 RGB PNG or JPEG image
as the body; the reply is JSON: the class, its confidence, whether to refer
the cell to a person, and the probabilities.
"""
import io
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

MAX_BODY_BYTES = 100_000
IMAGE_SHAPE = (96, 96, 3)


def load_settings(path):
    """Class names and referral threshold from SERVICE.json, checked before serving."""
    with open(path) as file:
        settings = json.load(file)
    threshold = settings["referral_threshold"]
    if not 0 < threshold < 1 or not settings["class_names"]:
        raise SystemExit(f"{path}: need class names and a threshold between 0 and 1, got {settings}")
    return settings["class_names"], threshold


def answer(pixels):
    """The reply for one image: class, confidence, referral, probabilities."""
    probabilities = SIGNATURE(image=tf.constant(pixels[np.newaxis]))["output_0"].numpy()[0]
    confidence = float(probabilities.max())
    return {"class": CLASS_NAMES[int(probabilities.argmax())], "confidence": confidence,
            "refer": confidence < REFERRAL_THRESHOLD, "probabilities": probabilities.tolist()}


class PredictionHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/predict":
            return self.reply(404, {"error": f"no endpoint {self.path}; POST images to /predict"})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.discard_body(length)
            return self.reply(413, {"error": f"body of {length:,} bytes is over the "
                                             f"{MAX_BODY_BYTES:,}-byte limit"})
        body = self.rfile.read(length)
        try:
            with Image.open(io.BytesIO(body)) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError):
            return self.reply(400, {"error": f"body ({length:,} bytes) is not a PNG or JPEG image"})
        if pixels.shape != IMAGE_SHAPE:
            height, width = pixels.shape[:2]
            return self.reply(422, {"error": f"image is {width}x{height} pixels; "
                                             "the model needs 96x96"})
        self.reply(200, answer(pixels))

    def discard_body(self, length):
        """Read and drop the body, so that the client can read our reply."""
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:  # the client gave up
                break
            length -= len(chunk)

    def reply(self, status, content):
        body = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    CLASS_NAMES, REFERRAL_THRESHOLD = load_settings(sys.argv[2])
    SIGNATURE = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    server = HTTPServer(("127.0.0.1", 0), PredictionHandler)  # port 0: any free port
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
