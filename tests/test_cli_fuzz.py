"""CLI fuzz (issue 11.7): bad argument lists for every subcommand give exit code 2 and a short usage error.

Hypothesis builds argv lists for `softrl train`, `eval`, `plot`, `experiment`, `presets`, `report` and `sweep`
from valid fillers plus at least one poison: a number out of range or not finite, a value of the wrong type, an
unknown flag, choice, preset or hyperparameter, an env that cannot be built (--env-kwargs that is no JSON
object or that the env rejects, a module that cannot be imported), an unreachable Ray address, or junk where a
run or sweep directory should be. Every poison is caught before any environment step, experiment or Ray
session starts (by tyro's parser, by `TrainConfig.validate`, by building the env once, or by reading a
directory that cannot be a run), so no example trains. `main(argv)` runs in-process; an exception escaping it
is the traceback a user would see and fails the test.

`FORMER_FAILURES` lists the cases that gave a traceback (or were accepted) before cli.py/config.py refused
them; their kinds are also part of the strategies now.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from pathlib import Path

import gymnasium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softrl.cli import main
from softrl.config import ALGOS
from softrl.experiments import EXPERIMENTS

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None)
JUNK = b"\x00\xff\xfe junk \x80\n"


# ----- running the CLI --------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`softrl ARGV` in-process: (exit code, stdout, stderr). Exceptions other than SystemExit propagate."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def assert_usage_error(argv: list[str]) -> None:
    """Exit code 2 with `softrl: error: ...` on one line, or tyro's usage-error box; never a traceback."""
    code, out, err = run_cli(argv)
    assert "Traceback" not in out + err, (argv, err)
    assert code == 2, (argv, code, out[-500:], err[-500:])
    lines = [line for line in err.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("softrl: error: ")]
    if ours:
        assert len(ours) == 1 and len(ours[0]) < 1000, (argv, err)
    else:
        assert "For full helptext" in err, (argv, err)  # tyro's usage error


@pytest.fixture(scope="module", autouse=True)
def in_tmp_dir(tmp_path_factory):
    """Run from an empty directory, so that nothing the CLI might write lands in the repository; and fail any
    example that reaches the training loop (every poison must be refused before an env step)."""
    import softrl.loop

    def no_training(*args, **kwargs):
        raise AssertionError("the CLI started training: a poison was not refused before the first env step")

    old = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(softrl.loop, "_step_loop", no_training)
        yield
    os.chdir(old)


# ----- junk where a run directory should be -----------------------------------------------------------------

CHECKPOINT_NAMES = ("checkpoint.pkl", "checkpoint.npz", "checkpoint.json", "checkpoint.safetensors")


def junk_run_dir(root: Path, kind: str, content: bytes = JUNK) -> Path:
    """A path that is not a run directory. `content` (not JSON) goes into the files a run dir would hold."""
    path = root / kind
    if kind == "missing":
        return path
    if kind == "file":
        path.write_bytes(content)
        return path
    path.mkdir()
    if kind == "junk-config":
        (path / "config.json").write_bytes(content)
    elif kind == "junk-checkpoint":
        for name in CHECKPOINT_NAMES:
            (path / name).write_bytes(content)
    elif kind == "checkpoint-dir":  # directories where checkpoint files would be
        for name in CHECKPOINT_NAMES:
            (path / name).mkdir()
    elif kind == "config-dir":
        (path / "config.json").mkdir()
    elif kind in CONFIGS:  # well-formed JSON, but no config that validate() accepts
        (path / "config.json").write_text(CONFIGS[kind])
    return path


CONFIGS = {"bad-config-value": json.dumps({"seeds": 0}), "config-list": "[1, 2]", "config-null": "null",
           "config-unknown-key": '{"bogus": 1}', "config-wrong-type": '{"seeds": "abc"}',
           "config-agent-not-object": '{"agent": 3}', "config-nan": '{"agent": {"lr": NaN}}',
           "config-without-env": "{}"}


