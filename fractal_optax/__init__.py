"""fractal_optax: fractal Chebyshev learning-rate schedules for Optax.

Plain gradient descent reaches the accelerated √κ rate on quadratics when its
step sizes are the reciprocal Chebyshev nodes, and stays numerically stable
when they come in a fractal order (Agarwal, Goel & Zhang, ICML 2021,
https://arxiv.org/abs/2103.01338).
"""

from fractal_optax._adaptive import ScaleByAdaptiveFractalState
from fractal_optax._adaptive import adaptive_fractal_sgd
from fractal_optax._adaptive import scale_by_adaptive_fractal
from fractal_optax._alias import fractal_sgd
from fractal_optax._chebyshev import chebyshev_error_bound
from fractal_optax._chebyshev import chebyshev_num_steps
from fractal_optax._chebyshev import chebyshev_step_sizes
from fractal_optax._curvature import CurvatureEstimate
from fractal_optax._curvature import MaxCurvatureEstimate
from fractal_optax._curvature import estimate_curvature
from fractal_optax._curvature import estimate_max_curvature
from fractal_optax._order import fractal_order
from fractal_optax._schedule import fractal_chebyshev_schedule
from fractal_optax._schedule import fractal_chebyshev_step_sizes
from fractal_optax._silver import SILVER_RATIO
from fractal_optax._silver import silver_convex_schedule
from fractal_optax._silver import silver_convex_step_sizes
from fractal_optax._silver import silver_error_bound
from fractal_optax._silver import silver_num_doublings
from fractal_optax._silver import silver_schedule
from fractal_optax._silver import silver_step_sizes
from fractal_optax._stability import StabilityProfile
from fractal_optax._stability import stability_profile

__version__ = "0.1.0"

__all__ = (
  "CurvatureEstimate",
  "MaxCurvatureEstimate",
  "SILVER_RATIO",
  "ScaleByAdaptiveFractalState",
  "StabilityProfile",
  "adaptive_fractal_sgd",
  "chebyshev_error_bound",
  "chebyshev_num_steps",
  "chebyshev_step_sizes",
  "estimate_curvature",
  "estimate_max_curvature",
  "fractal_chebyshev_schedule",
  "fractal_chebyshev_step_sizes",
  "fractal_order",
  "fractal_sgd",
  "scale_by_adaptive_fractal",
  "silver_convex_schedule",
  "silver_convex_step_sizes",
  "silver_error_bound",
  "silver_num_doublings",
  "silver_schedule",
  "silver_step_sizes",
  "stability_profile",
)
