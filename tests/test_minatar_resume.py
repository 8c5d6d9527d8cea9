"""MinAtar runs resume exactly (issue 11): the game object's state (its RandomState, positions, maps, entity lists,
sticky last action, timers, difficulty ramp) travels in checkpoints as JSON + arrays through the env's
`snapshot`/`restore` hook, for all five games, and a CLI run interrupted by SIGTERM resumes bitwise."""

import json
import os
import signal

import numpy as np
import pytest

from softrl import checkpoint, collect
from softrl.cli import main as cli_main
from softrl.collect import SeedEnvs
from softrl.envs.minatar import GAMES
from tests.test_loop import without_timing
from tests.test_resume import final_arrays

pytest.importorskip("minatar")  # in the [dev] extra; a MinAtar-less install has nothing to resume here

SEEDS = [0, 1]


def env_id(game):
    return f"softrl/MinAtar-{game}-v1"


def play(envs, actions):
    """Everything a run sees from `envs` over `actions` [T, N]: stored transitions, observations to act on next
    (reset ones after an episode end), and finished episodes."""
    out, ends = [], []
    for a in actions:
        tr, finished = envs.step(a)
        row = {k: np.array(tr[k]) for k in ("next_obs", "reward", "terminated", "truncated")}
        out.append({**row, "act_obs": np.array(envs.obs)})
        ends += finished
    return out, ends


def assert_same(a, b):
    (steps_a, ends_a), (steps_b, ends_b) = a, b
    assert ends_a == ends_b
    for t, (x, y) in enumerate(zip(steps_a, steps_b, strict=True)):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{k} at step {t}")


def fresh(game):
    """Another env, built and reset with other seeds, as `--resume` does before it restores."""
    envs = SeedEnvs(env_id(game), [11, 12])
    envs.keep_shape((10, 10))
    envs.reset()
    return envs


def through_checkpoint(state, root):
    """`state` saved in a checkpoint folder and loaded back: encode_state -> safetensors + meta.json ->
    decode_state, as the training loop does."""
    tensors = {}
    meta = {"envs": checkpoint.encode_state(state, "envs", tensors)}
    checkpoint.save(root, 1, meta, tensors)
    meta, arrays = checkpoint.load(checkpoint.step_dir(root, 1))
    return checkpoint.decode_state(meta["envs"], arrays)


@pytest.mark.parametrize("game", list(GAMES))
def test_restored_minatar_game_replays_bitwise(game, tmp_path):
    # Freeway ends itself after exactly 2500 steps: snapshot late enough that an episode end follows.
    warm, after = (2450, 200) if game == "Freeway" else (60, 600)
    envs = SeedEnvs(env_id(game), SEEDS)
    envs.keep_shape((10, 10))
    envs.reset()
    rng = np.random.default_rng(0)
    n = envs.spec.num_actions
    play(envs, rng.integers(0, n, (warm, len(SEEDS))))
    state = envs.get_state()
    saved = through_checkpoint(state, tmp_path)
    assert json.loads((checkpoint.step_dir(tmp_path, 1) / checkpoint.META).read_text())["envs"]  # plain JSON
    actions = rng.integers(0, n, (after, len(SEEDS)))
    original = play(envs, actions)
    assert len(original[1]) >= 2, "the replay should cross episode ends and resets"

    for snapshot in (state, saved):  # in memory, and through an actual checkpoint
        other = fresh(game)
        other.set_state(snapshot)
        assert_same(original, play(other, actions))

    # The test can fail: without the game's own state the fresh env plays another game.
    other = fresh(game)
    other.set_state({**state, "envs": [{k: v for k, v in s.items() if k != "snapshot"} for s in state["envs"]]})
    with pytest.raises(AssertionError):
        assert_same(original, play(other, actions))


def test_a_snapshot_of_one_game_is_refused_by_another():
    breakout, asterix = SeedEnvs(env_id("Breakout"), [0]), SeedEnvs(env_id("Asterix"), [0])
    breakout.reset()
    asterix.reset()
    with pytest.raises(ValueError, match="'breakout' snapshot cannot be restored into a 'asterix'"):
        asterix.set_state(breakout.get_state())


TOTAL = 300
ARGS = [
    "dqn",
    "--env",
    env_id("Breakout"),
    *f"--total-steps {TOTAL} --learning-starts 100 --eval-every 0 --eval-episodes 1 --hidden 16 --batch-size 16 "
    "--buffer-size 500 --log-every 50 --checkpoint-every 100 --no-progress".split(),
]


def test_minatar_run_interrupted_by_sigterm_resumes_bitwise(tmp_path, monkeypatch):
    """The CLI run is stopped by SIGTERM just before its 250th env step (in this process: the loop's handler turns
    it into a checkpoint at step 250), resumed, and compared with an uninterrupted run: every array of the final
    checkpoint (agent, replay buffer with its frames, keys) and the episode and training logs."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert cli_main(["train", *ARGS, "--run-dir", str(ref)]) == 0
    step, count = collect.SeedEnvs.step, [0]

    def signalled_step(self, action):
        count[0] += 1
        if count[0] == 250:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, action)

    with monkeypatch.context() as m:
        m.setattr(collect.SeedEnvs, "step", signalled_step)
        assert cli_main(["train", *ARGS, "--run-dir", str(run)]) == 130
    assert final_arrays(run)[0] == 250
    assert cli_main(["train", "--resume", str(run), "--no-progress"]) == 0
    (step_a, arr_a), (step_b, arr_b) = final_arrays(ref), final_arrays(run)
    assert step_a == step_b == TOTAL and sorted(arr_a) == sorted(arr_b)
    for name in arr_a:
        np.testing.assert_array_equal(arr_a[name], arr_b[name], err_msg=name)
    episodes = (ref / "seed_0" / "episodes.csv").read_text().splitlines()
    assert len(episodes) > 5  # random Breakout play: many short episodes, resets on both sides of step 250
    for name in ("episodes.csv", "train.csv"):
        assert without_timing(ref / "seed_0" / name) == without_timing(run / "seed_0" / name)
    final = [json.loads((d / "summary.json").read_text())["final_eval"] for d in (ref, run)]
    assert final[0] == final[1]