def _not_json(b: bytes) -> bool:
    try:
        json.loads(b)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return True
    return False


junk_bytes = st.binary(max_size=48).filter(_not_json)


@st.composite
def run_dir_paths(draw, kinds: tuple[str, ...]) -> str:
    import tempfile

    root = Path(tempfile.mkdtemp(dir=Path.cwd()))
    return str(junk_run_dir(root, draw(st.sampled_from(kinds)), draw(junk_bytes)))


JUNK_KINDS = ("missing", "file", "empty", "junk-config", "junk-checkpoint", "checkpoint-dir", "config-dir",
              *CONFIGS)
EVAL_KINDS = RESUME_KINDS = PLOT_KINDS = REPORT_KINDS = JUNK_KINDS


# ----- values -----------------------------------------------------------------------------------------------


def _parses(kind, s: str) -> bool:
    try:
        kind(s)
    except ValueError:
        return False
    return True


def fmt(x: float) -> str:
    return repr(x) if math.isfinite(x) else str(x)


# Strings that are not flags (no leading '-', which could be --help) and do not parse as the wanted type.
words = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12).filter(
    lambda s: not s.startswith("-")
)
not_int = st.one_of(st.sampled_from(["abc", "1.5", "1e3", "", "0x10", "one", "2 3", "None"]), words).filter(
    lambda s: not _parses(int, s)
)
not_float = st.one_of(st.sampled_from(["abc", "1,5", "", "e", "0.1.2", "one", "None"]), words).filter(
    lambda s: not _parses(float, s)
)
# Unknown flags: a made-up name, or a near miss of a real one (not a prefix of any, so argparse cannot expand it).
unknown_flags = st.one_of(
    st.from_regex(r"\A--x[a-z][a-z-]{0,10}\Z"),
    st.sampled_from(["--seed-s", "--totalsteps", "--gama", "--learningrate", "--resum", "--episode", "--kinds"]),
)
floats = st.floats(allow_nan=True, allow_infinity=True)
below_one = st.integers(max_value=0)  # for options that must be >= 1
negative = st.integers(max_value=-1)  # for options that must be >= 0

TRAIN_INT_MIN1 = ("--seeds", "--total-steps", "--train-freq", "--gradient-steps", "--buffer-size", "--eval-episodes",
                  "--cpu-devices", "--batch-size", "--num-critics", "--policy-delay")
TRAIN_INT_MIN0 = ("--learning-starts", "--eval-every", "--log-every", "--checkpoint-every")
# Float options and the values `validate` refuses (NaN and inf everywhere: no option takes them).
positive = floats.filter(lambda x: not (math.isfinite(x) and x > 0))
non_negative = floats.filter(lambda x: not (math.isfinite(x) and x >= 0))
not_finite = st.sampled_from([math.nan, math.inf, -math.inf])
TRAIN_FLOAT_BAD = {
    "--gamma": floats.filter(lambda x: not 0.0 <= x < 1.0),
    "--tau": floats.filter(lambda x: not 0.0 < x <= 1.0),
    "--lr": positive,
    "--alpha-lr": positive,
    "--init-alpha": positive,
    "--actor-std": positive,
    "--explore-std": non_negative,
    "--target-noise": non_negative,
    "--epsilon-end": floats.filter(lambda x: not 0.0 <= x <= 1.0),
    "--reward-scale": not_finite,
    "--target-entropy": not_finite,
    "--checkpoint-minutes": floats.filter(lambda x: not (math.isfinite(x) and x >= 0)),
}
TRAIN_FLOATS = ("--gamma", "--tau", "--lr", "--alpha-lr", "--init-alpha", "--actor-std", "--reward-scale",
                "--target-entropy", "--explore-std", "--target-noise")
bad_alpha = st.one_of(st.floats(max_value=-1e-300), st.sampled_from(["nan", "inf", "-inf"]), words).filter(
    lambda s: s != "auto" and not (_parses(float, str(s)) and math.isfinite(float(s)) and float(s) >= 0)
)


