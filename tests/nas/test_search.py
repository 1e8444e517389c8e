"""The evolution: budgets, reproducibility, no re-scoring, resume, Pareto front (timing-independent)."""
import json
import random

import pytest

from damo_pipeline.models import load_structure
from damo_pipeline.nas import (Budgets, Candidate, EvolutionSearch, ParetoFront, SearchConfig, choose_winner,
                               entropy_score, parse_structure, space_preset)


def _config(latency_model, budget_ms, iterations=1500, seed=0, **budgets):
    template = latency_model.cost_model.template
    return SearchConfig(template, space_preset(template.base, template.family), Budgets(budget_ms, **budgets),
                        iterations=iterations, population_size=64, seed=seed, checkpoint_every=500)


@pytest.fixture(scope="module")
def t_model(analytic_latency):
    model = analytic_latency("res", "t", 640)
    t = parse_structure(load_structure("tinynas_L20_k1kx"))
    model.calibrate({"seed": space_preset("t").seed(), "T": t})
    return model, model.predict_ms(t)


def test_budgets_are_never_exceeded(t_model):
    latency, t_ms = t_model
    search = EvolutionSearch(_config(latency, t_ms, gflops=18.0, params_m=9.0), latency, progress=False).run()
    assert search.stats.feasible > 100 and search.stats.rejected
    for cand in search.cache.values():
        if cand.feasible:
            assert cand.latency_ms <= t_ms and cand.gflops <= 18.0 and cand.params <= 9.0e6
            assert cand.layers <= 20
    for _, key in search.population:
        assert search.cache[key].feasible
    winner, finalists = choose_winner(search)
    assert winner.within_budget and winner.measured_ms <= t_ms
    assert winner.candidate.score == max(c.score for c in search.pareto.items())


def test_search_beats_the_shipped_structure_at_its_latency(t_model):
    latency, t_ms = t_model
    search = EvolutionSearch(_config(latency, t_ms, iterations=3000), latency, progress=False).run()
    assert search.best.score > entropy_score(parse_structure(load_structure("tinynas_L20_k1kx"))).score


def test_same_seed_same_result_and_no_structure_scored_twice(t_model):
    latency, t_ms = t_model
    first = EvolutionSearch(_config(latency, t_ms, seed=7), latency, progress=False).run()
    second = EvolutionSearch(_config(latency, t_ms, seed=7), latency, progress=False).run()
    assert first.population == second.population
    assert [c.key for c in first.pareto.items()] == [c.key for c in second.pareto.items()]
    assert first.stats.evaluated == len(first.cache)  # every structure evaluated exactly once
    assert first.stats.cache_hits > 0 and first.stats.evaluated + first.stats.cache_hits == 1500 + 1
    other = EvolutionSearch(_config(latency, t_ms, seed=8), latency, progress=False).run()
    assert other.population != first.population


class _StopAt(EvolutionSearch):
    """Ctrl-C after ``stop_at`` candidates (what a user does to a long search)."""

    stop_at = 0

    def step(self):
        if self.stats.iterations == self.stop_at:
            raise KeyboardInterrupt
        return super().step()


def test_interrupt_and_resume_give_the_uninterrupted_result(t_model, tmp_path):
    latency, t_ms = t_model
    straight = EvolutionSearch(_config(latency, t_ms), latency, progress=False).run()
    state = tmp_path / "state.json"
    _StopAt.stop_at = 777
    with pytest.raises(KeyboardInterrupt):
        _StopAt(_config(latency, t_ms), latency, state_path=state, progress=False).run()
    saved = json.loads(state.read_text())
    assert saved["stats"]["iterations"] == 777
    resumed = EvolutionSearch(_config(latency, t_ms), latency, state_path=state, progress=False)
    assert resumed.stats.iterations == 777
    resumed.run()
    assert resumed.population == straight.population
    assert [c.key for c in resumed.pareto.items()] == [c.key for c in straight.pareto.items()]
    assert resumed.rng.bit_generator.state == straight.rng.bit_generator.state
    assert resumed.stats.evaluated == straight.stats.evaluated
    # more iterations continue the same search; other settings refuse the state
    longer = EvolutionSearch(_config(latency, t_ms, iterations=1800), latency, state_path=state, progress=False)
    assert longer.stats.iterations == 1500
    with pytest.raises(ValueError, match="different \\['seed'\\]"):
        EvolutionSearch(_config(latency, t_ms, seed=1), latency, state_path=state, progress=False)


def test_seed_outside_the_budget_is_refused(t_model):
    latency, _ = t_model
    with pytest.raises(ValueError, match="seed structure already breaks the budgets \\['latency_ms'\\]"):
        EvolutionSearch(_config(latency, 1.0), latency, progress=False)


def test_pareto_front_matches_brute_force():
    rng = random.Random(0)
    points = [(rng.randint(0, 50), rng.randint(0, 50)) for _ in range(400)]
    front = ParetoFront()
    for i, (lat, score) in enumerate(points):
        front.add(Candidate(f"c{i}", float(score), float(lat), 0.0, 0, 0.0, 0, 1))
    expected = {(lat, score) for lat, score in points
                if not any(l2 <= lat and s2 >= score and (l2, s2) != (lat, score) for l2, s2 in points)}
    got = [(c.latency_ms, c.score) for c in front.items()]
    assert set(got) == {(float(a), float(b)) for a, b in expected}
    assert got == sorted(got) and [s for _, s in got] == sorted(s for _, s in got)


def test_budgets_validate():
    with pytest.raises(ValueError, match="latency_ms"):
        Budgets(latency_ms=-1)
    assert Budgets.from_dict(Budgets(10.0, 5.0, None).to_dict()) == Budgets(10.0, 5.0, None)
