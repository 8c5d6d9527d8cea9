"""The Lecture 17 experiments (`softrl experiment NAME`): each runs end to end in quick mode, writes
report.md, results.json and its figures, and its exact identities hold (Sec. 3, Eq. 20, 26, 28, 29-34).

The deep halves that need long trainings (SAC at full budget, soft-dqn/dqn on CartPole) are
exercised through their reporting code with a stand-in for `softrl.train`, never trained for real here.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import softrl
from softrl.agents import Agent, EnvSpec
from softrl.cli import main as cli_main
from softrl.experiments import EXPERIMENTS, ExperimentCommand, figure1, run_experiment
from softrl.experiments import alpha_vs_reward_scale as avrs
from softrl.experiments import q_learning_limit as qll
from softrl.experiments.report import Figure, Report, float64
from softrl.log import RunLogger

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_quick(name: str, out: Path, seeds: int = 2) -> dict:
    rc = run_experiment(ExperimentCommand(name=name, quick=True, seeds=seeds, out=str(out)))
    assert rc == 0, f"{name}: an identity check failed, see {out / 'report.md'}"
    return check_outputs(out)


def check_outputs(out: Path) -> dict:
    """report.md embeds every figure, the PNGs are real images, results.json is strict JSON with numbers."""
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert results["figures"], "every experiment draws at least one figure"
    for fig in results["figures"]:
        data = (out / fig).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, fig
        assert f"]({fig})" in report, f"{fig} not embedded with a relative link"
    for section in ("**Claim (Lecture 17).**", "**Budget.**", "## Reading", "## Checks", "|---|"):
        assert section in report
    assert results["checks"] and all(isinstance(c["value"], float) for c in results["checks"])
    assert results["all_checks_passed"], [c for c in results["checks"] if not c["passed"]]
    numbers = [x for x in _leaves(results["results"]) if isinstance(x, (int, float)) and not isinstance(x, bool)]
    assert len(numbers) > 10 and all(math.isfinite(x) for x in numbers)
    return results


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


def check_value(results: dict, name: str) -> float:
    return next(c["value"] for c in results["checks"] if c["name"] == name)


# ----- CLI ----------------------------------------------------------------------------------------


def test_help_lists_every_experiment(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    with pytest.raises(SystemExit) as exc:
        cli_main(["experiment", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name, module in EXPERIMENTS.items():
        assert module.NAME == name
        assert f"{name}: {module.SUMMARY}" in text, f"{name} has no line of its own in --help (or a stale one)"
    for option in ("--quick", "--seeds", "--out"):
        assert option in text


def test_bad_seeds_is_a_clean_error(tmp_path, capsys):
    assert cli_main(["experiment", "figure1", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err


# ----- the five experiments, quick, end to end -------------------------------------------------------


def test_figure1(tmp_path):
    with float64():
        res = figure1.compute()
    assert all(c.passed for c in res["checks"]), [c for c in res["checks"] if not c.passed]
    a = res["part_a"]
    pis = np.array(a["policies"])
    np.testing.assert_allclose(pis.sum(1), 1.0, atol=1e-12)
    assert pis[0].max() == 1.0 and np.argmax(pis[0]) == np.argmax(a["q"])  # alpha = 0: argmax (Eq. 20 limit)
    assert a["tv_to_uniform_at_alpha_100"] < 0.01  # alpha = 100: ~uniform
    assert np.all(np.diff(a["entropies"]) > 0) and a["entropy_monotone_violation"] <= 1e-12
    assert a["eq14_identity_error"] < 1e-12 and a["eq14_best_random_minus_softmax"] < 0
    for d in res["part_b"]["per_alpha"].values():  # "Is the amount of exploration the same in all states? No."
        assert d["max_entropy"] - d["min_entropy"] > 0.1
        assert 0.0 <= d["min_entropy"] <= d["max_entropy"] <= math.log(4) + 1e-12
    # Through the CLI, as a user would run it (compute is cached by now: this costs the figures only).
    assert cli_main(["experiment", "figure1", "--quick", "--out", str(tmp_path / "f1")]) == 0
    out = check_outputs(tmp_path / "f1")
    assert out["results"]["part_a"]["entropies"] == a["entropies"]


def test_alpha_vs_reward_scale_quick(tmp_path):
    res = run_quick("alpha-vs-reward-scale", tmp_path / "avrs")["results"]
    tab = res["tabular"]
    assert tab["max_tv_matched"] < 1e-6  # pi(cR, c alpha) == pi(R, alpha)
    assert tab["max_q_rel_err"] < 1e-6 and tab["max_v_rel_err"] < 1e-6  # Q(cR, c alpha) == c Q(R, alpha)
    assert tab["min_tv_control"] > 1e-3  # pi(cR, alpha) != pi(R, alpha): the identity is not vacuous
    assert np.array(tab["random_mdps"]["tv_matched"]).shape == (2, len(avrs.ALPHAS), len(avrs.SCALES))
    deep = res["deep"]
    assert res["deep_ran"] and deep["num_seeds"] == 1 and deep["budget"]["total_steps"] <= 1000
    for run in deep["runs"].values():
        assert math.isfinite(run["final_eval"]["mean"]) and Path(run["run_dir"]).is_dir()


def test_q_learning_limit_quick(tmp_path):
    results = run_quick("q-learning-limit", tmp_path / "qll")
    tab = results["results"]["tabular"]
    assert results["results"]["deep_status"] == "not run in quick mode"
    for key in ("deterministic_gridworld", "slippery_gridworld"):
        q_err = np.array(tab[key]["q_err"])
        assert np.all(np.diff(q_err) >= -1e-12)  # shrinks with alpha
        assert q_err[0] < 1e-6  # converged at alpha = 1e-8 (Eq. 26)
    assert tab["q_err_at_smallest_alpha"] < 1e-6 and tab["v_err_at_smallest_alpha"] < 1e-6
    assert tab["max_sandwich_violation"] <= 1e-12  # max q <= soft value <= max q + alpha log|A|
    assert tab["max_q_bound_violation"] <= 1e-12 and tab["max_v_bound_violation"] <= 1e-12
    assert tab["off_argmax_mass_at_smallest_alpha"] < 1e-6
    assert tab["tv_at_smallest_alpha_without_exact_ties"] < 1e-6
    assert 0.9 < tab["q_err_slopes"]["deterministic gridworld"] < 1.1  # exact ties: linear in alpha


def test_satisficing(tmp_path):
    res = run_quick("satisficing", tmp_path / "sat")["results"]
    r_max = res["r_max"]
    assert r_max > 0
    alphas = []
    for eps in ("0.01", "0.05", "0.1", "0.2"):
        p = res["picks"][eps]
        assert p["threshold"] == pytest.approx((1 - float(eps)) * r_max, abs=1e-12)
        assert p["return"] >= p["threshold"] - 1e-9  # Eq. 28's constraint is met ...
        assert abs(p["return"] - p["threshold"]) <= 1e-6 * r_max  # ... and active (largest feasible alpha)
        assert p["discounted_entropy"] >= p["best_feasible_frontier_entropy"] - 1e-6
        assert p["discounted_entropy"] > p["mixture_entropy"]
        alphas.append(p["alpha"])
    assert all(0 < a < b for a, b in zip(alphas, alphas[1:]))
    assert res["frontier_return_increase"] <= 1e-9 and res["frontier_entropy_decrease"] <= 1e-9


def test_distribution_matching(tmp_path):
    res = run_quick("distribution-matching", tmp_path / "dm", seeds=3)["results"]
    for name, p in res["policies"].items():
        assert p["kl"] == pytest.approx(-p["j_dynamic_programming"] + p["log_z"], abs=1e-9), name  # Eq. 31-34
        assert p["kl"] >= -1e-12
    assert abs(res["kl_optimal"]) < 1e-9 and res["tv_optimal"] < 1e-9  # pi*(tau) == p*(tau)
    assert res["log_z"] == pytest.approx(res["log_z_soft_value"], abs=1e-9)
    assert res["min_kl_non_optimal"] > 1e-3
    assert len(res["perturbed"]["per_seed"]) == 3 and res["perturbed"]["kl"]["lo"] is not None
    top = res["top_k"]
    np.testing.assert_allclose(top["pi_star"], top["p_star"], atol=1e-12)
    assert np.all(np.diff(top["p_star"]) <= 1e-15)


# ----- full-mode deep halves, with a stand-in for softrl.train -------------------------------------


def fake_train(cfg):
    """Writes the logs `softrl.train` would write and returns a TrainResult with a linear 'agent'."""
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    rng = np.random.default_rng(zlib.crc32(f"{cfg.algo}{cfg.agent.alpha}{cfg.agent.reward_scale}".encode()))
    logger = RunLogger(Path(cfg.run_dir), seeds)
    every = cfg.eval_every or cfg.total_steps
    for s in seeds:
        for step in range(every, cfg.total_steps + 1, every):
            logger.write(s, "eval", {"step": step, "mean_return": float(rng.normal(-200, 20)), "std_return": 1.0})
        for step in range(200, cfg.total_steps + 1, 200):
            logger.write(s, "episodes", {"step": step, "return": float(rng.normal(-300, 50)), "length": 200})
        for step in range(cfg.log_every, cfg.total_steps + 1, cfg.log_every):
            logger.write(s, "train", {"step": step, "entropy": float(rng.normal()), "q_mean": float(rng.normal())})
    discrete = cfg.env.startswith("CartPole")
    obs_dim, out_dim = (4, 2) if discrete else (3, 1)

    def act(state, obs, key, deterministic=False):
        z = obs @ state["w"]
        return jnp.argmax(z, axis=-1) if discrete else jnp.tanh(z)

    spec = EnvSpec(obs_dim, None if discrete else 1, 2 if discrete else None)
    agent = Agent(cfg.algo, spec, lambda key: None, act, lambda *a: None)
    states = {"w": jnp.asarray(rng.normal(size=(len(seeds), obs_dim, out_dim)), jnp.float32)}
    return softrl.TrainResult(states, rng.normal(-200, 20, (len(seeds), cfg.eval_episodes)), Path(cfg.run_dir),
                              {"wall_s": 0.0}, agent, seeds, np.zeros(len(seeds)))


def broken_train(cfg):
    raise ImportError("soft-dqn is not available")


def three_parts(module, results: dict, out: Path, quick: bool, seeds: int) -> dict:
    """`module.figures` and `module.reading` of a `compute()` result, written out; returns check_outputs' dict."""
    report = Report(module.NAME, module.NAME, out, quick, seeds, claim="claim", budget="budget")
    module.reading(results, report, module.figures(results, report.out, quick), quick)
    report.record(results)
    report.write()
    return check_outputs(out)


