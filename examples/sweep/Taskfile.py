"""Parameter sweep: 3 topologies x 4 buffer sizes, simulated, parsed and graphed.

The workflow from the "taskrun" blog post that motivated pytaskmake:

    netsim   (slow, noisy)  -> sims/{topo}/{buf}/sim.dat  (its chatter in sim.log)
    parsesim                -> sims/{topo}/{buf}/latency.csv
    graphsim (per topology) -> sims/{topo}/graph.svg + summary.csv  (fan-in of 4 CSVs)
    report   (Python)       -> sims/report.md                       (fan-in of 3 summaries)

What it shows: tasks declared in plain for-loops; the order found from the files one
task writes and the next reads; the config file and the programs themselves listed
as inputs, so editing netsim.cfg reruns every simulation while editing bin/parsesim
reruns only the parsing and what follows; a log file per simulation; and all three
kinds of action: a shell string, an argv list (no shell) and a Python function.
"""

import csv

from pytaskmake import task

TOPOLOGIES = ["fat_tree", "mesh", "torus"]
BUFFER_SIZES = [1024, 2048, 4096, 8192]
ENDPOINTS = 64

summaries = []
for topo in TOPOLOGIES:
    csvs = []
    for buf in BUFFER_SIZES:
        run = f"sims/{topo}/{buf}"
        task(
            f"sim-{topo}-{buf}",
            f"python3 bin/netsim -c netsim.cfg -s {ENDPOINTS} -t {topo} -b {buf} -o {run}/sim.dat",
            inputs=["netsim.cfg", "bin/netsim"],
            outputs=[f"{run}/sim.dat"],
            log=f"{run}/sim.log",
        )
        task(
            f"parse-{topo}-{buf}",
            ["python3", "bin/parsesim", "-i", f"{run}/sim.dat", "-o", f"{run}/latency.csv"],
            inputs=[f"{run}/sim.dat", "bin/parsesim"],
            outputs=[f"{run}/latency.csv"],
        )
        csvs.append(f"{run}/latency.csv")
    task(
        f"graph-{topo}",
        ["python3", "bin/graphsim", "-o", f"sims/{topo}/graph.svg", *csvs],
        inputs=[*csvs, "bin/graphsim"],
        outputs=[f"sims/{topo}/graph.svg", f"sims/{topo}/summary.csv"],
    )
    summaries.append(f"sims/{topo}/summary.csv")


def report(inputs, outputs):
    """One markdown table of mean / p99 latency (µs) for every run of the sweep."""
    lines = [
        "| topology | " + " | ".join(f"{b} B" for b in BUFFER_SIZES) + " |",
        "|---" * (len(BUFFER_SIZES) + 1) + "|",
    ]
    for topo, path in zip(TOPOLOGIES, inputs, strict=True):
        with open(path, newline="") as f:
            cells = [f"{r['mean_us']} / {r['p99_us']}" for r in csv.DictReader(f)]
        lines.append(f"| {topo} | " + " | ".join(cells) + " |")
    with open(outputs[0], "w") as f:
        f.write("Packet latency, mean / p99 (µs)\n\n" + "\n".join(lines) + "\n")


task("report", report, inputs=summaries, outputs=["sims/report.md"])
