"""The line a failed sweep ends with, from the playbook's failures and the edge's own reports."""

from pathlib import Path

from harness.ansible.runner import PlaybookResult, TaskFailure
from harness.sweep.failure import failed_sweep_message

FOLDER = Path("/results/alexnet-20261124-101500")
INVENTORY = Path("inventory/vlab")
MANIFEST = Path("manifests/alexnet.yml")
EDGE_QUIT = TaskFailure("rpi1", "Run heads here and tails on the worker", "worker at tcp://10.231.0.3:5555 went quiet")
NO_ROUTE = "ssh: connect to host 10.231.0.3 port 22: No route to host"


def _message(*failures: TaskFailure, plan_failures: tuple[str, ...] = (), status: str = "failed") -> str:
    result = PlaybookResult("site", status, 2, {}, list(failures))
    return failed_sweep_message(result, list(plan_failures), 12, FOLDER, INVENTORY, MANIFEST)


def test_an_unreachable_host_is_named_before_the_failures_it_caused():
    lost = TaskFailure("gpu1", "Fetch what the host recorded", NO_ROUTE, unreachable=True)
    assert _message(EDGE_QUIT, lost, plan_failures=("host rpi1: worker went quiet",)) == (
        f"host gpu1 became unreachable ({NO_ROUTE}): the other hosts were torn down; "
        f"12 records kept in {FOLDER}; once gpu1 can be reached again, continue with "
        f"`harness sweep ... --resume {FOLDER}` (it first tears down what was left running there), "
        "or only tear down with `harness teardown -i inventory/vlab --manifest manifests/alexnet.yml`"
    )


def test_every_unreachable_host_is_named_once():
    message = _message(
        TaskFailure("gpu1", "Fetch what the host recorded", NO_ROUTE, unreachable=True),
        TaskFailure("rpi2", "Fetch what the host recorded", "Connection timed out", unreachable=True),
        TaskFailure("gpu1", "Stop the worker", NO_ROUTE, unreachable=True),
    )
    assert message.startswith(f"hosts gpu1, rpi2 became unreachable ({NO_ROUTE}): the other hosts were torn down;")
    assert "once gpu1, rpi2 can be reached again, continue with" in message


def test_otherwise_the_edge_report_then_the_first_failed_task():
    again = f"12 records kept in {FOLDER}; continue with `harness sweep ... --resume {FOLDER}`"
    reported = "host rpi1: model 'alexnet' has no cut 99 at module granularity"
    assert _message(EDGE_QUIT, plan_failures=(reported,)) == f"sweep failed ({reported}); {again}"
    assert _message(EDGE_QUIT) == f"sweep failed (host rpi1, task '{EDGE_QUIT.task}': {EDGE_QUIT.message}); {again}"
    assert _message(status="canceled") == f"sweep failed (canceled); {again}"
