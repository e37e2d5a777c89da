"""What a virtual lab is made of, checked before any namespace exists.

A spec names hosts by inventory group, as a real lab's inventory does, so a manifest written for
the lab (``hosts: {edge: rpi, cloud: gpu}``) runs unchanged on real machines. Like a real lab's
inventory (inventory/sample-lab), the lab's gathers device groups under ``edge`` and ``cloud``, so
manifests/alexnet.yml (``hosts: {edge: edge, cloud: cloud}``) runs on it unchanged. Addresses come
from a private subnet in host order and exist only inside the lab's namespaces.
"""

import ipaddress
import math
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from harness.errors import BadInput
from harness.wire.link import parse_rate

OBSERVER_GROUP = "observer"
BRIDGE_NAME = "bridge"
_HOST = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
MAX_HOSTS = 0x7FFF
"""tc numbers each host's two filters on a bridge port (its cut and its rate) in 16 bits."""
_EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "model_type": "expected a mapping",
    "dict_type": "expected a mapping",
}


def _shown(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _check_host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError(
            f"expected a host name of lowercase letters, digits and '-', starting with a letter, "
            f"at most 32 characters (got {_shown(value)})"
        )
    if value == BRIDGE_NAME:
        raise ValueError(f"'{BRIDGE_NAME}' names the lab's bridge namespace: choose another host name")
    return value


def _check_group(value: str) -> str:
    if not _GROUP.match(value):
        raise ValueError(f"expected an inventory group name: letters, digits and '_' (got {_shown(value)})")
    return value


def _check_prefix(value: str) -> str:
    if not _PREFIX.match(value):
        raise ValueError(
            f"expected a namespace prefix of lowercase letters, digits and '-', starting with a letter, "
            f"at most 16 characters (got {_shown(value)})"
        )
    return value


def _check_subnet(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as error:
        raise ValueError(f"expected an IPv4 subnet like 10.231.0.0/24 ({error})") from None
    if not network.is_private or network.is_loopback or network.is_link_local or network.prefixlen > 30:
        raise ValueError(
            f"expected a private IPv4 subnet (10/8, 172.16/12, 192.168/16) with room for hosts (got {_shown(value)})"
        )
    return value


class _At(ValueError):
    """A problem found from the whole spec that belongs to a field inside the one being checked;
    ``where`` extends the field's name (``.pairs[1].src``)."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where


def _check_rate(value: Any) -> Any:
    """Kept as written (``2MB/s``), so the lab's record shows the spec's own words."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a rate like 4MB/s, 32mbit or bytes per second (got {_shown(value)})")
    try:
        parse_rate(value)
    except BadInput as error:
        raise ValueError(str(error)) from None
    return value


Rate = Annotated[str | int | float, BeforeValidator(_check_rate)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


LAB_VARIABLES = frozenset(
    (
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_ssh_private_key_file",
        "ansible_ssh_common_args",
        "ansible_python_interpreter",
        "harness_python",
        "harness_root",
        "harness_worker_address",
        "harness_link_shaping",
        "lab_cpu_quota",
    )
)
"""The inventory variables the lab itself writes for each host: how it is reached and shaped."""


def _check_vars(value: dict[str, Any]) -> dict[str, Any]:
    taken = sorted(set(value) & LAB_VARIABLES)
    if taken:
        raise ValueError(f"{taken[0]} is written by the lab itself: expected other inventory variables")
    for name, item in value.items():
        if not _GROUP.match(name):
            raise ValueError(f"expected variable names of letters, digits and '_' (got {_shown(name)})")
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"variable {name}: expected a string, number or boolean (got {_shown(item)})")
    return value


class HostSpec(_Strict):
    """One namespace host; ``cpu_quota`` (a fraction of one core) slows it down like an edge device;
    ``vars`` go into the inventory beside the lab's own (a placement's ``harness_memory_bytes``)."""

    name: Annotated[str, AfterValidator(_check_host)]
    group: Annotated[str, AfterValidator(_check_group)]
    cpu_quota: Annotated[float, Field(ge=0.01, le=64)] | None = None
    vars: Annotated[dict[str, Any], AfterValidator(_check_vars)] = Field(default_factory=dict)


DEFAULT_HOSTS = (
    HostSpec(name="rpi1", group="rpi", cpu_quota=0.5),
    HostSpec(name="jetson1", group="jetson"),
    HostSpec(name="gpu1", group="gpu"),
    HostSpec(name="observer1", group=OBSERVER_GROUP),
)


DEFAULT_GROUPS = {"edge": ["rpi"], "cloud": ["gpu"]}
"""The seed's set-up: the slowed Raspberry Pi is the edge, the GPU server the cloud."""


def _list_as_tuple(value: Any) -> Any:
    """YAML gives lists; the spec keeps a tuple so that a validated spec cannot change."""
    return tuple(value) if isinstance(value, list) else value


class DefaultLink(_Strict):
    """The rate of every ordered pair the spec does not name."""

    rate: Rate


class PairLink(_Strict):
    """One ordered pair's rate: traffic from ``src`` to ``dst`` (the other direction is its own pair)."""

    src: str
    dst: str
    rate: Rate


class LinksSpec(_Strict):
    """Rates between the lab's hosts, per ordered pair; a pair with neither an entry nor a default is
    unshaped. The observer's links are never shaped: Ansible's SSH and the record streams go there."""

    default: DefaultLink | None = None
    pairs: Annotated[tuple[PairLink, ...], BeforeValidator(_list_as_tuple)] = ()


class LabSpec(_Strict):
    prefix: Annotated[str, AfterValidator(_check_prefix)] = "hlab-"
    subnet: Annotated[str, AfterValidator(_check_subnet)] = "10.231.0.0/24"
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    hosts: Annotated[tuple[HostSpec, ...], BeforeValidator(_list_as_tuple)] = DEFAULT_HOSTS

    @field_validator("hosts")
    @classmethod
    def _hosts_fit(cls, hosts: tuple[HostSpec, ...], info: ValidationInfo) -> tuple[HostSpec, ...]:
        if len(hosts) > MAX_HOSTS:
            raise ValueError(
                f"{len(hosts)} hosts: expected at most {MAX_HOSTS} "
                "(tc numbers each host's filters on a bridge port in 16 bits)"
            )
        names = [host.name for host in hosts]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"host names must be unique ({', '.join(twice)} given more than once)")
        clash = sorted(set(names) & {host.group for host in hosts})
        if clash:
            raise ValueError(f"host {clash[0]} has the name of a group: Ansible would confuse the two")
        observers = [host.name for host in hosts if host.group == OBSERVER_GROUP]
        if len(observers) != 1:
            raise ValueError(
                f"expected exactly one host in group '{OBSERVER_GROUP}', where the controller runs "
                f"(got {len(observers)}{': ' + ', '.join(observers) if observers else ''})"
            )
        subnet = info.data.get("subnet")
        room = ipaddress.IPv4Network(subnet).num_addresses - 2 if subnet else len(hosts)
        if len(hosts) > room:
            raise ValueError(f"{len(hosts)} hosts do not fit in subnet {subnet} ({room} addresses)")
        return hosts

    groups: dict[str, list[str]] | None = None
    """Groups that gather host groups (``{edge: [rpi, jetson]}``); by default ``DEFAULT_GROUPS``,
    where the spec has those host groups and no group of those names."""

    @field_validator("groups")
    @classmethod
    def _gathered_groups_exist(
        cls, gathering: dict[str, list[str]] | None, info: ValidationInfo
    ) -> dict[str, list[str]] | None:
        hosts = info.data.get("hosts")
        if gathering is None or hosts is None:
            return gathering
        groups = {host.group for host in hosts}
        for name, children in gathering.items():
            _check_group(name)
            if name in groups or name in {host.name for host in hosts}:
                raise ValueError(f"'{name}' already names a host or a host group: choose another name")
            unknown = [child for child in children if child not in groups]
            if unknown or not children:
                raise ValueError(
                    f"'{name}' gathers {', '.join(map(_shown, unknown)) or 'nothing'}: "
                    f"expected host groups of this spec ({', '.join(sorted(groups))})"
                )
        return gathering

    links: LinksSpec | None = None
    """Rates per ordered pair of hosts, applied on the bridge's ports (see ``harness.lab.links``)."""

    @field_validator("links")
    @classmethod
    def _pairs_name_lab_hosts(cls, links: LinksSpec | None, info: ValidationInfo) -> LinksSpec | None:
        hosts = info.data.get("hosts")
        if links is None or hosts is None:
            return links
        observer = next(host.name for host in hosts if host.group == OBSERVER_GROUP)
        shaped = [host.name for host in hosts if host.name != observer]
        seen: dict[tuple[str, str], int] = {}
        for index, pair in enumerate(links.pairs):
            for end in ("src", "dst"):
                name = getattr(pair, end)
                if name == observer:
                    raise _At(
                        f".pairs[{index}].{end}",
                        f"{observer} is the observer, whose links are never shaped (Ansible's SSH and the "
                        f"record streams go there): expected one of {', '.join(shaped)}",
                    )
                if name not in shaped:
                    raise _At(
                        f".pairs[{index}].{end}",
                        f"expected a host of this spec: {', '.join(shaped)} (got {_shown(name)})",
                    )
            if pair.src == pair.dst:
                raise _At(f".pairs[{index}]", f"src and dst are both {pair.src}: expected two different hosts")
            first = seen.setdefault((pair.src, pair.dst), index)
            if first != index:
                raise _At(f".pairs[{index}]", f"{pair.src} -> {pair.dst} is given twice (also pairs[{first}])")
        return links

    def link_rate(self, src: str, dst: str) -> float:
        """Bytes per second of payload from ``src`` to ``dst`` as the spec asks; infinite: unshaped."""
        links = self.links or LinksSpec()
        pair = next((pair for pair in links.pairs if (pair.src, pair.dst) == (src, dst)), links.default)
        return parse_rate(pair.rate) if pair is not None else math.inf

    @property
    def shaped_hosts(self) -> tuple[HostSpec, ...]:
        """The hosts whose links the lab may shape: every one but the observer."""
        return tuple(host for host in self.hosts if host.group != OBSERVER_GROUP)

    def namespace(self, host: str) -> str:
        return self.prefix + host

    @property
    def bridge_namespace(self) -> str:
        return self.prefix + BRIDGE_NAME

    def port(self, host: HostSpec) -> str:
        """The bridge's end of the host's veth link, where traffic to the host leaves the bridge."""
        return f"veth{self.hosts.index(host)}"

    @property
    def gathering_groups(self) -> dict[str, list[str]]:
        """The groups that gather others, as the inventory writes them."""
        if self.groups is not None:
            return self.groups
        groups = {host.group for host in self.hosts}
        return {
            name: children
            for name, children in DEFAULT_GROUPS.items()
            if name not in groups and set(children) <= groups
        }

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def address(self, host: HostSpec) -> str:
        """Addresses follow host order, so a spec always gives each host the same one."""
        return str(self.network.network_address + 1 + self.hosts.index(host))

    @property
    def observer(self) -> HostSpec:
        return next(host for host in self.hosts if host.group == OBSERVER_GROUP)