def _flag(name: str, value: str | None = None) -> list[str]:
    """`[name, value]`, or `[name=value]` when the value starts with '-' (argparse would read it as a flag)."""
    if value is None:
        return [name]
    return [f"{name}={value}"] if value.startswith("-") else [name, value]


# Poisons whose flag takes one of a few bad values; "run-dir" holds a file, or lies below one.
def _junk_path(under: bool) -> str:
    import tempfile

    fd, name = tempfile.mkstemp(dir=Path.cwd())
    os.write(fd, JUNK)
    os.close(fd)
    return str(Path(name) / "sub") if under else name


OTHER_POISONS = {
    "hidden": ("--hidden", st.sampled_from([["--hidden"], ["--hidden", "0"], ["--hidden", "16", "0"],
                                            ["--hidden=-3"]])),
    "seed": ("--seed", st.integers(max_value=-1).map(str)),
    "env": ("--env", st.sampled_from(["", ":", "no_such_module_xyz:Foo-v0", "Pendulum-v9", "NoSuchEnv-v0",
                                      "gymnasium:NoSuchEnv-v0", "softrl.envs:"])),
    "env-kwargs": ("--env-kwargs", st.sampled_from(["[1]", "1", "null", '"x"', "{a: 1}", "{", '{"bogus_kw": 1}',
                                                    '{"g": NaN'])),
    "preset": ("--preset", st.from_regex(r"\Azz[a-z]{0,6}\Z")),
    "run-dir": ("--run-dir", st.booleans().map(_junk_path)),
}


@st.composite
def train_poison(draw) -> tuple[str, list[str]]:
    """(flag or '' for the positional, argv fragment) that makes `softrl train` refuse the call."""
    kind = draw(st.sampled_from(["int-range", "float-range", "alpha", "int-type", "float-type", "unknown-flag",
                                 "algo", "resume", "hidden", "seed", "env", "env-kwargs", "preset", "run-dir"]))
    if kind in OTHER_POISONS:
        flag, values = OTHER_POISONS[kind]
        value = draw(values)
        return flag, value if isinstance(value, list) else _flag(flag, value)
    if kind == "int-range":
        flag = draw(st.sampled_from(TRAIN_INT_MIN1 + TRAIN_INT_MIN0))
        value = draw(below_one if flag in TRAIN_INT_MIN1 else negative)
        return flag, _flag(flag, str(value))
    if kind == "float-range":
        flag = draw(st.sampled_from(sorted(TRAIN_FLOAT_BAD)))
        return flag, _flag(flag, fmt(draw(TRAIN_FLOAT_BAD[flag])))
    if kind == "alpha":
        value = draw(bad_alpha)
        return "--alpha", _flag("--alpha", value if isinstance(value, str) else fmt(value))
    if kind == "int-type":
        flag = draw(st.sampled_from(TRAIN_INT_MIN1 + TRAIN_INT_MIN0 + ("--seed", "--hidden")))
        return flag, [flag, draw(not_int)]
    if kind == "float-type":
        flag = draw(st.sampled_from(TRAIN_FLOATS))
        return flag, [flag, draw(not_float)]
    if kind == "unknown-flag":
        flag = draw(unknown_flags)
        return flag, _flag(flag, draw(st.none() | st.sampled_from(["1", "x"])))
    if kind == "algo":
        return "", [draw(words.filter(lambda s: s not in ALGOS))]
    return "--resume", ["--resume", draw(run_dir_paths(RESUME_KINDS))]


