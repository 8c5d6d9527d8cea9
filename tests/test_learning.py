"""Learning with fixed seeds and honest thresholds: several seeds in one process, deterministic evaluation.

Random Pendulum-v1 policies score about -1200; SB3's SAC reaches -141 (mean of seeds 0-2) at
15k steps (../shared/ANCHORS.md).
"""

import numpy as np
import pytest

import softrl


def _train(tmp_path, algo, seeds, steps, **agent):
    cfg = softrl.TrainConfig(algo=algo, env="Pendulum-v1", seeds=seeds, total_steps=steps, learning_starts=1000,
                             eval_every=0, eval_episodes=10, checkpoint_every=0, progress=False,
                             run_dir=str(tmp_path / algo), agent=softrl.AgentConfig(**agent))
    result = softrl.train(cfg)
    assert result.updates.tolist() == [steps - 1000 + 1] * seeds  # every update ran
    return np.median(result.eval_returns.mean(axis=1)), result


def test_sac_pendulum_three_seeds_15k_steps(tmp_path):
    median, result = _train(tmp_path, "sac", seeds=3, steps=15_000)
    print("sac median final return", median, result.eval_returns.mean(axis=1))
    assert median >= -250
    assert np.all(np.isfinite(np.asarray(result.states.log_alpha)))


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_ddpg_and_td3_learn_pendulum(tmp_path, algo):
    median, result = _train(tmp_path, algo, seeds=2, steps=10_000)
    print(algo, "median final return", median, result.eval_returns.mean(axis=1))
    assert median >= -300
