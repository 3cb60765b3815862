"""Runs the doctest examples of every public docstring."""

import doctest
import importlib
import pkgutil

from absl.testing import absltest
from absl.testing import parameterized

import fractal_optax

_MODULES = sorted(
  info.name
  for info in pkgutil.iter_modules(fractal_optax.__path__, "fractal_optax.")
)


class DoctestTest(parameterized.TestCase):
  def test_every_public_name_has_an_example(self):
    for name in fractal_optax.__all__:
      obj = getattr(fractal_optax, name)
      if callable(obj) and not isinstance(obj, type):
        self.assertIn(">>>", obj.__doc__ or "", msg=name)

  @parameterized.parameters(*_MODULES)
  def test_module_examples(self, module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    self.assertEqual(result.failed, 0, msg=f"{module_name}: {result}")


if __name__ == "__main__":
  absltest.main()
