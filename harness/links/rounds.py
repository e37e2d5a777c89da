"""Which probes run together: every ordered pair of hosts once, in rounds where no host takes part
in two probes, so no two probes share a host's NIC or CPU and no measurement disturbs another
(addnn lets every host probe all its neighbours at once, and the probes collide).

The rounds come from the circle method of round-robin tournaments: with the hosts on a circle (a
bye added when their number is odd), each rotation pairs them off disjointly, and every unordered
pair meets exactly once in n - 1 rotations. Each rotation is run twice, once in each direction, so a
bulk transfer measures one direction of a link at a time. That is 2(n - 1) rounds for n even, the
fewest possible, since each host takes part in 2(n - 1) ordered pairs.
"""


def probe_rounds(hosts: list[str]) -> list[list[tuple[str, str]]]:
    """Rounds of (sender, receiver) pairs covering every ordered pair of distinct ``hosts`` once."""
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"hosts {hosts}: expected each host once")
    circle: list[str | None] = list(hosts) + ([None] if len(hosts) % 2 else [])
    count = len(circle)
    rounds = []
    for rotation in range(count - 1):
        pairs = [(circle[index], circle[count - 1 - index]) for index in range(count // 2)]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        forward = [(a, b) if (rotation + index) % 2 else (b, a) for index, (a, b) in enumerate(pairs)]
        rounds.append(forward)
        rounds.append([(b, a) for a, b in forward])
        circle = [circle[0], circle[-1], *circle[1:-1]]
    return [round_ for round_ in rounds if round_]