# Valid options (small budgets), used around the poisons; a flag already poisoned is never repeated (the last
# occurrence of a flag wins, so a repeat could undo the poison).
TRAIN_FILLERS = {
    "--seed": st.integers(0, 10_000).map(str),
    "--seeds": st.integers(1, 3).map(str),
    "--total-steps": st.integers(1, 50).map(str),
    "--learning-starts": st.integers(0, 10).map(str),
    "--eval-every": st.integers(0, 10).map(str),
    "--eval-episodes": st.integers(1, 2).map(str),
    "--buffer-size": st.integers(16, 64).map(str),
    "--env": st.sampled_from(["Pendulum-v1", "CartPole-v1"]),
    "--lr": st.sampled_from(["1e-3", "3e-4"]),
    "--gamma": st.sampled_from(["0.0", "0.9", "0.99"]),
    "--tau": st.sampled_from(["0.005", "1.0"]),
    "--alpha": st.sampled_from(["auto", "0.2", "0"]),
    "--batch-size": st.integers(1, 8).map(str),
    "--hidden": st.sampled_from(["4", "8"]),
    "--no-progress": st.none(),
}


@st.composite
def fillers(draw, table: dict, taken: set[str]) -> list[str]:
    names = draw(st.lists(st.sampled_from(sorted(set(table) - taken)), unique=True, max_size=5))
    return [part for name in names for part in _flag(name, draw(table[name]))]


@st.composite
def train_argv(draw) -> list[str]:
    poisons = draw(st.lists(train_poison(), min_size=1, max_size=2, unique_by=lambda p: p[0]))
    taken = {flag for flag, _ in poisons}
    algo = [] if "" in taken else draw(st.lists(st.sampled_from(ALGOS), max_size=1))
    parts = [fragment for _, fragment in poisons] + [draw(fillers(TRAIN_FILLERS, taken))]
    parts = draw(st.permutations(parts))
    return ["train", *algo, *[x for fragment in parts for x in fragment]]


@given(train_argv())
@FUZZ
def test_train_refuses_bad_arguments(argv):
    assert_usage_error(argv)


@st.composite
def eval_argv(draw) -> list[str]:
    run_dir = draw(run_dir_paths(EVAL_KINDS))
    options = draw(st.lists(st.sampled_from([
        _flag("--episodes", str(draw(st.integers(-5, 20)))),
        ["--episodes", draw(not_int)],
        ["--json"], ["--stochastic"], ["--no-deterministic"],
        _flag(draw(unknown_flags)),
    ]), max_size=3))
    positional = draw(st.sampled_from([[run_dir], [], [run_dir, draw(words)]]))  # none, or an extra one
    parts = draw(st.permutations([positional, *options]))
    return ["eval", *[x for fragment in parts for x in fragment]]


@given(eval_argv())
@FUZZ
def test_eval_refuses_bad_arguments(argv):
    assert_usage_error(argv)


@st.composite
def plot_argv(draw) -> list[str]:
    run_dirs = draw(st.lists(run_dir_paths(PLOT_KINDS), min_size=0, max_size=3))
    options = draw(st.lists(st.sampled_from([
        ["--kind", draw(st.sampled_from(["eval", "episodes"]) | words)],
        ["--out", str(Path.cwd() / "plots" / "curves.png")],
        _flag(draw(unknown_flags)),
        ["--kind"],  # a flag without its value
    ]), max_size=3))
    return ["plot", *run_dirs, *[x for fragment in options for x in fragment]]


@given(plot_argv())
@FUZZ
def test_plot_refuses_bad_arguments(argv):
    assert_usage_error(argv)


@st.composite
def experiment_argv(draw) -> list[str]:
    names = sorted(EXPERIMENTS)
    poison = draw(st.sampled_from(["name", "seeds-range", "seeds-type", "unknown-flag", "missing-name",
                                   "out-is-file"]))
    name = [draw(words.filter(lambda s: s not in names))] if poison == "name" else [draw(st.sampled_from(names))]
    seeds = {"seeds-range": _flag("--seeds", str(draw(below_one))), "seeds-type": ["--seeds", draw(not_int)]}
    options = [seeds[poison]] if poison in seeds else []
    options += draw(st.lists(st.sampled_from([["--quick"], ["--out", str(Path.cwd() / "exp")]]), max_size=2))
    if poison == "unknown-flag":
        options.append(_flag(draw(unknown_flags)))
    if poison == "out-is-file":
        options = [o for o in options if o[0] != "--out"] + [["--out", _junk_path(draw(st.booleans()))]]
    return ["experiment", *([] if poison == "missing-name" else name), *[x for o in options for x in o]]


