"""``fittorch export RUN_DIR --format onnx|pt2``: one file to serve, preprocessing included."""

from __future__ import annotations

from ._args import add_trust_code

EXAMPLE = """\
example:
  fittorch export runs/digits                          # -> runs/digits/model.onnx, parity-checked
  fittorch export runs/digits --format pt2 -o /srv/models/digits.pt2
  fittorch export runs/digits --checkpoint best --rows new_rows.csv
  fittorch predict runs/digits/model.onnx new_rows.csv # onnxruntime, no torch
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("export", help="export a trained run to ONNX or torch.export (.pt2)",
                       description="Write the run's model with its standardization folded in, as an ONNX file "
                                   "(onnxruntime, no torch needed) or a torch.export program (.pt2). The file "
                                   "is run on held-out rows and compared with fittorch's predict before it is "
                                   "kept; the maximum difference is printed. See docs/export.md.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", default="onnx", metavar="onnx|pt2", help="onnx (default) or pt2")
    p.add_argument("--output", "-o", metavar="PATH", help="file or folder to write (default: RUN_DIR/model.FORMAT)")
    p.add_argument("--checkpoint", metavar="best|last",
                   help="export the best or last checkpoint's weights instead of the final model")
    p.add_argument("--rows", metavar="FILE", help="check parity on these rows (.csv/.parquet/.npz or sklearn:NAME) "
                                                  "instead of the run's held-out split")
    p.add_argument("--max-rows", type=int, default=1000, help="rows for the parity check (default 1000)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed |exported - predict|, times max(1, |predict|) (default 1e-4)")
    add_trust_code(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import ConfigError
    from ..export import export_run

    if args.max_rows < 1 or not args.tolerance > 0:
        raise ConfigError(f"--max-rows must be >= 1 and --tolerance > 0; got {args.max_rows} and {args.tolerance}.")
    result = export_run(args.run_dir, format=args.format, output=args.output, checkpoint=args.checkpoint,
                        rows=args.rows, tolerance=args.tolerance, max_rows=args.max_rows,
                        trust_code=args.trust_code)
    print(result.summary())
    return 0
