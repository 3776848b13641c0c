"""Print the markdown tables of one or more ``bench.py --json`` result files.

    python benchmarks/render.py results/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fresh  # noqa: E402
from bench import table  # noqa: E402


def main(paths: list[str]) -> None:
    for path in paths:
        res = json.loads(Path(path).read_text())
        print(f"<!-- {res['command']}; load average {res['load_start'][0]:.1f} -> {res['load_end'][0]:.1f} -->\n")
        for w in res["workloads"]:
            print(table(w) + "\n")
        for w in res.get("fresh", []):
            print(fresh.fresh_table(w, w.get("title", "")) + "\n")
        if "cli" in res:
            print(fresh.cli_table(res["cli"]) + "\n")
        if "process" in res:
            imp, proc = res["process"]["imports"], res["process"]["processes"]
            print(f"import torch {imp['import_torch_s']:.3f} s; import fittorch after it "
                  f"{imp['import_fittorch_extra_s']:.3f} s\n")
            print("| process | wall s (median) | CPU s (median) | peak RSS MiB (median) |\n|---|---:|---:|---:|")
            for name, s in proc.items():
                print(f"| {name} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {s['peak_rss_mib']:.0f} |")
            print()


if __name__ == "__main__":
    main(sys.argv[1:])