@given(experiment_argv())
@FUZZ
def test_experiment_refuses_bad_arguments(argv):
    assert_usage_error(argv)


@pytest.mark.parametrize("argv", [[], ["bogus"], ["--xyz"], ["train", "sac", "dqn"], ["Train"], ["sweep"],
                                  ["report"], ["presets", "x"]])
def test_top_level_refuses_bad_arguments(argv):
    assert_usage_error(argv)


# ----- presets, report, sweep ---------------------------------------------------------------------------------


@st.composite
def presets_argv(draw) -> list[str]:
    poison = draw(st.sampled_from(["algo", "unknown-flag", "values"]))
    if poison == "algo":
        options = [_flag("--algo", draw(words.filter(lambda s: s not in ALGOS)))]
    elif poison == "values":
        options = [["--values", draw(st.sampled_from(["x", "1"]))]]  # a flag that takes no value
    else:
        options = [_flag(draw(unknown_flags))]
    options += draw(st.lists(st.sampled_from([["--env", "CartPole"], ["--values"]]), max_size=2))
    return ["presets", *[x for o in draw(st.permutations(options)) for x in o]]


@given(presets_argv())
@FUZZ
def test_presets_refuses_bad_arguments(argv):
    assert_usage_error(argv)


@st.composite
def report_argv(draw) -> list[str]:
    inputs = draw(st.lists(run_dir_paths(REPORT_KINDS), min_size=0, max_size=2))
    options = draw(st.lists(st.sampled_from([
        _flag("--reps", str(draw(st.integers(-5, 99)))), ["--reps", draw(not_int)], _flag(draw(unknown_flags)),
        ["--scores", draw(st.sampled_from(["x", "CartPole-v1=1", "CartPole-v1=a:b"]))],
    ]), max_size=2))
    out = ["--out", str(Path.cwd() / "report")]
    return ["report", *inputs, *[x for o in draw(st.permutations([out, *options])) for x in o]]


@given(report_argv())
@FUZZ
def test_report_refuses_bad_arguments(argv):
    assert_usage_error(argv)
    assert not (Path.cwd() / "report").exists()


def _another_sweep() -> str:
    """A directory holding another sweep's sweep.json (which must stay as it is)."""
    import tempfile

    path = Path(tempfile.mkdtemp(dir=Path.cwd()))
    (path / "sweep.json").write_text(json.dumps({"version": 1, "spec": {"algo": "td3"}, "trials": []}))
    return str(path)


@st.composite
def sweep_poison(draw) -> tuple[str, list[str]]:
    kind = draw(st.sampled_from(["name", "range", "type", "seeds", "steps", "address", "out", "resume", "flag"]))
    if kind == "name":
        name = draw(st.from_regex(r"\Azz[a-z_]{0,8}\Z"))
        return "--grid", ["--grid", f"{name}=1,2"]
    if kind == "range":
        name, values = draw(st.sampled_from([("gamma", "0.5,1.5"), ("tau", "0,0.1"), ("lr", "-1"),
                                             ("batch_size", "0"), ("hidden", "0"), ("alpha", "-2"),
                                             ("lr", "loguniform(-1,1)"), ("gamma", "uniform(0.5,2)")]))
        return "--grid", ["--grid", f"{name}={values}"]
    if kind == "type":
        name = draw(st.sampled_from(["gamma", "tau", "lr", "batch_size", "seeds"]))
        return "--grid", ["--grid", f"{name}={draw(st.sampled_from(['abc', '1.5.2', 'x,y']))}"]
    if kind == "seeds":
        return "--seeds", _flag("--seeds", str(draw(below_one)))
    if kind == "steps":
        return "--total-steps", _flag("--total-steps", str(draw(below_one)))
    if kind == "address":
        return "--address", ["--address", draw(st.sampled_from(["127.0.0.1:1", "nohost", "127.0.0.1:x", ":1"]))]
    if kind == "out":
        return "--out", ["--out", draw(st.sampled_from([_another_sweep(), _junk_path(False)]))]
    if kind == "resume":
        return "--resume", ["--resume", draw(run_dir_paths(JUNK_KINDS))]
    return "flag", _flag(draw(unknown_flags))


