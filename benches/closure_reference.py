#!/usr/bin/env python3
"""NumPy reference of the closure call (the localized sweep), for `cargo bench --bench closure`.

The bench writes a problem directory (the model image's per-head arrays, see `load`) and runs

  python3 closure_reference.py time     --dir DIR --dtype f64 --reps 3   # seconds per closure call
  python3 closure_reference.py validate --dir DIR --check 5              # psi after replayed normals

printing one JSON object per line (times: wall clock, and `cpu_seconds` = on-CPU time of the thread,
time.thread_time, which leaves out waiting for a CPU on a shared machine). One closure call is `sweeps` localized sweeps; one sweep, with the
state x = (z, psi) of dimension d, heads h = 1..K, neighbourhood coords[h] (d_a coordinates) and
target t[h]:

  xh     = x + sqrt(2 eps) xi,  xi ~ N(0, I_d)                  (one global draw per sweep)
  y_h    = xh[coords[h]]                                         (Jacobi: every head reads xh)
  a_hj   = g_hj - sum_c ((y_hc - X_hjc) / s_hc)^2 / (4 eps)      (X_h: the head's M x d_a samples)
  x[t_h] = sum_j softmax_j(a_h)_j X_hj[t_h]                      (weighted mean of the target column)
  x[z]   = z*                                                    (clamp after every sweep)

The fast forms expand the square: a_hj = G_hj + X_hj . b_h + const_h with the data-only
G_hj = g_hj - sum_c X_hjc^2 / (s_hc^2 4 eps), hoisted out of the sweep, and b_h = 2 y_h / (s_h^2 4 eps);
const_h = -|y_h|_S^2 / (4 eps) is the same for every j and cancels in the softmax. The samples are
kept feature-major, XT_h = X_h^T of shape (d_a, M) (hoisted, like G), so the product b_h^T XT_h runs
over contiguous rows of M values: 2-4 times faster here than X_h @ b_h on the sample-major (M, d_a)
array. Variants:

  batched-matmul   all K heads as one (K, d_a, M) array, np.matmul of (K, 1, d_a) with the stack
  batched-einsum   the same with np.einsum('kcm,kc->km')
  loop-matmul      a Python loop over the heads, one BLAS gemv (d_a,) @ (d_a, M) per head
  batched-diff     explicit differences (y - X)^2 on (K, M, d_a) temporaries (the crate's own
                   arithmetic; slower, validated but not timed unless asked for)

All variants work in place on preallocated buffers. BLAS is single-threaded by default (the crate's
call is single-threaded): OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS are set to 1 unless
already set in the environment.
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

VARIANTS = ("batched-matmul", "batched-einsum", "loop-matmul", "batched-diff")
TIMED_DEFAULT = "batched-matmul,batched-einsum,loop-matmul"


def load(d):
    """The problem directory: meta.json, and raw little-endian arrays written by the bench."""
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    k, m, da = meta["k"], meta["m"], meta["da"]

    def arr(name, dtype, shape):
        a = np.fromfile(os.path.join(d, name), dtype=dtype)
        if a.size != int(np.prod(shape)):
            raise SystemExit(f"{name}: {a.size} values, expected {shape}")
        return a.reshape(shape)

    p = dict(meta)
    p["X"] = arr("data.f64", "<f8", (k, m, da))
    p["g"] = arr("logv.f64", "<f8", (k, m))
    p["s"] = arr("scales.f64", "<f8", (k, da))
    p["coords"] = arr("coords.u32", "<u4", (k, da)).astype(np.intp)
    p["targets"] = np.asarray(meta["targets"], dtype=np.intp)
    p["zc"] = np.asarray(meta["z_coords"], dtype=np.intp)
    p["zstar"] = np.asarray(meta["z_star"], dtype=np.float64)
    p["psi0"] = np.asarray(meta["psi0"], dtype=np.float64)
    if os.path.exists(os.path.join(d, "normals.f64")):
        p["normals"] = arr("normals.f64", "<f8", (meta["sweeps"], meta["d"]))
    return p


class Sweep:
    """Everything a sweep needs, in dtype `dt`, with the data-only terms hoisted."""

    def __init__(self, p, dt, variant):
        self.dt, self.variant = dt, variant
        k, m = p["k"], p["m"]
        self.k, self.m, self.d = k, m, p["d"]
        self.X = np.ascontiguousarray(p["X"].astype(dt))            # (K, M, da)
        self.XT = np.ascontiguousarray(self.X.transpose(0, 2, 1))    # (K, da, M)
        w = (1.0 / (p["s"] * p["s"])).astype(dt)                     # (K, da), 1/s^2
        inv4e = dt(1.0 / (4.0 * p["eps"]))
        self.inv4e, self.w = inv4e, w
        self.G = (p["g"].astype(dt) - (self.X * self.X * w[:, None, :]).sum(-1) * inv4e).astype(dt)
        self.g = p["g"].astype(dt)
        self.wb = (2 * inv4e * w).astype(dt)                         # b_h = wb_h * y_h
        self.coords, self.targets = p["coords"], p["targets"]
        tloc = np.array([list(p["coords"][h]).index(p["targets"][h]) for h in range(k)])
        self.Xt = np.ascontiguousarray(self.X[np.arange(k), :, tloc])  # (K, M) target columns
        self.zc = p["zc"]
        self.zstar = p["zstar"].astype(dt)
        self.noise = dt(np.sqrt(2.0 * p["eps"]))
        self.free = np.array([c for c in range(self.d) if c not in set(self.zc.tolist())], np.intp)
        # Work buffers.
        self.L = np.empty((k, m), dt)
        self.L3 = self.L.reshape(k, m, 1)
        self.L13 = self.L.reshape(k, 1, m)
        self.D = np.empty((k, m, p["da"]), dt) if variant == "batched-diff" else None
        self.mx = np.empty((k, 1), dt)
        self.new = np.empty(k, dt)

    def heads(self, xh):
        """The K target values from the noisy state xh."""
        Y = xh[self.coords]                                          # (K, da)
        L, v = self.L, self.variant
        if v == "batched-matmul":
            np.matmul((self.wb * Y)[:, None, :], self.XT, out=self.L13)
            L += self.G
        elif v == "batched-einsum":
            np.einsum("kcm,kc->km", self.XT, self.wb * Y, out=L)
            L += self.G
        elif v == "batched-diff":
            D = self.D
            np.subtract(Y[:, None, :], self.X, out=D)
            np.multiply(D, D, out=D)
            np.matmul(D, (self.w * self.inv4e)[:, :, None], out=self.L3)
            np.subtract(self.g, L, out=L)
        elif v == "loop-matmul":
            B = self.wb * Y
            for h in range(self.k):
                row = L[h]
                np.dot(B[h], self.XT[h], out=row)
                row += self.G[h]
                row -= row.max()
                np.exp(row, out=row)
                self.new[h] = np.dot(row, self.Xt[h]) / row.sum()
            return self.new
        else:
            raise SystemExit(f"unknown variant {v}")
        np.max(L, axis=1, keepdims=True, out=self.mx)
        L -= self.mx
        np.exp(L, out=L)
        np.einsum("km,km->k", L, self.Xt, out=self.new)
        self.new /= L.sum(1)
        return self.new

    def run(self, x, sweeps, normals):
        """`sweeps` sweeps from x (clamped first), normals from `normals(i)`; returns x."""
        x = x.copy()
        x[self.zc] = self.zstar
        for i in range(sweeps):
            xh = x + self.noise * normals(i)
            x[self.targets] = self.heads(xh)
            x[self.zc] = self.zstar
        return x


def initial_state(p, dt):
    x = np.zeros(p["d"], dt)
    x[p["zc"]] = p["zstar"].astype(dt)
    free = [c for c in range(p["d"]) if c not in set(p["zc"].tolist())]
    x[free] = p["psi0"].astype(dt)
    return x, np.array(free, np.intp)


def time_calls(args):
    p = load(args.dir)
    dt = np.float64 if args.dtype == "f64" else np.float32
    rng = np.random.default_rng(args.seed)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        sw = Sweep(p, dt, v)
        x, free = initial_state(p, dt)

        def normals(_i):
            return rng.standard_normal(sw.d).astype(dt)

        times, cpu = [], []
        for r in range(args.reps + 1):                                # the first call is a warm-up
            t, c = time.perf_counter(), time.thread_time()
            x = sw.run(x, p["sweeps"], normals)                       # warm start: the chain goes on
            el, ec = time.perf_counter() - t, time.thread_time() - c
            if r > 0:
                times.append(el)
                cpu.append(ec)
        if not np.all(np.isfinite(x)):
            raise SystemExit(f"{v}: non-finite state")
        times.sort()
        cpu.sort()
        med = times[len(times) // 2]
        k, m, sweeps = p["k"], p["m"], p["sweeps"]
        print(json.dumps({
            "what": "closure_call", "impl": "numpy-" + v, "dtype": args.dtype, "m": m, "k": k,
            "da": p["da"], "sweeps": sweeps, "seconds": med, "cpu_seconds": cpu[len(cpu) // 2], "seconds_min": times[0],
            "seconds_max": times[-1], "reps": len(times),
            "ns_per_eval": med * 1e9 / (sweeps * k * m),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "numpy": np.__version__,
        }), flush=True)


def validate(args):
    p = load(args.dir)
    if "normals" not in p:
        raise SystemExit("validate needs normals.f64")
    dt = np.float64
    nrm = p["normals"]
    for v in VARIANTS:
        sw = Sweep(p, dt, v)
        x, free = initial_state(p, dt)
        xa = sw.run(x, args.check, lambda i: nrm[i])
        # The remaining sweeps continue with the following normals.
        xb = sw.run(xa, p["sweeps"] - args.check, lambda i: nrm[args.check + i])
        print(json.dumps({
            "what": "validate", "impl": "numpy-" + v, "check": args.check, "sweeps": p["sweeps"],
            "psi_check": [float(t) for t in xa[free]], "psi_all": [float(t) for t in xb[free]],
        }), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["time", "validate"])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--dtype", choices=["f64", "f32"], default="f64")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=5, help="validate: also report psi after this many sweeps")
    ap.add_argument("--variants", default=TIMED_DEFAULT, help="time: comma-separated, from " + ",".join(VARIANTS))
    args = ap.parse_args()
    time_calls(args) if args.what == "time" else validate(args)


if __name__ == "__main__":
    main()
