"""Driver memory probes shared by bench/scale.py and bench/scale_interleaved.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def vm_hwm_mb() -> float:
    """Peak resident set (VmHWM) of this Python process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def jvm_heap_peak_mb(spark: Any) -> float:
    """High-water mark of the driver JVM's heap pools (used bytes before collection), in MiB."""
    mf = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    return sum(p.getPeakUsage().getUsed() for p in mf.getMemoryPoolMXBeans()
               if str(p.getType()) == "Heap memory") / 2**20
