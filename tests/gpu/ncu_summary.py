#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Summarises an `ncu --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum` log of decode
# steps (run_on_device.sh's ncu phase): per kernel (name up to its template arguments) the launches, mean device
# time, share of the total and DRAM GB/s. ncu runs each kernel alone (serialised, caches flushed), so the times are
# each kernel's own duration without launch gaps or overlap: a profile of the work, not of the step's wall time.
import csv
import re
import sys
from collections import defaultdict


def short(name):
    name = re.sub(r"\(.*$", "", name)  # drop the parameter list
    base = re.sub(r"<.*$", "", name).split("::")[-1]
    targs = re.search(r"<(.*)>", name)
    if targs:  # keep the first template argument (the weight type) for the GEMVs
        first = re.split(r",", targs.group(1))[0].split("::")[-1]
        base += "<" + first.strip() + ">"
    return base


def main(path, steps):
    rows = defaultdict(lambda: defaultdict(float))
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        key = (r["ID"], short(r["Kernel Name"]))
        unit = r.get("Metric Unit", "")
        v = float(r["Metric Value"].replace(",", ""))
        m = r["Metric Name"]
        if m == "gpu__time_duration.sum":
            v *= {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(unit, 1.0)
        elif unit in ("Kbyte", "Mbyte", "Gbyte", "byte"):
            v *= {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}[unit]
        rows[key][m] = v
    agg = defaultdict(lambda: [0, 0.0, 0.0])
    for (_, name), mets in rows.items():
        a = agg[name]
        a[0] += 1
        a[1] += mets.get("gpu__time_duration.sum", 0.0)
        a[2] += mets.get("dram__bytes_read.sum", 0.0) + mets.get("dram__bytes_write.sum", 0.0)
    total = sum(a[1] for a in agg.values())
    print(f"ncu: {sum(a[0] for a in agg.values())} kernels, {total:.1f} us of kernel time"
          + (f" ({total / steps:.1f} us per decode step over {steps} steps)" if steps else ""))
    print(f"  {'kernel':44s} {'launches':>8s} {'us/launch':>10s} {'share':>7s} {'DRAM GB/s':>10s}")
    for name, (n, us, by) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name[:44]:44s} {n:8d} {us / n:10.2f} {100 * us / total:6.1f}% {by / (us * 1e3) if us else 0:10.1f}")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0)