def test_alpha_vs_reward_scale_full_mode_and_guard(tmp_path, monkeypatch):
    monkeypatch.setattr(softrl, "train", fake_train)
    res = avrs.compute(tmp_path / "avrs", quick=False, seeds=2)
    assert res["deep_ran"], res["deep"].get("traceback")
    deep = res["deep"]
    assert deep["budget"]["total_steps"] == 15_000 and deep["num_seeds"] == 2
    assert set(deep["runs"]) == {c.label for c in (*avrs.DEEP_MATCHED, avrs.DEEP_CONTROL)}
    ref, other = deep["runs"][avrs.DEEP_MATCHED[0].label], deep["runs"]["alpha 1, scale 5"]
    assert ref["action_distance_to_ref"] is None and ref["_actions"].shape == (2, 512, 1)
    # mean |a - a_ref| over the fixed states, each seed against the reference's same seed
    dist = np.abs(other["_actions"] - ref["_actions"]).mean(axis=(1, 2))
    assert other["action_distance_to_ref"]["mean"] == pytest.approx(dist.mean(), rel=1e-9)
    floor = deep["seed_noise_floor_action_distance"]  # the reference's two seeds against each other
    assert floor["n"] == 1 and floor["mean"] == pytest.approx(np.abs(ref["_actions"][0] - ref["_actions"][1]).mean())
    assert other["final_eval"]["lo"] is not None  # a CI with 2 seeds
    out = three_parts(avrs, res, tmp_path / "avrs", quick=False, seeds=2)
    assert out["figures"] == ["reward_scale_tabular.png", "reward_scale_sac_pendulum.png"]
    assert "_actions" not in out["results"]["deep"]["runs"]["alpha 1, scale 5"]

    monkeypatch.setattr(softrl, "train", broken_train)
    res = avrs.compute(tmp_path / "guard", quick=False, seeds=1)
    assert not res["deep_ran"] and res["deep"]["error"] == "ImportError: soft-dqn is not available"
    assert [c.name for c in res["checks"]] == ["policy_invariant_under_scaling", "q_scales_by_c", "v_scales_by_c",
                                               "control_changes_policy"]
    assert all(c.passed for c in res["checks"])  # the exact tabular part still stands
    avrs.reading(res, Report("x", "x", tmp_path / "guard", False, 1, claim="c"), [Figure("t.png", "t")], False)


