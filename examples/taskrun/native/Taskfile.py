"""The taskrun post's sweep as a native Taskfile: ../sweep.py with its files declared.

Run it with the fake simulators on PATH:  PATH="$PWD/../bin:$PATH" pytaskmake -j 8
No mkdir tasks (output folders are made for each task) and no explicit dependencies:
sim.dat links a simulation to its parse, the latency.csv files link the parses to
their summary. Each task's outputs are checked by content, so a deleted or edited
result is rebuilt, and the run cache restores a result it has seen before.
"""

from pytaskmake import task

topologies = ["fat_tree", "mesh", "torus"]
buffer_sizes = ["1024", "2048", "4096", "8192"]

for topology in topologies:
    csvs = []
    for buffer_size in buffer_sizes:
        run = f"sims/{topology}/{buffer_size}"
        task(
            f"{topology}-{buffer_size} sim",
            f"netsim -s 1000 -t {topology} -b {buffer_size} -o {run}/sim.dat",
            outputs=[f"{run}/sim.dat"],
            log=f"{run}/sim.out",
        )
        task(
            f"{topology}-{buffer_size} parse",
            f"parsesim -i {run}/sim.dat -o {run}/latency.csv",
            inputs=[f"{run}/sim.dat"],
            outputs=[f"{run}/latency.csv"],
            log=f"{run}/latency.out",
        )
        csvs.append(f"{run}/latency.csv")
    task(
        f"{topology} summary",
        f"graphsim -o sims/{topology}/graph.png sims/{topology}",
        inputs=csvs,
        outputs=[f"sims/{topology}/graph.png"],
        log=f"sims/{topology}/graph.out",
    )
