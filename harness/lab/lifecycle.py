"""Making and removing a lab: every step recorded in the lab state before the next one starts.

``up`` checks everything it can before it makes anything (tools, root, names free, the cpu
controller), then builds; if a step fails it removes what it made and raises. ``down`` (and that
clean-up) removes exactly what the state lists, in reverse dependency order: processes, cgroups,
links, namespaces, then files and directories.
"""

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import BadInput, HarnessError
from harness.lab import cpu, inventory, links, network, sshd, system
from harness.lab.spec import HostSpec, LabSpec
from harness.lab.state import STATE_FILE, LabState
from harness.lab.system import LabError

CLIENT_KEY = "id_ed25519"
AUTHORIZED_KEYS = "authorized_keys"
HOSTS_DIR = "hosts"


def up(spec: LabSpec, state_dir: Path, inventory_dir: Path) -> None:
    system.require_root()
    system.require_tools()
    state_dir, inventory_dir = state_dir.absolute(), inventory_dir.absolute()
    _preflight(spec, state_dir, inventory_dir)
    made = _make_dirs(state_dir)
    state = LabState.begin(state_dir, spec.model_dump(mode="json"), made)
    try:
        _build(spec, state, inventory_dir)
    except BaseException as error:
        try:
            _remove(state)
        except HarnessError as cleanup:
            raise LabError(f"lab up failed ({error}), and so did removing what it made: {cleanup}") from error
        if isinstance(error, HarnessError):
            raise LabError(f"lab up failed, and everything it made was removed: {error}") from error
        raise
    state.mark_up()


def down(state_dir: Path) -> bool:
    """Remove the lab recorded in ``state_dir``; False when there was none."""
    system.require_root()
    state = LabState.load(state_dir.absolute())
    if state is None:
        return False
    inside = [name for name in state.items("namespaces") if network.same_namespace(name)]
    if inside:
        raise BadInput(f"harness lab down runs inside lab namespace {inside[0]}: run it from outside the lab")
    _remove(state)
    return True


def _preflight(spec: LabSpec, state_dir: Path, inventory_dir: Path) -> None:
    if (state_dir / STATE_FILE).exists():
        raise BadInput(
            f"a lab is already recorded in {state_dir / STATE_FILE}: "
            f"run `harness lab down --state-dir {state_dir}` first"
        )
    for name in (CLIENT_KEY, CLIENT_KEY + ".pub", AUTHORIZED_KEYS, inventory.CONTROL_DIR, HOSTS_DIR):
        if (state_dir / name).exists():
            raise BadInput(f"{state_dir / name} already exists: the lab state directory must not hold it")
    for name in [spec.bridge_namespace] + [spec.namespace(host.name) for host in spec.hosts]:
        if network.exists(name):
            raise BadInput(
                f"network namespace {name} already exists: another lab uses prefix '{spec.prefix}' "
                "(choose another prefix in the lab spec)"
            )
    if any(pair.shaped for pair in links.planned(spec).values()):
        system.tool("tc")
    quotas = [host for host in spec.hosts if host.cpu_quota is not None]
    if quotas:
        cpu.check_controller()
    for host in quotas:
        if cpu.group_path(spec.namespace(host.name)).exists():
            raise BadInput(f"cgroup {cpu.group_path(spec.namespace(host.name))} already exists: choose another prefix")
    inventory.check_free(inventory_dir)
    inventory.check_control_paths(spec, state_dir)


def _make_dirs(path: Path) -> list[str]:
    """Create ``path`` and its missing parents; the ones created, outermost first."""
    missing = [directory for directory in [path, *path.parents] if not directory.exists()]
    made = []
    for directory in reversed(missing):
        directory.mkdir(mode=0o700)
        made.append(str(directory))
    return made