def test_q_learning_limit_deep_half_and_guard(tmp_path, monkeypatch):
    monkeypatch.setattr(softrl, "train", fake_train)
    res = qll.compute(tmp_path / "ok", quick=False, seeds=2)
    assert res["deep_status"] == "ran", res.get("deep_traceback")
    runs = res["deep"]["runs"]
    assert list(runs) == ["soft-dqn, alpha 1", "soft-dqn, alpha 0.1", "soft-dqn, alpha 0.01", "dqn"]
    assert runs["dqn"]["agreement_with_dqn"] is None
    soft = runs["soft-dqn, alpha 0.01"]
    agree = np.mean(soft["_actions"] == runs["dqn"]["_actions"], axis=1)  # [seeds], same seed
    assert soft["agreement_with_dqn"]["mean"] == pytest.approx(agree.mean(), rel=1e-9)
    assert res["deep"]["dqn_seed_agreement"]["n"] == 1
    out = three_parts(qll, res, tmp_path / "ok", quick=False, seeds=2)
    assert out["figures"] == ["q_learning_limit_tabular.png", "q_learning_limit_cartpole.png"]

    monkeypatch.setattr(softrl, "train", broken_train)
    res = qll.compute(tmp_path / "guard", quick=False, seeds=1)
    assert res["deep_status"] == "not run: ImportError: soft-dqn is not available" and "deep" not in res
    assert "ImportError" in res["deep_traceback"]
    assert len(res["checks"]) == 7 and all(c.passed for c in res["checks"])  # the exact tabular part still stands
    qll.reading(res, Report("x", "x", tmp_path / "guard", False, 1, claim="c"), [Figure("t.png", "t")], False)


# ----- the three parts' plumbing ---------------------------------------------------------------------


def test_record_keeps_numbers_and_checks_and_drops_figure_only_data(tmp_path):
    from softrl.experiments.report import Report, check, not_run_note

    report = Report("x", "X", tmp_path, quick=True, seeds=1, claim="c")
    results = {"a": 1.0, "_paths": np.zeros(3), "runs": {"r": {"v": [1, 2], "_paths": [0]}, "_k": 2},
               "per_seed": [{"s": 0, "_rollouts": object()}], "checks": [check("ok", 0.5, 1.0, "d")]}
    report.record(results)
    assert report.results == {"a": 1.0, "runs": {"r": {"v": [1, 2]}}, "per_seed": [{"s": 0}]}
    assert [(c.name, c.passed) for c in report.checks] == [("ok", True)]
    assert not check("bad", 2.0, 1.0, "d").passed and check("forced", 2.0, 1.0, "d", passed=True).passed
    assert not_run_note("deep part", None, False, False, "") is None
    assert not_run_note("deep part", "E: x", True, True, "").endswith("did not run: E: x.")
    assert "smoke test (1 seed)" in not_run_note("deep part", None, False, True, "1 seed")
