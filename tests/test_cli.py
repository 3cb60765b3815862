"""Tests of benchmarks/cli.py and benchmarks/config.py: flags, overrides,
config checks and the workdir check, all before any work is done."""

from contextlib import redirect_stderr
from contextlib import redirect_stdout
import dataclasses
import io
import json
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

from benchmarks import cli
from benchmarks import config as config_lib


@dataclasses.dataclass(frozen=True)
class _Config:
  num_steps: int = 10
  learning_rate: float = 0.1
  dataset: str = "mnist5k"
  data_dir: str | None = None
  tol: float | None = None
  progress: bool = True
  lambdas: tuple[float, ...] = (1e-2, 3e-3)
  mode: str = "train"

  def __post_init__(self):
    config_lib.positive("num_steps", self.num_steps)
    config_lib.positive("lambdas", self.lambdas)
    config_lib.one_of("mode", self.mode, ("train", "sweep"))


_PRESETS = {"default": _Config(), "quick": _Config(num_steps=3)}


def _main(argv, run=lambda c, w: (c, w), **kwargs):
  """cli.main with its exit message captured: (result or None, stderr)."""
  err = io.StringIO()
  with redirect_stderr(err):
    try:
      out = cli.main(
        argv,
        description="t",
        presets=_PRESETS,
        run=run,
        default_workdir=kwargs.pop("default_workdir", "/tmp"),
        **kwargs,
      )
    except SystemExit as e:
      return e.code, err.getvalue()
  return out, err.getvalue()


class ConfigTest(parameterized.TestCase):
  def test_overrides_are_typed_by_default(self):
    config = config_lib.apply_overrides(
      _Config(),
      [
        "num_steps=1e3",
        "learning_rate=2",
        "progress=false",
        "lambdas=1e-1,1e-4,5",
        "data_dir=/tmp/x",
        "dataset=mnist",
      ],
    )
    self.assertEqual(config.num_steps, 1000)
    self.assertIsInstance(config.num_steps, int)
    self.assertEqual(config.learning_rate, 2.0)
    self.assertIsInstance(config.learning_rate, float)
    self.assertIs(config.progress, False)
    self.assertEqual(config.lambdas, (0.1, 1e-4, 5.0))
    self.assertEqual(config.data_dir, "/tmp/x")
    self.assertEqual(_Config().num_steps, 10)  # The preset is untouched.
    # A None default is typed by its annotation: `str | None` keeps digits
    # as a string (a path), `float | None` takes numbers or none only.
    config = config_lib.apply_overrides(_Config(), ["data_dir=123", "tol=1"])
    self.assertEqual((config.data_dir, config.tol), ("123", 1.0))
    self.assertIsInstance(config.tol, float)
    self.assertIsNone(config_lib.apply_overrides(config, ["tol=none"]).tol)

  @parameterized.named_parameters(
    ("unknown_key", "num_stepz=3", "Unknown config key 'num_stepz'"),
    ("no_equals", "num_steps", "key=value"),
    ("bad_int", "num_steps=1.5", "expected an integer"),
    ("bad_bool", "progress=maybe", "expected a boolean"),
    ("bad_float", "learning_rate=fast", "expected a number"),
    ("bad_optional_float", "tol=abc", "--set tol: expected a number"),
    ("check", "num_steps=0", r"num_steps must be > 0, got num_steps=0\."),
    ("check_tuple", "lambdas=1,-2", r"lambdas must be > 0, got lambdas="),
    ("choice", "mode=dance", r"mode must be one of \['sweep', 'train'\]"),
  )
  def test_bad_overrides(self, override, message):
    with self.assertRaisesRegex(ValueError, message):
      config_lib.apply_overrides(_Config(), [override])


class CliTest(parameterized.TestCase):
  def test_preset_shortcuts_and_sets(self):
    with tempfile.TemporaryDirectory() as d:
      (config, workdir), _ = _main(
        [
          "--quick",
          "--data-dir",
          "/d",
          "--set",
          "learning_rate=0.5",
          "lambdas=1",
          "--workdir",
          d,
        ]
      )
    self.assertEqual(workdir, d)
    self.assertEqual(
      config,
      _Config(num_steps=3, learning_rate=0.5, data_dir="/d", lambdas=(1.0,)),
    )

  def test_default_workdir_names_the_preset_and_command_is_recorded(self):
    with tempfile.TemporaryDirectory() as d:
      out, _ = _main(
        ["--quick", "--set", "mode=sweep"],
        run=lambda c, w, command: (w, command),
        default_workdir=os.path.join(d, "{preset}"),
        prog="python -m benchmarks.t",
      )
      self.assertEqual(
        out,
        (
          os.path.join(d, "quick"),
          "python -m benchmarks.t --quick --set mode=sweep",
        ),
      )
      self.assertTrue(os.path.isdir(os.path.join(d, "quick")))

  @parameterized.named_parameters(
    ("unknown_key", ["--set", "nope=1"], "Unknown config key 'nope'"),
    (
      "wrong_type",
      ["--set", "num_steps=many"],
      "--set num_steps: expected an integer, got 'many'",
    ),
    ("failed_check", ["--set", "mode=dance"], "mode must be one of"),
    ("unknown_preset", ["--preset", "huge"], "invalid choice: 'huge'"),
  )
  def test_bad_flags_exit_before_work(self, argv, message):
    calls = []
    code, err = _main(argv, run=lambda c, w: calls.append(c))
    self.assertEqual(code, 2)
    self.assertIn(message, err)
    self.assertEqual(calls, [])

  def test_unwritable_workdir_fails_before_work(self):
    calls = []
    with tempfile.NamedTemporaryFile() as f:  # A file is no folder, even
      workdir = os.path.join(f.name, "out")  # for root.
      code, err = _main(
        ["--workdir", workdir], run=lambda c, w: calls.append(c)
      )
    self.assertEqual(code, 2)
    self.assertIn(f"--workdir: cannot write to {workdir!r}", err)
    self.assertEqual(calls, [])

  def test_print_config(self):
    out = io.StringIO()
    with redirect_stdout(out):
      result, _ = _main(
        ["--set", "num_steps=7", "--print-config"],
        run=lambda c, w: self.fail("ran"),
      )
    self.assertIsNone(result)
    self.assertEqual(json.loads(out.getvalue())["num_steps"], 7)


if __name__ == "__main__":
  absltest.main()