def _build(spec: LabSpec, state: LabState, inventory_dir: Path) -> None:
    """Each thing is recorded before it is made where the pre-flight proved its name free, and
    right after it is made otherwise, so the record never lists something the lab did not make."""
    state_dir = state.state_dir
    key = state_dir / CLIENT_KEY
    authorized = state_dir / AUTHORIZED_KEYS
    for path in (key, key.with_name(CLIENT_KEY + ".pub"), authorized):
        state.add("files", str(path))
    sshd.make_key(key, "harness-lab")
    authorized.write_text(key.with_name(CLIENT_KEY + ".pub").read_text())
    for directory in (state_dir / inventory.CONTROL_DIR, state_dir / HOSTS_DIR):
        state.add("trees", str(directory))
        directory.mkdir(mode=0o700)
    bridge = spec.bridge_namespace
    network.add_namespace(bridge)
    state.add("namespaces", bridge)
    network.loopback_up(bridge)
    network.add_bridge(bridge)
    for host in spec.hosts:
        name, port = spec.namespace(host.name), spec.port(host)
        network.add_namespace(name)
        state.add("namespaces", name)
        network.loopback_up(name)
        network.add_link(name, bridge, port)
        state.add("links", {"namespace": name, "device": network.HOST_DEVICE, "bridge": bridge, "port": port})
        network.attach(name, bridge, port, spec.address(host), spec.network.prefixlen)
    links.apply_spec(spec, state)
    for host in spec.hosts:
        _start_host(spec, state, host)
    for directory in (inventory_dir, inventory_dir / inventory.GROUP_VARS_FILE.parent):
        for made in _make_dirs(directory):
            state.add("dirs", made)
    for path in inventory.files(inventory_dir):
        state.add("files", str(path))
    inventory.write(spec, state_dir, inventory_dir, spec.namespace(spec.observer.name))


def _start_host(spec: LabSpec, state: LabState, host: HostSpec) -> None:
    """The host's own directory, host key and sshd, inside its CPU group when it has a quota."""
    name = spec.namespace(host.name)
    host_dir = state.state_dir / HOSTS_DIR / host.name
    host_dir.mkdir(mode=0o700)
    (host_dir / "root").mkdir(mode=0o700)
    sshd.make_key(host_dir / sshd.HOST_KEY, f"harness-lab {host.name}")
    config = sshd.write_config(host_dir, spec.address(host), spec.ssh_port, state.state_dir / AUTHORIZED_KEYS)
    group = None
    if host.cpu_quota is not None:
        group = cpu.make_group(name)
        record = {
            "host": host.name,
            "path": str(group),
            "cpu_quota": host.cpu_quota,
            "quota_us": cpu.quota_us(host.cpu_quota),
            "period_us": cpu.period_us(host.cpu_quota),
        }
        state.add("cgroups", record)
        cpu.set_quota(group, host.cpu_quota)
    pid = sshd.start(name, host_dir)
    state.add("processes", {"host": host.name, "namespace": name, "pid": pid, "config": str(config)})
    if group is not None:
        cpu.add_process(group, pid)


def _remove(state: LabState) -> None:
    """Remove what ``state`` lists; each item leaves the record once gone. Raises ``LabError`` with
    what could not be removed, keeping it in the record so that ``down`` can be run again."""
    problems: list[str] = []

    def attempt(kind: str, item: Any, action: Callable[[], None]) -> None:
        try:
            action()
        except (HarnessError, OSError) as error:
            problems.append(str(error))
        else:
            state.discard(kind, item)

    for process in state.items("processes"):
        attempt("processes", process, lambda p=process: sshd.stop(p["pid"], Path(p["config"])))
    _stop_the_rest(state, problems)
    for group in state.items("cgroups"):
        attempt("cgroups", group, lambda g=group: cpu.remove_group(Path(g["path"])))
    for link in state.items("links"):
        attempt("links", link, lambda li=link: network.delete_link(li["namespace"], li["device"]))
    for name in reversed(state.items("namespaces")):
        attempt("namespaces", name, lambda n=name: network.delete_namespace(n))
    for path in state.items("files"):
        attempt("files", path, lambda p=path: Path(p).unlink(missing_ok=True))
    for path in state.items("trees"):
        attempt("trees", path, lambda p=path: shutil.rmtree(p) if Path(p).exists() else None)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LabError(
            f"{problems[0]}{more}; what is left is recorded in {state.path}: fix it and run `harness lab down`"
        )
    state.forget()
    for path in reversed(state.items("dirs")):
        _remove_if_empty(Path(path))


def _stop_the_rest(state: LabState, problems: list[str]) -> None:
    """Whatever still runs inside the lab (SSH sessions, Ansible's connection masters, workers) was
    started through the lab and keeps its namespaces and cgroups alive: end it, by pid."""
    found: list[int] = []
    try:
        for name in state.items("namespaces"):
            found += network.pids(name)
    except LabError as error:
        problems.append(str(error))
    for group in state.items("cgroups"):
        found += cpu.pids(Path(group["path"]))
    stuck = system.stop(sorted(set(found)))
    if stuck:
        problems.append(f"processes {', '.join(map(str, stuck))} inside the lab did not stop")


def _remove_if_empty(path: Path) -> None:
    """A directory the lab created goes with it unless something else was put in it since."""
    with contextlib.suppress(OSError):
        path.rmdir()
