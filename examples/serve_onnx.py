"""Serve a model from `fittorch export` with only onnxruntime and numpy (no torch, no fittorch).

    python examples/serve_onnx.py runs/iris_csv/model.onnx examples/data/iris_new.csv
"""
import json
import sys

import numpy as np
import onnxruntime as ort

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
features = json.loads(meta["feature_names"])  # the training columns, in the graph's order
classes = json.loads(meta["class_names"])  # None for a regression model

with open(sys.argv[2]) as f:  # a CSV with a header; columns are picked by name
    header = f.readline().strip().split(",")
X = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2, dtype=np.float32,
               usecols=[header.index(name) for name in features])  # raw values: scaling is in the graph

names = [o.name for o in session.get_outputs()]
out = dict(zip(names, session.run(None, {"features": X})))
for row in (out["probabilities"] if classes else out["prediction"]):
    print(f"{classes[row.argmax()]} {row.max():.3f}" if classes else f"{row:.4f}")
