"""addnn's genetic algorithm with its operators and parameters as named defaults, on our rules.

A chromosome is one host index per segment. Each generation keeps the best ``elite`` share as is,
fills the rest by tournaments of ``tournament``, pairs them for uniform crossover (each gene swapped
with ``crossover_gene``) with probability ``crossover``, and mutates an individual with probability
``mutation`` by redrawing each gene uniformly with ``mutation_gene``. It stops after ``generations``
or once the best has not improved for ``patience`` generations (addnn stops when it has been
unchanged more than 10 times: 11).

Repair replaces addnn's tier and adjacency repairs: walking the chain, a gene whose host does not
climb a tier from the previous gene's host takes the previous host. That makes every chromosome
keep the ordering rules (a host's genes contiguous, tiers climbing at each hop), so only memory and
missing links can still make one infeasible, which then prices as infinite instead of addnn's
additive penalty. Populations are priced as arrays; the run is deterministic for a given ``seed``.
"""

import time

import numpy as np

from harness.partition.placement.problem import Problem, require_objective
from harness.partition.placement.result import Placement

POPULATION = 1000
GENERATIONS = 250
CROSSOVER = 0.8
CROSSOVER_GENE = 0.5
MUTATION = 0.02
MUTATION_GENE = 0.5
TOURNAMENT = 3
ELITE = 0.2
PATIENCE = 11


def repair(problem: Problem, population: np.ndarray) -> np.ndarray:
    for segment in range(1, problem.segments):
        previous = population[:, segment - 1]
        stays = problem.tiers[population[:, segment]] <= problem.tiers[previous]
        population[stays, segment] = previous[stays]
    return population


def solve(
    problem: Problem,
    objective: str = "latency",
    seed: int = 0,
    population: int = POPULATION,
    generations: int = GENERATIONS,
    crossover: float = CROSSOVER,
    crossover_gene: float = CROSSOVER_GENE,
    mutation: float = MUTATION,
    mutation_gene: float = MUTATION_GENE,
    tournament: int = TOURNAMENT,
    elite: float = ELITE,
    patience: int = PATIENCE,
) -> Placement:
    require_objective(objective)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    shape = (population, problem.segments)
    members = repair(problem, rng.integers(0, problem.hosts, shape))
    fitness = problem.price(members, objective)
    kept = max(1, round(elite * population))
    best, unchanged, generation = float(fitness.min()), 0, 0
    while generation < generations and unchanged < patience:
        generation += 1
        order = np.argsort(fitness, kind="stable")
        elites, elite_fitness = members[order[:kept]], fitness[order[:kept]]
        drawn = rng.integers(0, population, (population - kept, tournament))
        winners = drawn[np.arange(drawn.shape[0]), np.argmin(fitness[drawn], axis=1)]
        children = members[winners].copy()
        pairs = children.shape[0] // 2
        first, second = children[0 : 2 * pairs : 2], children[1 : 2 * pairs : 2]
        swap = (rng.random(pairs) < crossover)[:, None] & (rng.random((pairs, problem.segments)) < crossover_gene)
        first[swap], second[swap] = second[swap], first[swap].copy()
        redraw = (rng.random(children.shape[0]) < mutation)[:, None] & (rng.random(children.shape) < mutation_gene)
        children[redraw] = rng.integers(0, problem.hosts, int(redraw.sum()))
        children = repair(problem, children)
        members = np.concatenate((children, elites))
        fitness = np.concatenate((problem.price(children, objective), elite_fitness))
        improved = float(fitness.min())
        unchanged = 0 if improved < best else unchanged + 1
        best = min(best, improved)
    elapsed = time.perf_counter() - started
    details = (("generations", float(generation)), ("stopped_early", float(unchanged >= patience)))
    winner = int(np.argmin(fitness))
    if not np.isfinite(fitness[winner]):
        return Placement("genetic", objective, None, float("inf"), "not-found", elapsed, None, details)
    hosts = tuple(int(host) for host in members[winner])
    return Placement("genetic", objective, hosts, float(fitness[winner]), "heuristic", elapsed, None, details)