def load_spec(path: Path | None) -> LabSpec:
    """The spec in ``path`` (YAML), or the built-in default lab; raises ``BadInput`` with one line."""
    if path is None:
        return LabSpec()
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise BadInput(f"lab spec {path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise BadInput(f"lab spec {path}{where}: YAML error: {problem}") from None
    if not isinstance(data, dict):
        raise BadInput(f"lab spec {path}: expected a mapping with fields {', '.join(LabSpec.model_fields)}")
    try:
        return LabSpec.model_validate(data)
    except ValidationError as error:
        problems = error.errors()
        others = len(problems) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        raise BadInput(f"lab spec {path}: {_explain(problems[0])}{more}") from None


_MODELS: dict[str, type[BaseModel]] = {
    "hosts": HostSpec,
    "links": LinksSpec,
    "default": DefaultLink,
    "pairs": PairLink,
}
"""The model of each field that holds one, to list its fields when an unknown one is given."""


def _explain(error: ErrorDetails) -> str:
    """One problem as ``field hosts[1].name: what was expected (got what)``."""
    field = ""
    for part in error["loc"]:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "value_error":
        explanation = str(ctx["error"])
        field += getattr(ctx["error"], "where", "")
    elif kind == "missing":
        explanation = "required field is missing"
    elif kind == "extra_forbidden":
        within = [part for part in error["loc"][:-1] if isinstance(part, str)]
        model = _MODELS.get(within[-1] if within else "", LabSpec)
        explanation = f"unknown field (expected one of: {', '.join(model.model_fields)})"
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        explanation = f"expected a number {'>=' if kind == 'greater_than_equal' else '<='} {bound}"
        explanation += f" (got {_shown(error['input'])})"
    else:
        expected = _EXPECTED.get(kind, error["msg"][0].lower() + error["msg"][1:])
        explanation = f"{expected} (got {_shown(error['input'])})"
    return f"field {field or '(top level)'}: {explanation}"
