"""The fractal (Lebedev–Finogenov) order of the Chebyshev steps, for every T."""

from __future__ import annotations

import functools

import numpy as np

from fractal_optax import _checks


def _interleave(first: np.ndarray, second: np.ndarray) -> np.ndarray:
  out = np.empty(first.size + second.size, dtype=np.int64)
  out[0::2] = first
  out[1::2] = second
  return out


@functools.lru_cache(maxsize=64)
def _fractal_order(num_steps: int) -> np.ndarray:
  sizes = [num_steps]
  while sizes[-1] > 1:
    sizes.append(sizes[-1] // 2)
  order = np.zeros(1, dtype=np.int64)
  for size in reversed(sizes[:-1]):
    # Mirror pairs (k, size-1-k) of the size-`size` problem are the nodes of
    # the size//2 problem in the variable 2z² − 1: order the pairs by it.
    order = _interleave(order, size - 1 - order)
    if size % 2:
      # The middle node (z = 0, step 2/(m + M)) is a pure contraction; it goes
      # right after the largest step.
      order = np.insert(order, 1, size // 2)
  order.setflags(write=False)
  return order


def fractal_order(num_steps: int) -> np.ndarray:
  r"""A numerically stable order of the ``T`` Chebyshev steps.

  Index ``i`` refers to :func:`chebyshev_step_sizes`'s ``i``-th step (``0`` is
  the largest). For ``T`` a power of two this is the order of Lebedev and
  Finogenov (1971) used by the paper,

  .. math::

    \sigma_1 = [0], \qquad
    \sigma_{2n} = \operatorname{interleave}(\sigma_n,\ 2n - 1 - \sigma_n),

  with :math:`\operatorname{interleave}([a_0, a_1, \dots], [b_0, b_1, \dots])
  = [a_0, b_0, a_1, b_1, \dots]`. Its mirror pairs :math:`(k, 2n-1-k)` are the
  nodes :math:`\pm z_k` of :math:`T_{2n}`, whose product
  :math:`(z^2 - z_k^2)` is a single node of :math:`T_n` in the variable
  :math:`w = 2z^2 - 1`, so the recursion is exact: every contiguous block of
  the schedule amplifies the error by at most the largest single step does,
  :math:`\eta_{\max} M - 1`, and every suffix contracts.

  For any other ``T`` the same recursion runs on ``T, ⌊T/2⌋, ⌊T/4⌋, …, 1``:
  an even size interleaves exactly as above; an odd size ``2n + 1`` orders its
  ``n`` mirror pairs by the size-``n`` order and puts its middle node (the
  step ``2/(m + M)``, a pure contraction) right after the largest step. The
  pairs of an odd size are only approximately the nodes of ``T_n``, so blocks
  can exceed the single-step floor; over ``T ≤ 1024`` and
  ``κ ∈ {10, …, 10⁵}`` the largest block stays within a small factor of it
  (``benchmarks/order_stability.py`` measures the exact figure; the README
  quotes it). Filtering the next power of two's order instead, as the PyTorch
  implementation does, exceeds it by over 100×.

  The result is cached; it costs ``O(T)`` (``T = 2**20`` takes milliseconds).

  Args:
    num_steps: ``T``, a positive Python int.

  Returns:
    A read-only ``(T,)`` int64 numpy array, a permutation of ``range(T)``;
    the schedule is ``chebyshev_step_sizes(T, m, M)[fractal_order(T)]``.

  Raises:
    TypeError: ``num_steps`` is not an int.
    ValueError: ``num_steps < 1``.

  Example:
    >>> import fractal_optax
    >>> fractal_optax.fractal_order(8).tolist()
    [0, 7, 3, 4, 1, 6, 2, 5]

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
    Lebedev & Finogenov, On the order of choice of the iteration parameters in
    the Chebyshev cyclic iteration method, USSR Comput. Math. Math. Phys.,
    1971.
  """
  return _fractal_order(_checks.check_num_steps(num_steps))
