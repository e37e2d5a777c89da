"""The message a failed sweep ends with: what stopped it, what was kept and what to do next.

A host that stops answering SSH mid-sweep is named as such, ahead of the failures it causes on the
others (the edge's plan fails too once its worker goes quiet): the play tears down every host it
still reaches, so the user's next step is to bring that one host back, then resume, which first
tears down what the host still runs.
"""

from pathlib import Path

from harness.ansible.runner import PlaybookResult


def resume_hint(folder: Path) -> str:
    return f"continue with `harness sweep ... --resume {folder}`"


def failed_sweep_message(
    result: PlaybookResult, plan_failures: list[str], count: int, folder: Path, inventory: Path, manifest: Path
) -> str:
    """The one line a sweep whose playbook failed ends with; ``plan_failures`` are the edge hosts'
    own reports of why their plan failed, more precise than the task that ran it."""
    kept = f"{count} records kept in {folder}"
    lost = [failure for failure in result.failures if failure.unreachable]
    if not lost:
        first = plan_failures or [str(failure) for failure in result.failures] or [result.status]
        return f"sweep failed ({first[0]}); {kept}; {resume_hint(folder)}"
    names = list(dict.fromkeys(failure.host for failure in lost))
    hosts, plural = ", ".join(names), "s" if len(names) > 1 else ""
    return (
        f"host{plural} {hosts} became unreachable ({lost[0].message}): the other hosts were torn down; {kept}; "
        f"once {hosts} can be reached again, {resume_hint(folder)} (it first tears down what was left running "
        f"there), or only tear down with `harness teardown -i {inventory} --manifest {manifest}`"
    )
