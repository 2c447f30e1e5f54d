"""A job's needs as Dask worker resources (executors/dask_resources.py), in memory."""

from __future__ import annotations

from pytaskmake.action import make_action
from pytaskmake.executors.base import Job
from pytaskmake.executors.dask_resources import first_unsatisfiable, resources_of


def job(name: str, **kw: object) -> Job:
    return Job(name, make_action("true", name), (), (), **kw)  # type: ignore[arg-type]


def test_only_what_a_job_asks_for_is_requested_unless_every_worker_counts_cpus() -> None:
    assert resources_of(job("plain"), cpus_everywhere=False) == {}
    assert resources_of(job("plain"), cpus_everywhere=True) == {"cpus": 1}
    big = job("big", cpus=8, mem=2 << 30, resources=(("gpu", 1.0),))
    assert resources_of(big, cpus_everywhere=False) == {"gpu": 1.0, "cpus": 8, "mem": 2 << 30}


def test_the_first_job_no_worker_holds_enough_for_is_named() -> None:
    workers = {"tcp://a:1": {"cpus": 32, "mem": 64e9}, "tcp://b:1": {"gpu": 2, "cpus": 4}}
    fits = [job("one", cpus=32), job("two", resources=(("gpu", 2.0),)), job("three")]
    assert first_unsatisfiable(fits, workers, cpus_everywhere=True) is None
    both = job("both", cpus=8, resources=(("gpu", 1.0),))  # each exists, never on one worker
    found = first_unsatisfiable(iter([*fits, both, job("later", cpus=99)]), workers, True)
    assert found is not None and found[0] == "both"
    assert found[1].startswith("task 'both' needs cpus=8, gpu=1, which no Dask worker has")
    assert "cpus=32, mem=6.4e+10; cpus=4, gpu=2" in found[1]
    assert first_unsatisfiable([job("x", resources=(("gpu", 1.0),))], {}, False) is not None


def test_memory_is_a_resource_only_where_some_worker_counts_it() -> None:
    job = Job("sim", make_action("true", "sim"), (), (), mem=10**15)
    assert first_unsatisfiable([job], {"w": {"gpu": 1.0}}, False) is None
    refused = first_unsatisfiable([job], {"w": {"mem": 8e9}}, False)
    assert refused is not None and refused[0] == "sim" and "mem=1e+15" in refused[1]
