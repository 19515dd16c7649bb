"""Numeric constants shared by the kernels (one place, per the design)."""

#: Absolute tolerance (ms) to which threshold-crossing times are located.
CROSSING_TOL_MS = 1e-12
#: Iteration cap of the safeguarded Newton/bisection crossing solver.
CROSSING_MAX_ITER = 200
#: Smallest relative gap |tau_m - tau_s| / max(tau_m, tau_s) accepted by SRM.
MIN_TAU_GAP = 1e-6
#: Largest magnitude accepted for a weight and for an event value (SpikeTrains values).
#: A weight times a value is then at most 1e200, so the membrane traces, which sum such
#: products (times the kernel prefactor, <= 1e6 by MIN_TAU_GAP) over the events of a sample,
#: stay far from float64 overflow (1.8e308): finite input never turns into a silent NaN.
MAX_MAGNITUDE = 1e100
#: Default of ``Sequential.simulate(max_spikes=...)``: most spikes one layer may emit for one
#: sample (about 16 bytes each) before the simulation stops with a ValueError. Guards against
#: runaway firing, e.g. reset="membrane" with t_ref=0, where one input of weight w makes a
#: neuron fire about w / theta times.
DEFAULT_MAX_SPIKES = 10_000_000
#: Range (ms) of a neuron time constant (tau_m, tau_s). Beyond it the kernel's peak time
#: and prefactor leave float64's comfortable range (e.g. tau_m = 1e300 with tau_s = 1e-300
#: gives an infinite peak time); every physiological and every hardware value lies inside.
TAU_RANGE_MS = (1e-9, 1e9)
#: Largest ``max_spikes`` accepted (a count that could never be allocated anyway, and which
#: still fits the kernels' int64 arithmetic).
MAX_SPIKES_CAP = 2 ** 40
#: Most neurons one layer may hold, and most weights (or conv links) it may have: 2**28
#: (2 GiB of float64 weights). A declared size beyond it is refused when the layer is
#: made, before anything is allocated (e.g. Dense(64, 10**7) or Conv2d(padding=10**5)).
MAX_LAYER_SIZE = 2 ** 28
#: Largest magnitude of a gradient factor or loss weight (``factor``, ``lambda_act``,
#: ``lambda_tim``): it multiplies the gradient once per layer, so 1e308 turns finite
#: gradients into inf/NaN; the reference values are 0.85 and 1.
MAX_FACTOR = 1e3
#: Most training epochs (a run of 10**400 epochs from a config file never ends).
MAX_EPOCHS = 10 ** 6
#: Most time steps of a dense-mode run, raster or frame binning (a run of 10**8 steps would
#: allocate tens of GiB before anything could fail).
MAX_N_STEPS = 10 ** 6
