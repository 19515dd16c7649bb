"""Benchmark W1: exact event-driven simulation of one Dense layer of SRM neurons.

Workload: ``--n-in`` (1000) independent Poisson spike trains at ``--rate`` (20 Hz) for
``--duration`` (1000 ms), drawn with a fixed seed, drive a fully connected layer of
``--n-out`` (1000) SRM neurons (tau_m 5 ms, tau_s 1.25 ms, theta 1, reset="membrane",
t_ref 0.1 ms) with normal weights N(0, w_std^2) (w_std 0.06: about 3 spikes/s per neuron).

The script prints the wall time of ``Sequential.simulate`` (median of ``--repeats`` runs
after one warm-up) and the synaptic events per second (input events x fan-out / wall time).

Floor. The least any dense sweep must do: read the weight row of every input event and add
it to one accumulator per output neuron (a numba loop, one add per synaptic event,
vectorised). The floor's time on a shared machine moves by tens of percent between
moments, so it is measured paired with eventsnn: in one process, after a warm-up of both,
each of the ``--repeats`` rounds times one floor sweep and one ``simulate`` on the same
input (process CPU time; the order alternates between rounds, and the floor reads the
layer's own weight array). Printed and in the JSON: the median over rounds of the
per-round ratio eventsnn / floor (``floor_paired_ratio_median``, the rounds in
``floor_paired_ratios``), min(eventsnn) / min(floor) (``floor_min_ratio``), and as before
the best floor (``floor_cpu_s``) and eventsnn's median CPU time over it. The per-round
ratio cancels what the load does to both within a round; the ratio of minima compares
the two when least disturbed.

Memory-bandwidth floor (issue 12's "within 2x of the memory-bandwidth floor"): the time
to stream the weight rows the input events read, input events x n_out x 8 bytes (160 MB
for W1 at 20 Hz), from main memory at this core's read bandwidth. The bandwidth is
measured in the same run: a vectorised numba read (an OR over int64 words) of a
``--bandwidth-mib`` (1024) MiB buffer, far beyond the caches, best of ``--repeats``.
Printed with eventsnn's median and minimum CPU time over it (``mem_floor_s``,
``mem_bandwidth_gbs``, ``mem_floor_ratio_median``, ``mem_floor_ratio_min``). The sweep
floor above is the stricter bound on a machine whose caches hold the whole weight matrix
(8 MB at 1000 x 1000): there the rows come from cache, faster than memory.

With ``--peers`` the same spike times and weights are simulated in the same run by
- Brian2 (runtime, cython target, dt 0.1 ms, LIF with exponential synaptic current), and
- NEST (``iaf_psc_exp_ps``, precise spike times, 1 thread, resolution 0.1 ms),
and the script prints the ratios (wall time vs Brian2, synaptic events/s vs NEST) and how
well the output spikes agree. Peers are optional: without them installed (see
benchmarks/requirements-peers.txt) only our numbers are printed.

Model mapping. eventsnn's membrane response to an input of weight w at time 0 is
w eps(s), eps(s) = tau_m / (tau_m - tau_s) (exp(-s/tau_m) - exp(-s/tau_s)). A current-based
LIF neuron dV/dt = -V/tau_m + I/C_m, dI/dt = -I/tau_s whose current jumps by J at time 0
responds with V(s) = J tau_s / C_m eps(s). Hence
- NEST: E_L = V_reset = 0 mV, V_th = theta mV, C_m = 250 pF, tau_syn_ex = tau_syn_in = tau_s,
  weight J = w C_m / tau_s in pA (pA ms / pF = mV);
- Brian2 (dimensionless): dv/dt = -v/tau_m + x, dx/dt = -x/tau_s, an input adds w / tau_s
  to x, threshold v >= theta, reset v = 0.
In all three the membrane is held at 0 for t_ref after a spike while the synaptic current
keeps integrating input. NEST's iaf_psc_exp_ps rejects t_ref < one time step (0.1 ms at
its default resolution), so t_ref = 0.1 ms is used everywhere.

Usage::

    python benchmarks/event_sim.py                # eventsnn only
    python benchmarks/event_sim.py --peers        # + Brian2 and NEST, ratios, agreement
    python benchmarks/event_sim.py --peers --json results.json
    python benchmarks/event_sim.py --peers --no-nest --n-out 4000 --rate 80
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

# One core: set before numba (and NEST's OpenMP) start. An explicit environment wins.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYNEST_QUIET", "1")

import numpy as np  # noqa: E402

TAU_M = 5.0        # ms
TAU_S = 1.25       # ms
THETA = 1.0
C_M_PF = 250.0     # NEST membrane capacitance (pF); any value works with J = w C_m / tau_s
PEER_DT = 0.1      # ms: Brian2 time step, NEST resolution and min delay


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- workload
def make_workload(n_in, n_out, rate_hz, duration_ms, w_std, seed):
    """Poisson input (times ms, neuron ids, sorted by time) and weights (n_out, n_in)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate_hz * duration_ms / 1000.0, size=n_in)
    times = rng.uniform(0.0, duration_ms, size=int(counts.sum()))
    neurons = np.repeat(np.arange(n_in, dtype=np.int64), counts)
    order = np.lexsort((neurons, times))
    weight = rng.standard_normal((n_out, n_in)) * w_std
    return times[order], neurons[order], weight