@st.composite
def sweep_argv(draw) -> list[str]:
    poisons = draw(st.lists(sweep_poison(), min_size=1, max_size=2, unique_by=lambda p: p[0]))
    taken = {flag for flag, _ in poisons}
    parts = [fragment for _, fragment in poisons]
    if "--out" not in taken and "--resume" not in taken:
        parts.append(["--out", str(Path.cwd() / "sweep")])
    if "--grid" not in taken:
        parts.append(["--grid", "alpha=0.1,0.2"])
    parts.append(["--total-steps", "50"] if "--total-steps" not in taken else [])
    return ["sweep", "sac", "--env", "Pendulum-v1", *[x for o in draw(st.permutations(parts)) for x in o]]


@given(sweep_argv())
@FUZZ
def test_sweep_refuses_bad_arguments(argv):
    before = {p: p.read_bytes() for p in Path.cwd().rglob("sweep.json")}
    assert_usage_error(argv)
    assert {p: p.read_bytes() for p in Path.cwd().rglob("sweep.json")} == before  # no sweep written or changed


# ----- former failures: tracebacks (or silent acceptance) before cli.py/config.py refused them ------------------


def _config_dir(root: Path, name: str, config: str | None) -> Path:
    """A directory whose config.json holds `config`, or is itself a directory when `config` is None."""
    path = root / name
    path.mkdir()
    if config is None:
        (path / "config.json").mkdir()
    else:
        (path / "config.json").write_text(config)
    return path


def _fake_run(root: Path) -> Path:
    """A directory that looks like a finished run to `softrl plot` (config.json and one eval.csv)."""
    path = root / "fake-run"
    (path / "seed_0").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"algo": "dqn", "env": "CartPole-v1"}))
    (path / "seed_0" / "eval.csv").write_text("step,mean_return,std_return\n2,10.0,0.0\n")
    return path


def _junk_file(root: Path) -> Path:
    (root / "junk-file").write_bytes(JUNK)
    return root / "junk-file"


