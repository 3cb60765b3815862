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


def _middle_position(num_pairs: int, length: int) -> int:
  """Where an odd level puts its middle node: inside pair 1, 2 or 4.

  ``p = 2^(min(v, 2) + 1) − 1`` with ``v`` the number of times 2 divides the
  number of pairs ``n``: ``p = 1`` (between the largest step and its mirror)
  for odd ``n``, ``3`` for ``n ≡ 2 (mod 4)``, ``7`` for ``n ≡ 0 (mod 4)``,
  clipped to the end for tiny ``n``. The rule is empirical (the maths page
  of the documentation, "The fractal order for every T", says how it was
  chosen and quotes how it does).
  """
  two_adic = (num_pairs & -num_pairs).bit_length() - 1 if num_pairs else 0
  return min((1 << (min(two_adic, 2) + 1)) - 1, length)


# Orders up to this length are cached (at most 64 of them, 32 MB in all).
_CACHED_MAX = 2**16


@functools.lru_cache(maxsize=64)
def _cached_order(num_steps: int) -> np.ndarray:
  return _build_order(num_steps)


def _build_order(num_steps: int) -> np.ndarray:
  sizes = [num_steps]
  while sizes[-1] > 1:
    sizes.append(sizes[-1] // 2)
  order = np.zeros(1, dtype=np.int64)
  for size in reversed(sizes[:-1]):
    # Mirror pairs (k, size-1-k) of the size-`size` problem are the nodes of
    # the size//2 problem in the variable 2z² − 1: order the pairs by it.
    order = _interleave(order, size - 1 - order)
    if size % 2:
      order = np.insert(
        order, _middle_position(size // 2, order.size), size // 2
      )
  order.setflags(write=False)
  return order


def _fractal_order(num_steps: int) -> np.ndarray:
  if num_steps <= _CACHED_MAX:
    return _cached_order(num_steps)
  return _build_order(num_steps)


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
  ``n`` mirror pairs by the size-``n`` order and inserts its middle node (the
  step ``2/(m + M)``, :math:`z = 0`, a pure contraction) inside the first,
  second or fourth mirror pair (position ``1``, ``3`` or ``7`` for ``n`` odd,
  ``≡ 2`` or ``≡ 0 (mod 4)``). The pairs of an odd size are only approximately
  the nodes of :math:`T_n` (they are the roots of a degree-:math:`n + ½`
  Chebyshev function), so for such ``T`` no bound is proved and blocks may
  exceed the single-step floor. How far they do is measured, not promised:
  the maths page of the documentation, "The fractal order for every T",
  quotes the file ``python -m benchmarks.order_stability`` writes, with the
  next power of two's order filtered to ``T`` (as the PyTorch
  implementation does) for comparison; :func:`stability_profile` measures
  any ``T`` and ``κ`` directly.

  It costs ``O(T)`` time and memory; the orders of ``T <= 2**16`` are
  cached.

  Args:
    num_steps: ``T``, a positive Python int, at most ``2**24`` (the largest
      cycle length any function of the library accepts; the order then takes
      128 MB).

  Returns:
    A read-only ``(T,)`` int64 numpy array, a permutation of ``range(T)``;
    the schedule is ``chebyshev_step_sizes(T, m, M)[fractal_order(T)]``.

  Raises:
    TypeError: ``num_steps`` is not an int.
    ValueError: ``num_steps`` is outside ``[1, 2**24]``.

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