# ---------------------------------------------------------------------------- floor
def floor_sweep():
    """The floor kernel: the least any dense sweep must do, read the weight row of every
    input event and add it to one accumulator per output neuron (one add per synaptic
    event, vectorised; no decay, no threshold test)."""
    from numba import njit

    @njit(cache=False)
    def sweep(WT, idx, acc):
        for q in range(idx.size):
            row = WT[idx[q]]
            for k in range(acc.size):
                acc[k] += row[k]
        return acc

    return sweep


def read_bandwidth(mib, repeats):
    """Single-core read bandwidth of main memory (bytes/s): a vectorised numba OR over the
    int64 words of a ``mib`` MiB buffer (well past the caches), best of ``repeats`` after a
    warm-up pass (which also faults the pages in)."""
    from numba import njit

    @njit(cache=False)
    def read_all(a):
        acc = np.int64(0)
        for i in range(a.size):
            acc |= a[i]
        return acc

    buf = np.ones(mib * 1024 * 1024 // 8, dtype=np.int64)
    read_all(buf)
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        read_all(buf)
        best = min(best, time.process_time() - c0)
    return buf.nbytes / best


# ---------------------------------------------------------------------------- eventsnn
def run_paired(times, neurons, weight, duration_ms, t_ref, repeats):
    """eventsnn's ``simulate`` and the floor sweep, alternating in one process.

    Both are warmed up once (compilation, cache loading), then each of ``repeats`` rounds
    times one floor sweep and one ``simulate`` on the same input, process CPU time (and the
    wall time of ``simulate``); the order within a round alternates (floor first in even
    rounds, eventsnn first in odd ones) so neither always runs on the other's cache. The
    floor reads the layer's own weight array (``Dense.weight_t``, the array the kernel
    reads). Returns ((walls, cpus) of eventsnn, the floor's CPU times, output spike times
    and neurons)."""
    from eventsnn import SRM, Dense, Sequential, SpikeTrains

    n_out, n_in = weight.shape
    net = Sequential(Dense(n_in, n_out), neuron=SRM(TAU_M, TAU_S, THETA, "membrane", t_ref), rng=0)
    net.layers[0].weight = weight
    st = SpikeTrains(times, neurons, n_in)
    sweep = floor_sweep()
    WT = net.layers[0].weight_t
    idx = np.ascontiguousarray(neurons, dtype=np.int64)
    acc = np.zeros(n_out)
    rec = net.simulate(st, t_end=duration_ms)  # warm-up (loads or compiles the kernels)
    sweep(WT, idx, acc)
    walls, cpus, floors = [], [], []

    def ours():
        c0 = time.process_time()
        t0 = time.perf_counter()
        r = net.simulate(st, t_end=duration_ms)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        return r

    def floor():
        c0 = time.process_time()
        sweep(WT, idx, acc)
        floors.append(time.process_time() - c0)

    for r in range(repeats):
        if r % 2 == 0:
            floor()
            rec = ours()
        else:
            rec = ours()
            floor()
    out = rec.output
    return (walls, cpus), floors, out.times.copy(), out.neurons.copy()


def paired_ratios(cpus, floors):
    """Per-round ratios ours / floor of a paired run, their median, and min(ours) /
    min(floor)."""
    per_round = [a / b for a, b in zip(cpus, floors)]
    return {"floor_paired_ratios": per_round,
            "floor_paired_ratio_median": statistics.median(per_round),
            "floor_min_ratio": min(cpus) / min(floors)}


# ---------------------------------------------------------------------------- Brian2
def run_brian2(times, neurons, weight, duration_ms, t_ref, repeats):
    import brian2 as b2

    b2.prefs.codegen.target = "cython"
    b2.defaultclock.dt = PEER_DT * b2.ms
    n_out, n_in = weight.shape
    # Brian2 needs input on its grid with at most one spike per neuron and step: round to the
    # nearest step and move the k-th spike of a (neuron, step) pair to the k-th copy group.
    steps = np.rint(times / PEER_DT).astype(np.int64)
    order = np.lexsort((steps, neurons))
    n_s, s_s = neurons[order], steps[order]
    level = np.zeros(times.size, np.int64)
    same = np.r_[False, (n_s[1:] == n_s[:-1]) & (s_s[1:] == s_s[:-1])]
    for k in range(1, times.size):
        if same[k]:
            level[k] = level[k - 1] + 1
    tau_m, tau_s, theta = TAU_M * b2.ms, TAU_S * b2.ms, THETA
    ns = {"tau_m": tau_m, "tau_s": tau_s, "theta": theta}
    group = b2.NeuronGroup(
        n_out,
        """dv/dt = -v / tau_m + x : 1 (unless refractory)
           dx/dt = -x / tau_s : Hz""",
        threshold="v >= theta", reset="v = 0", refractory=t_ref * b2.ms,
        method="exact", namespace=ns, name="lif")
    objects = [group]
    for lev in range(int(level.max()) + 1):
        sel = level == lev
        src = np.unique(n_s[sel])                      # input neurons with a spike at this level
        local = np.searchsorted(src, n_s[sel])
        gen = b2.SpikeGeneratorGroup(src.size, local, s_s[sel] * PEER_DT * b2.ms,
                                     name=f"input{lev}")
        syn = b2.Synapses(gen, group, "w : 1", on_pre="x_post += w / tau_s", namespace=ns,
                          name=f"syn{lev}")
        ii = np.repeat(np.arange(src.size), n_out)
        jj = np.tile(np.arange(n_out), src.size)
        syn.connect(i=ii, j=jj)
        syn.w[:] = weight[:, src].T.ravel()
        objects += [gen, syn]
    mon = b2.SpikeMonitor(group, name="spikes")
    net = b2.Network(*objects, mon)
    net.store("start")
    walls, cpus = [], []
    for r in range(repeats + 1):  # the first run compiles (or loads) the cython code
        net.restore("start")
        c0 = time.process_time()
        t0 = time.perf_counter()
        net.run(duration_ms * b2.ms)
        wall = time.perf_counter() - t0
        if r:
            walls.append(wall)
            cpus.append(time.process_time() - c0)
        else:
            log(f"  brian2 warm-up run: {wall:.2f} s")
    out_t = np.asarray(mon.t / b2.ms)
    out_i = np.asarray(mon.i, dtype=np.int64)
    return (walls, cpus), out_t, out_i, int(level.max()) + 1


# ---------------------------------------------------------------------------- NEST
def run_nest(times, neurons, weight, duration_ms, t_ref, repeats):
    import nest

    n_out, n_in = weight.shape
    per_input = [times[neurons == j] for j in range(n_in)]
    delay = PEER_DT
    walls, cpus = [], []
    for r in range(repeats + 1):  # the network is rebuilt for every run (NEST 3 cannot reset it)
        nest.ResetKernel()
        if hasattr(nest, "VerbosityLevel"):   # NEST >= 3.9
            nest.verbosity = nest.VerbosityLevel.ERROR
        else:
            nest.set_verbosity("M_ERROR")
        nest.SetKernelStatus({"resolution": PEER_DT, "local_num_threads": 1, "print_time": False})
        gens = nest.Create("spike_generator", n_in)
        gens.set([{"spike_times": ts, "precise_times": True} for ts in per_input])
        parrots = nest.Create("parrot_neuron_ps", n_in)
        nest.Connect(gens, parrots, "one_to_one", syn_spec={"delay": delay})
        lif = nest.Create("iaf_psc_exp_ps", n_out, params={
            "C_m": C_M_PF, "tau_m": TAU_M, "tau_syn_ex": TAU_S, "tau_syn_in": TAU_S,
            "t_ref": t_ref, "E_L": 0.0, "V_reset": 0.0, "V_th": THETA, "V_m": 0.0, "I_e": 0.0})
        nest.Connect(parrots, lif, "all_to_all",
                     syn_spec={"weight": weight * (C_M_PF / TAU_S), "delay": delay})
        rec = nest.Create("spike_recorder")
        nest.Connect(lif, rec)
        nest.Prepare()
        c0 = time.process_time()
        t0 = time.perf_counter()
        nest.Run(duration_ms + 2 * delay)   # input reaches the neurons 2 delays late
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        nest.Cleanup()
        if r:
            walls.append(wall)
            cpus.append(cpu)
        else:
            log(f"  nest warm-up run: {wall:.2f} s")
    ev = rec.get("events")
    out_t = np.asarray(ev["times"], dtype=np.float64) - 2 * delay
    out_i = np.asarray(ev["senders"], dtype=np.int64) - lif[0].global_id
    keep = out_t <= duration_ms
    return (walls, cpus), out_t[keep], out_i[keep]


# ---------------------------------------------------------------------------- agreement
def agreement(ref_t, ref_i, t, i, n, tol):
    """Compare a peer's output spikes with eventsnn's (ref) for n neurons.

    Counts per neuron; spikes paired greedily in time order within ``tol`` ms, with the
    largest and median |dt| over the pairs; and for neurons with equal counts the largest
    |dt| between their k-th spikes."""
    c_ref = np.bincount(ref_i, minlength=n)
    c = np.bincount(i, minlength=n)
    same = c_ref == c
    pair_dt = []
    same_dt = 0.0
    for k in range(n):
        a = np.sort(ref_t[ref_i == k])
        b = np.sort(t[i == k])
        if same[k] and a.size:
            same_dt = max(same_dt, float(np.abs(a - b).max()))
        p = q = 0
        while p < a.size and q < b.size:
            d = a[p] - b[q]
            if abs(d) <= tol:
                pair_dt.append(abs(d))
                p += 1
                q += 1
            elif d < 0:
                p += 1
            else:
                q += 1
    n_pairs = len(pair_dt)
    pair_dt = np.asarray(pair_dt) if pair_dt else np.zeros(1)
    return {
        "spikes_ours": int(c_ref.sum()), "spikes_peer": int(c.sum()),
        "neurons_same_count": int(same.sum()), "n_neurons": int(n),
        "abs_count_diff_total": int(np.abs(c_ref - c).sum()),
        "max_dt_same_count_ms": same_dt,
        "tol_ms": tol, "matched": n_pairs,
        "max_dt_matched_ms": float(pair_dt.max()), "median_dt_matched_ms": float(np.median(pair_dt)),
    }


def describe_agreement(a):
    return (f"  agreement: spikes eventsnn {a['spikes_ours']}, peer {a['spikes_peer']}; "
            f"neurons with equal counts {a['neurons_same_count']}/{a['n_neurons']} "
            f"(sum |count diff| {a['abs_count_diff_total']}); spikes paired within "
            f"{a['tol_ms']:g} ms: {a['matched']} (|dt| max {a['max_dt_matched_ms']:.3g} ms, median "
            f"{a['median_dt_matched_ms']:.3g} ms); equal-count neurons: max |dt| "
            f"{a['max_dt_same_count_ms']:.3g} ms")


# ---------------------------------------------------------------------------- main
def stats(times):
    """Wall-time statistics, plus the median CPU time of the process (less sensitive to
    other jobs on a shared machine than the wall time)."""
    walls, cpus = times
    return {"median_s": statistics.median(walls), "min_s": min(walls), "runs_s": walls,
            "cpu_median_s": statistics.median(cpus)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-in", type=int, default=1000)
    p.add_argument("--n-out", type=int, default=1000)
    p.add_argument("--rate", type=float, default=20.0, help="input rate (Hz)")
    p.add_argument("--duration", type=float, default=1000.0, help="ms")
    p.add_argument("--w-std", type=float, default=0.06, help="weight standard deviation")
    p.add_argument("--t-ref", type=float, default=0.1,
                   help="refractory period (ms); NEST iaf_psc_exp_ps needs >= its resolution")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--repeats", type=int, default=11, help="timed eventsnn runs (after a warm-up)")
    p.add_argument("--peers", action="store_true", help="also run Brian2 and NEST")
    p.add_argument("--no-nest", action="store_true", help="with --peers: Brian2 only")
    p.add_argument("--peer-repeats", type=int, default=3, help="timed runs per peer (after a warm-up)")
    p.add_argument("--bandwidth-mib", type=int, default=1024,
                   help="buffer (MiB) of the memory-bandwidth measurement")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)

    times, neurons, weight = make_workload(args.n_in, args.n_out, args.rate, args.duration,
                                           args.w_std, args.seed)
    syn_events = times.size * args.n_out
    import numba
    print(f"W1: {args.n_in} Poisson inputs at {args.rate} Hz for {args.duration} ms (seed {args.seed}) "
          f"-> Dense {args.n_in}x{args.n_out} SRM (tau_m {TAU_M}, tau_s {TAU_S}, theta {THETA}, "
          f"reset membrane, t_ref {args.t_ref} ms), w ~ N(0, {args.w_std}^2)")
    print(f"input events {times.size}, synaptic events {syn_events:.4g}; "
          f"NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS} (one core); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, numba {numba.__version__}")
    results = {"args": vars(args), "input_events": int(times.size), "synaptic_events": int(syn_events)}

    walls, floors, ot, oi = run_paired(times, neurons, weight, args.duration, args.t_ref,
                                       args.repeats)
    ours = stats(walls)
    ours["spikes"] = int(ot.size)
    ours["syn_events_per_s"] = syn_events / ours["median_s"]
    results["eventsnn"] = ours
    print(f"eventsnn: simulate median {ours['median_s'] * 1e3:.1f} ms (min {ours['min_s'] * 1e3:.1f} ms, "
          f"{args.repeats} runs; CPU median {ours['cpu_median_s'] * 1e3:.1f} ms), "
          f"{ours['syn_events_per_s']:.3g} synaptic events/s, "
          f"{ot.size} output spikes ({ot.size / args.n_out / args.duration * 1000:.2f} Hz per neuron)")

    floor = min(floors)
    results["floor_cpu_s"] = floor
    results["floor_cpu_runs_s"] = floors
    ours["cpu_runs_s"] = walls[1]
    results.update(paired_ratios(walls[1], floors))
    print(f"floor (weight row of every event added to one accumulator per neuron): CPU {floor * 1e3:.1f} ms "
          f"(best of {args.repeats}; median {statistics.median(floors) * 1e3:.1f} ms); "
          f"eventsnn CPU median / floor = {ours['cpu_median_s'] / floor:.2f}, "
          f"CPU min / floor = {min(walls[1]) / floor:.2f}")
    print(f"  paired (floor and simulate alternating in each of {args.repeats} rounds): median of the "
          f"per-round ratios eventsnn / floor = {results['floor_paired_ratio_median']:.2f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in results['floor_paired_ratios'])}); "
          f"min(eventsnn) / min(floor) = {results['floor_min_ratio']:.2f}")
    bw = read_bandwidth(args.bandwidth_mib, max(args.repeats, 3))
    row_bytes = times.size * args.n_out * weight.itemsize
    mem_floor = row_bytes / bw
    results.update({"mem_bandwidth_gbs": bw / 1e9, "mem_floor_bytes": int(row_bytes),
                    "mem_floor_s": mem_floor,
                    "mem_floor_ratio_median": ours["cpu_median_s"] / mem_floor,
                    "mem_floor_ratio_min": min(walls[1]) / mem_floor})
    print(f"memory-bandwidth floor: the input events' weight rows, {row_bytes / 1e6:.0f} MB, at "
          f"{bw / 1e9:.1f} GB/s (one core reading {args.bandwidth_mib} MiB) = {mem_floor * 1e3:.1f} ms; "
          f"eventsnn CPU median / it = {results['mem_floor_ratio_median']:.2f}, "
          f"CPU min / it = {results['mem_floor_ratio_min']:.2f}")
    if args.peers:
        try:
            import brian2  # noqa: F401
            have_brian = True
        except Exception as exc:  # not installed, or broken (e.g. brian2 2.9 with numpy >= 2.4)
            have_brian = False
            print(f"brian2: unavailable ({type(exc).__name__}: {exc}); see benchmarks/README.md")
        if have_brian:
            log("running Brian2 ...")
            walls, bt, bi, n_lev = run_brian2(times, neurons, weight, args.duration, args.t_ref,
                                              args.peer_repeats)
            b = stats(walls)
            b["spikes"] = int(bt.size)
            b["syn_events_per_s"] = syn_events / b["median_s"]
            b["input_copy_groups"] = n_lev
            b["agreement"] = agreement(ot, oi, bt, bi, args.n_out, tol=2 * PEER_DT)
            b["wall_ratio_ours_over_peer"] = ours["median_s"] / b["median_s"]
            results["brian2"] = b
            print(f"brian2 (cython, dt {PEER_DT} ms): run median {b['median_s']:.3f} s "
                  f"({args.peer_repeats} runs; CPU median {b['cpu_median_s']:.3f} s), "
                  f"{b['syn_events_per_s']:.3g} synaptic events/s")
            b["cpu_ratio_ours_over_peer"] = ours["cpu_median_s"] / b["cpu_median_s"]
            print(f"  wall-time ratio eventsnn / brian2 = {b['wall_ratio_ours_over_peer']:.4f} "
                  f"(brian2 takes {1 / b['wall_ratio_ours_over_peer']:.1f}x longer); "
                  f"CPU-time ratio {b['cpu_ratio_ours_over_peer']:.4f}")
            print(describe_agreement(b["agreement"]))
        try:
            if args.no_nest:
                raise ImportError("skipped (--no-nest)")
            import nest  # noqa: F401
            have_nest = True
        except Exception as exc:  # not installed, or broken (e.g. brian2 2.9 with numpy >= 2.4)
            have_nest = False
            print(f"nest: unavailable ({type(exc).__name__}: {exc}); see benchmarks/README.md")
        if have_nest:
            log("running NEST ...")
            walls, nt, ni = run_nest(times, neurons, weight, args.duration, args.t_ref,
                                     args.peer_repeats)
            n = stats(walls)
            n["spikes"] = int(nt.size)
            n["syn_events_per_s"] = syn_events / n["median_s"]
            n["agreement"] = agreement(ot, oi, nt, ni, args.n_out, tol=1e-9)
            n["rate_ratio_ours_over_peer"] = ours["syn_events_per_s"] / n["syn_events_per_s"]
            results["nest"] = n
            print(f"nest (iaf_psc_exp_ps, 1 thread): Run median {n['median_s']:.3f} s "
                  f"({args.peer_repeats} runs; CPU median {n['cpu_median_s']:.3f} s), "
                  f"{n['syn_events_per_s']:.3g} synaptic events/s")
            n["cpu_rate_ratio_ours_over_peer"] = n["cpu_median_s"] / ours["cpu_median_s"]
            print(f"  synaptic-events/s ratio eventsnn / nest = {n['rate_ratio_ours_over_peer']:.1f}x "
                  f"(target >= 50); per CPU second {n['cpu_rate_ratio_ours_over_peer']:.1f}x")
            print(describe_agreement(n["agreement"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
