"""The README's two commands are the ones CI and users run."""

import os
import re

from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
  with open(os.path.join(_ROOT, *parts), encoding="utf-8") as f:
    return f.read()


class ReadmeTest(absltest.TestCase):
  def test_ci_runs_the_readme_test_command(self):
    readme = _read("README.md")
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, re.S)
    self.assertGreaterEqual(len(commands), 2)
    main_job, test_command = commands[0].strip(), commands[1].strip()
    self.assertIn("pytest", test_command)
    self.assertIn("benchmarks.quadratic", main_job)
    ci = _read(".ci", "run")
    self.assertIn(test_command, ci.splitlines())

  def test_results_blocks_match_their_files(self):
    from benchmarks import update_readme

    readme = _read("README.md")
    self.assertEqual(
      update_readme.render(readme, _ROOT),
      readme,
      "run python -m benchmarks.update_readme",
    )

  def test_every_results_block_and_image_names_an_existing_file(self):
    readme = _read("README.md")
    paths = re.findall(r"<!-- results: ([^ ]+) -->", readme)
    paths += re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    self.assertNotEmpty(paths)
    for path in paths:
      self.assertTrue(os.path.exists(os.path.join(_ROOT, path)), path)


if __name__ == "__main__":
  absltest.main()