# (id, argv from a tmp root, what happened before the fix, the exception main() let out: the traceback a user saw)
FORMER_FAILURES = [
    ("plot-no-run-dirs", lambda r: ["plot"], "IndexError: tuple index out of range", IndexError),
    ("plot-run-dir-is-file", lambda r: ["plot", str(_junk_file(r))], "NotADirectoryError", NotADirectoryError),
    ("plot-config-is-dir", lambda r: ["plot", str(_config_dir(r, "d", None))], "IsADirectoryError",
     IsADirectoryError),
    ("plot-config-not-object", lambda r: ["plot", str(_config_dir(r, "d", "[1, 2]"))],
     "TypeError: list indices must be integers", TypeError),
    ("plot-config-without-env", lambda r: ["plot", str(_config_dir(r, "d", "{}"))], "KeyError: 'env'", KeyError),
    ("plot-out-under-a-file", lambda r: ["plot", str(_fake_run(r)), "--out", str(_junk_file(r) / "x.png")],
     "FileExistsError", FileExistsError),
    ("plot-unknown-kind", lambda r: ["plot", str(_fake_run(r)), "--kind", "zzz"],
     "accepted: exit 0 and an empty figure (--kind is a free string)", AssertionError),
    ("resume-run-dir-is-file", lambda r: ["train", "--resume", str(_junk_file(r))], "NotADirectoryError",
     NotADirectoryError),
    ("resume-config-is-dir", lambda r: ["train", "--resume", str(_config_dir(r, "d", None))], "IsADirectoryError",
     IsADirectoryError),
    ("resume-config-list", lambda r: ["train", "--resume", str(_config_dir(r, "d", "[1, 2]"))],
     "AttributeError: 'list' object has no attribute 'get'", AttributeError),
    ("resume-config-null", lambda r: ["train", "--resume", str(_config_dir(r, "d", "null"))],
     "AttributeError: 'NoneType' object has no attribute 'get'", AttributeError),
    ("resume-config-unknown-key", lambda r: ["train", "--resume", str(_config_dir(r, "d", '{"bogus": 1}'))],
     "TypeError: TrainConfig.__init__() got an unexpected keyword argument 'bogus'", TypeError),
    ("resume-config-wrong-type", lambda r: ["train", "--resume", str(_config_dir(r, "d", '{"seeds": "abc"}'))],
     "TypeError: '<' not supported between instances of 'str' and 'int' (in validate)", TypeError),
    ("resume-config-agent-not-object", lambda r: ["train", "--resume", str(_config_dir(r, "d", '{"agent": 3}'))],
     "TypeError: 'int' object is not a mapping", TypeError),
    ("eval-checkpoint-is-dir", lambda r: ["eval", str(_checkpoint_dir(r))], "IsADirectoryError", IsADirectoryError),
    ("train-run-dir-is-file", lambda r: ["train", "dqn", "--env", "CartPole-v1", "--run-dir", str(_junk_file(r))],
     "FileExistsError, after the envs and the agent are built", FileExistsError),
    ("train-run-dir-under-file",
     lambda r: ["train", "dqn", "--env", "CartPole-v1", "--run-dir", str(_junk_file(r) / "sub")],
     "NotADirectoryError", NotADirectoryError),
    ("train-empty-env-id", lambda r: ["train", "dqn", "--env", ""],
     "gymnasium.error.Error: Malformed environment ID", gymnasium.error.Error),
    ("train-negative-seed", lambda r: ["train", "dqn", "--env", "CartPole-v1", "--seed", "-1"],
     "gymnasium.error.Error: Seed must be greater or equal to zero", gymnasium.error.Error),
    ("train-zero-width-layer", lambda r: ["train", "dqn", "--env", "CartPole-v1", "--hidden", "0"],
     "ZeroDivisionError in the network initialiser", ZeroDivisionError),
    ("experiment-out-is-file", lambda r: ["experiment", "figure1", "--quick", "--out", str(_junk_file(r))],
     "FileExistsError", FileExistsError),
    ("train-nan-lr", lambda r: ["train", "dqn", "--env", "CartPole-v1", "--lr", "nan"], "accepted", AssertionError),
    ("train-inf-reward-scale", lambda r: ["train", "sac", "--reward-scale", "inf"], "accepted", AssertionError),
    ("train-hidden-without-widths", lambda r: ["train", "dqn", "--env", "CartPole-v1", "--hidden"],
     "accepted: an MLP without hidden layers", AssertionError),
    ("eval-zero-episodes", lambda r: ["eval", str(_junk_file(r)), "--episodes", "0"], "a run-dir error first",
     AssertionError),
    ("resume-config-nan", lambda r: ["train", "--resume", str(_config_dir(r, "d", '{"agent": {"lr": NaN}}'))],
     "accepted NaN", AssertionError),
]


def _checkpoint_dir(root: Path) -> Path:
    path = root / "ckpt-dir"
    for name in CHECKPOINT_NAMES:
        (path / name).mkdir(parents=True)
    return path


@pytest.mark.parametrize("build", [pytest.param(build, id=name) for name, build, _, _ in FORMER_FAILURES])
def test_former_failures(tmp_path, build):
    argv = build(tmp_path)
    if argv[0] == "train" and "--resume" not in argv:
        # Budget caps (not overriding the case's own options), should a fix let the case train.
        caps = {"--total-steps": "2", "--learning-starts": "1", "--eval-episodes": "1", "--eval-every": "0",
                "--hidden": "4", "--batch-size": "2", "--run-dir": str(tmp_path / "run")}
        argv += [x for flag, value in caps.items() if flag not in argv for x in (flag, value)] + ["--no-progress"]
    assert_usage_error(argv)
