"""Numeric constants shared by the kernels (one place, per the design)."""

#: Absolute tolerance (ms) to which threshold-crossing times are located.
CROSSING_TOL_MS = 1e-12
#: Iteration cap of the safeguarded Newton/bisection crossing solver.
CROSSING_MAX_ITER = 200
#: Smallest relative gap |tau_m - tau_s| / max(tau_m, tau_s) accepted by SRM.
MIN_TAU_GAP = 1e-6
