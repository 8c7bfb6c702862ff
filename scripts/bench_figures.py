"""What the HTTP benchmarks read from a run of `measured` (scripts/bench-lib.sh): wrk's rate,
p50, p99 and errors, and the server's CPU time per request; and from a run of the loadgen
example (crates/server/examples/loadgen.rs): its one line of figures."""
import re
from typing import NamedTuple


class Run(NamedTuple):
    rate: float
    p99_ms: float
    errors: int
    cpu_us: float
    p50_ms: float


def figures(path: str) -> Run:
    text = open(path).read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
    median, median_unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", text).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    ticks, per_second = map(int, re.search(r"server cpu ticks: (\d+) per (\d+)", text).groups())
    return Run(
        rate=rate,
        p99_ms=float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit],
        errors=int(errors.group(1)) if errors else 0,
        cpu_us=ticks / per_second * 1e6 / max(requests, 1),
        p50_ms=float(median) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[median_unit],
    )


def loadgen(path: str) -> dict | None:
    """The loadgen's line (`sent N ok N failed N rate R/s p50 ...`) as numbers by name, or None
    when the file holds none (the generator failed: its message is the file)."""
    text = open(path).read()
    found = dict(re.findall(r"(\S+) ([\d.]+)", text.replace("/s", "")))
    return {name: float(value) for name, value in found.items()} if "p99" in found else None
