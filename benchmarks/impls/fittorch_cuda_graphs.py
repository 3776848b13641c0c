"""fittorch with ``cuda_graphs=True``: each full-size train step replayed from one CUDA graph.

Only meaningful with ``--device cuda`` (bench.py skips it elsewhere).
"""

from impls import fittorch_default


def run(w, **opts):
    return fittorch_default.run(w, **{**opts, "cuda_graphs": True})
