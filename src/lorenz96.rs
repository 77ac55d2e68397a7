//! Two-scale Lorenz-96 model, training data for the closure problem and baseline closures.
//!
//! Host-only (`std` feature). This is the test bed of the localized paper, §5.1: `K` slow
//! variables `z_k`, each coupled to `J` fast variables `y_{j,k}`,
//!
//! ```text
//! (59a) dz_k/dt     = −z_{k−1}(z_{k−2} − z_{k+1}) − z_k + F − (h c / b) Σ_j y_{j,k}
//! (59b) dy_{j,k}/dt = −c b y_{j+1,k}(y_{j+2,k} − y_{j−1,k}) − c y_{j,k} + (h c / b) z_k
//! ```
//!
//! with periodic boundaries `z_{k+K} = z_k`, `y_{j,k+K} = y_{j,k}` and `y_{j+J,k} = y_{j,k+1}`, so
//! that the fast variables form one ring of `K·J` values. Time is in the model's own
//! (dimensionless) time units; one unit is roughly five "atmospheric days" in Lorenz's reading.
//!
//! State layout (length `K·(J+1)`): `[z_0 .. z_{K−1}, y_{0,0} .. y_{J−1,0}, y_{0,1} .. y_{J−1,1},
//! …]`, i.e. the slow variables first, then the fast variables with the fast index of sector `k`
//! contiguous. With this layout the fast ring is simply the index `n = k·J + j` taken modulo `K·J`.
//!
//! Training pairs `(z, ψ)` follow eq. (61), `ψ = (z(t+Δt) − z(t))/Δt − G(z(t))`, and the closure
//! model is the Euler scheme (62), `z ← z + (G(z) + ψ) δt`, where
//! `G_k(z) = −z_{k−1}(z_{k−2} − z_{k+1}) − z_k + F` is the resolved tendency (60). Baseline
//! closures in the spirit of Wilks (2005) and Arnold et al. (2013) — a pooled cubic polynomial in `z_k` plus
//! AR(1) noise — are provided for comparison.
//!
//! Nothing in this module depends on the rest of the crate; its small random number generator
//! (splitmix64) is private and used only for initial conditions.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// Largest `|z_k|` the closure model may reach before [`run_closure_model`] declares a blow-up.
///
/// The attractor of the two-scale model with the paper's parameters stays within about `±30`;
/// `10³` leaves a wide margin while catching divergence long before overflow.
pub const BLOWUP_THRESHOLD: f64 = 1e3;

/// Parameters of the two-scale Lorenz-96 model (59a/b).
///
/// All quantities are dimensionless. `Default` gives the paper's settings (§5.1, after Wilks 2005
/// and Arnold et al. 2013): `K = 12`, `J = 24`, `F = 20`, `b = c = 10`, `h = 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoScaleParams {
    /// Number `K` of slow variables `z_k` (sectors). Must be at least 4.
    pub k: usize,
    /// Number `J` of fast variables `y_{j,k}` per sector. Must be at least 1.
    pub j: usize,
    /// Forcing `F` of the slow variables.
    pub f: f64,
    /// Amplitude ratio `b` between slow and fast variables (fast are about `b` times smaller).
    pub b: f64,
    /// Time-scale ratio `c` (fast variables are about `c` times faster).
    pub c: f64,
    /// Coupling strength `h`; the coupling coefficient in both equations is `h·c/b`.
    pub h: f64,
}

impl Default for TwoScaleParams {
    /// The paper's setting: `K = 12`, `J = 24`, `F = 20`, `b = c = 10`, `h = 1` (state dimension
    /// 300).
    fn default() -> Self {
        TwoScaleParams {
            k: 12,
            j: 24,
            f: 20.0,
            b: 10.0,
            c: 10.0,
            h: 1.0,
        }
    }
}

impl TwoScaleParams {
    /// Length `K·(J+1)` of the full state vector (slow variables first, then the fast ones).
    pub fn dim(&self) -> usize {
        self.k * (self.j + 1)
    }

    /// Coupling coefficient `h·c/b` appearing in both (59a) and (59b).
    pub fn coupling_coefficient(&self) -> f64 {
        self.h * self.c / self.b
    }

    /// Checks that `K ≥ 4`, `J ≥ 1`, that `b ≠ 0` and that all real parameters are finite.
    pub fn validate(&self) -> Result<(), String> {
        if self.k < 4 {
            return Err(format!(
                "Lorenz-96 needs K >= 4 slow variables, got K = {}",
                self.k
            ));
        }
        if self.j < 1 {
            return Err(String::from(
                "Lorenz-96 needs J >= 1 fast variables per sector",
            ));
        }
        if self.k.checked_mul(self.j + 1).is_none() {
            return Err(String::from("K*(J+1) overflows usize"));
        }
        if !(self.f.is_finite() && self.b.is_finite() && self.c.is_finite() && self.h.is_finite()) {
            return Err(String::from(
                "Lorenz-96 parameters F, b, c, h must be finite",
            ));
        }
        if self.b == 0.0 {
            return Err(String::from("Lorenz-96 parameter b must be non-zero"));
        }
        Ok(())
    }

    /// Full tendency `d/dt (z, y)` of the two-scale model, eqs. (59a) and (59b).
    ///
    /// `state` and `out` use the layout of the module documentation and have length
    /// [`dim`](Self::dim); `out` is overwritten. Units: state units per model time unit.
    ///
    /// # Panics
    /// If `state.len()` or `out.len()` differs from `K·(J+1)`, or if `K < 3` or `K·J < 3`
    /// (parameters that pass [`validate`](Self::validate) never trigger the latter).
    pub fn tendency(&self, state: &[f64], out: &mut [f64]) {
        let (kk, jj) = (self.k, self.j);
        let n = kk * jj;
        assert!(kk >= 3 && n >= 3, "Lorenz-96 needs K >= 3 and K*J >= 3");
        assert_eq!(state.len(), kk + n, "state length must be K*(J+1)");
        assert_eq!(out.len(), kk + n, "output length must be K*(J+1)");
        let (z, y) = state.split_at(kk);
        let (dz, dy) = out.split_at_mut(kk);
        let hcb = self.coupling_coefficient();
        let cb = self.c * self.b;
        let c = self.c;

        // Slow variables: resolved part plus coupling −(hc/b) Σ_j y_{j,k}.
        resolved_tendency(z, self.f, dz);
        for (k, dzk) in dz.iter_mut().enumerate() {
            let s: f64 = y[k * jj..(k + 1) * jj].iter().sum();
            *dzk -= hcb * s;
        }

        // Fast ring of length n: index i = k·J + j, neighbours taken modulo n.
        let fast = |i: usize, im1: usize, ip1: usize, ip2: usize| -> f64 {
            -cb * y[ip1] * (y[ip2] - y[im1]) - c * y[i]
        };
        dy[0] = fast(0, n - 1, 1, 2);
        for (i, d) in dy.iter_mut().enumerate().take(n - 2).skip(1) {
            *d = fast(i, i - 1, i + 1, i + 2);
        }
        dy[n - 2] = fast(n - 2, n - 3, n - 1, 0);
        dy[n - 1] = fast(n - 1, n - 2, 0, 1);
        for (k, zk) in z.iter().enumerate() {
            let forcing = hcb * zk;
            for d in &mut dy[k * jj..(k + 1) * jj] {
                *d += forcing;
            }
        }
    }

    /// Coupling term of (59a) for the given state: `out_k = −(h c / b) Σ_j y_{j,k}`.
    ///
    /// This is the exact instantaneous closure term that ψ of eq. (61) approximates.
    ///
    /// # Panics
    /// If `state.len() != K·(J+1)` or `out.len() != K`.
    pub fn coupling_term(&self, state: &[f64], out: &mut [f64]) {
        let (kk, jj) = (self.k, self.j);
        assert_eq!(state.len(), kk * (jj + 1), "state length must be K*(J+1)");
        assert_eq!(out.len(), kk, "output length must be K");
        let hcb = self.coupling_coefficient();
        let y = &state[kk..];
        for (k, o) in out.iter_mut().enumerate() {
            let s: f64 = y[k * jj..(k + 1) * jj].iter().sum();
            *o = -hcb * s;
        }
    }

    /// One classical fourth-order Runge–Kutta step of length `dt` (model time units), in place.
    ///
    /// `state ← state + dt/6 (k1 + 2 k2 + 2 k3 + k4)` with the usual stages of
    /// [`tendency`](Self::tendency). Allocation-free; `work` must come from
    /// [`TwoScaleWork::new`] for these parameters. The paper uses `dt = Δt = 5·10⁻⁴`.
    ///
    /// # Panics
    /// As [`tendency`](Self::tendency), or if `work` was built for a different dimension.
    pub fn rk4_step(&self, state: &mut [f64], dt: f64, work: &mut TwoScaleWork) {
        let d = state.len();
        assert_eq!(
            work.k1.len(),
            d,
            "work buffers do not match the state dimension"
        );
        let TwoScaleWork {
            k1,
            k2,
            k3,
            k4,
            tmp,
        } = work;
        let half = 0.5 * dt;
        self.tendency(state, k1);
        for i in 0..d {
            tmp[i] = state[i] + half * k1[i];
        }
        self.tendency(tmp, k2);
        for i in 0..d {
            tmp[i] = state[i] + half * k2[i];
        }
        self.tendency(tmp, k3);
        for i in 0..d {
            tmp[i] = state[i] + dt * k3[i];
        }
        self.tendency(tmp, k4);
        let sixth = dt / 6.0;
        for i in 0..d {
            state[i] += sixth * (k1[i] + 2.0 * (k2[i] + k3[i]) + k4[i]);
        }
    }

    /// A random initial state from `seed` (deterministic, platform independent).
    ///
    /// Slow variables `z_k = F·u_k` with `u_k` uniform on `[0, 1)`; fast variables
    /// `y_{j,k} = 0.1·(2u − 1)` (uniform on `[−0.1, 0.1)`). The state is
    /// far from the attractor: spin it up before use (one or two time units suffice).
    pub fn initial_state(&self, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        let mut s = vec![0.0; self.dim()];
        let (z, y) = s.split_at_mut(self.k);
        for zk in z.iter_mut() {
            *zk = self.f * rng.uniform();
        }
        for yi in y.iter_mut() {
            *yi = 0.1 * (2.0 * rng.uniform() - 1.0);
        }
        s
    }
}

/// The four Runge–Kutta stage buffers (and one scratch state) used by
/// [`TwoScaleParams::rk4_step`], each of length `K·(J+1)`.
#[derive(Clone, Debug)]
pub struct TwoScaleWork {
    k1: Vec<f64>,
    k2: Vec<f64>,
    k3: Vec<f64>,
    k4: Vec<f64>,
    tmp: Vec<f64>,
}

impl TwoScaleWork {
    /// Allocates `5·K·(J+1)` doubles for the given parameters (the only allocation of an
    /// integration).
    pub fn new(p: &TwoScaleParams) -> Self {
        let d = p.dim();
        TwoScaleWork {
            k1: vec![0.0; d],
            k2: vec![0.0; d],
            k3: vec![0.0; d],
            k4: vec![0.0; d],
            tmp: vec![0.0; d],
        }
    }
}

/// Resolved tendency (60): `G_k(z) = −z_{k−1}(z_{k−2} − z_{k+1}) − z_k + F`, periodic in `k`.
///
/// `z` and `out` have the same length `K ≥ 1` (indices are taken modulo `K`); `out` is
/// overwritten. Units: state units per model time unit.
///
/// # Panics
/// If `out.len() != z.len()`.
pub fn resolved_tendency(z: &[f64], f: f64, out: &mut [f64]) {
    let kk = z.len();
    assert_eq!(out.len(), kk, "output length must equal K");
    for (k, o) in out.iter_mut().enumerate() {
        let km1 = (k + kk - 1) % kk;
        let km2 = (k + 2 * kk - 2) % kk;
        let kp1 = (k + 1) % kk;
        *o = -z[km1] * (z[km2] - z[kp1]) - z[k] + f;
    }
}

/// How the closure term ψ of a training pair is differenced from the full model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PsiStep {
    /// The paper's eq. (61): `ψ = (z(t+Δt) − z(t))/Δt − G(z(t))` over one RK4 step `Δt`
    /// ([`TrainingConfig::dt`]). Equals the coupling term `−(hc/b)Σ_j y_{j,k}(t)` up to `O(Δt)`.
    Integrator,
    /// The same difference quotient over the closure model's own step `δt` (model time units):
    /// `ψ = (z(t+δt) − z(t))/δt − G(z(t))`, so that the Euler scheme (62) with step `δt` reproduces
    /// `z(t+δt)` exactly. `δt` must be a positive integer multiple of `Δt` (relative tolerance
    /// `10⁻⁹`).
    Over(f64),
}

/// Settings for generating training pairs `(z, ψ)` from the full two-scale model.
///
/// Times are in model time units. `Default`: 16 trajectories, spin-up 5, sampling interval
/// 0.025, 250 pairs per trajectory (4000 pairs), `dt = 5·10⁻⁴`, [`PsiStep::Integrator`], seed 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingConfig {
    /// Number of independent trajectories (each from its own random initial condition).
    pub trajectories: usize,
    /// Time integrated from the initial condition before the first pair is stored.
    pub spinup_time: f64,
    /// Time between consecutive stored pairs of one trajectory; an integer multiple of `dt`.
    pub sample_interval: f64,
    /// Number of pairs stored per trajectory.
    pub pairs_per_trajectory: usize,
    /// RK4 step `Δt` of the full model (the paper: `5·10⁻⁴`).
    pub dt: f64,
    /// Step over which ψ is differenced, see [`PsiStep`].
    pub psi_step: PsiStep,
    /// Seed of the initial conditions; trajectory `i` uses the `i`-th output of a splitmix64
    /// stream started at `seed`.
    pub seed: u64,
}

impl Default for TrainingConfig {
    /// 16 trajectories × 250 pairs every 0.025 time units after a spin-up of 5, `Δt = 5·10⁻⁴`.
    fn default() -> Self {
        TrainingConfig {
            trajectories: 16,
            spinup_time: 5.0,
            sample_interval: 0.025,
            pairs_per_trajectory: 250,
            dt: 5e-4,
            psi_step: PsiStep::Integrator,
            seed: 1,
        }
    }
}

/// Training pairs `(z, ψ)` of the closure problem, sample-major.
///
/// Rows are ordered trajectory by trajectory and, within a trajectory, in time (consecutive rows
/// of one trajectory are `sample_interval` apart), so each block of `pairs_per_trajectory` rows is
/// a time series usable for autocorrelations.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingSet {
    /// Number `K` of slow variables (row length of `z`, `psi` and `coupling`).
    pub k: usize,
    /// Number of trajectories the rows come from.
    pub trajectories: usize,
    /// Rows per trajectory (contiguous in time).
    pub pairs_per_trajectory: usize,
    /// Time between consecutive rows of one trajectory (model time units).
    pub sample_interval: f64,
    /// Slow states `z(t_i)`, `n × K` sample-major.
    pub z: Vec<f64>,
    /// Closure samples `ψ_i` per eq. (61) with the configured [`PsiStep`], `n × K`.
    pub psi: Vec<f64>,
    /// Exact instantaneous coupling `−(hc/b) Σ_j y_{j,k}(t_i)`, `n × K` (a diagnostic: what ψ
    /// estimates).
    pub coupling: Vec<f64>,
}

impl TrainingSet {
    /// Number `n` of pairs (rows).
    pub fn len(&self) -> usize {
        self.z.len().checked_div(self.k).unwrap_or(0)
    }

    /// `true` when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.z.is_empty()
    }

    /// The joint sample-major matrix `x = (z, ψ)`, `n × 2K`: row `i` is
    /// `z_{i,1..K}, ψ_{i,1..K}` — the layout the Schrödinger-bridge sampler is trained on.
    pub fn joint(&self) -> Vec<f64> {
        let k = self.k;
        let mut x = Vec::with_capacity(2 * self.z.len());
        for (zr, pr) in self.z.chunks_exact(k).zip(self.psi.chunks_exact(k)) {
            x.extend_from_slice(zr);
            x.extend_from_slice(pr);
        }
        x
    }

    /// The rows `(z, ψ)` of trajectory `t` (each `pairs_per_trajectory × K`), or `None` if
    /// `t ≥ trajectories`.
    pub fn trajectory(&self, t: usize) -> Option<(&[f64], &[f64])> {
        if t >= self.trajectories {
            return None;
        }
        let len = self.pairs_per_trajectory * self.k;
        let r = t * len..(t + 1) * len;
        Some((&self.z[r.clone()], &self.psi[r]))
    }
}

/// Converts a duration into a whole number of steps of length `dt` (relative tolerance `10⁻⁹`).
fn whole_steps(duration: f64, dt: f64, what: &str) -> Result<usize, String> {
    let r = duration / dt;
    let n = r.round();
    if !r.is_finite() || n < 0.0 || (r - n).abs() > 1e-9 * n.max(1.0) {
        return Err(format!(
            "{what} = {duration} is not a non-negative integer multiple of the RK4 step dt = {dt}"
        ));
    }
    if n > 1e15 {
        return Err(format!(
            "{what} = {duration} needs too many steps of dt = {dt}"
        ));
    }
    Ok(n as usize)
}

/// One trajectory's stored rows.
struct TrajectoryRows {
    z: Vec<f64>,
    psi: Vec<f64>,
    coupling: Vec<f64>,
}

/// Integration plan shared by all trajectories (all step counts in RK4 steps of `dt`).
#[derive(Clone, Copy)]
struct Plan {
    dt: f64,
    spinup_steps: usize,
    interval_steps: usize,
    samples: usize,
    /// `None`: store only `z`.
    psi_steps: Option<usize>,
}

fn simulate(p: &TwoScaleParams, plan: Plan, seed: u64) -> Result<TrajectoryRows, String> {
    let kk = p.k;
    let mut state = p.initial_state(seed);
    let mut work = TwoScaleWork::new(p);
    let mut rows = TrajectoryRows {
        z: Vec::with_capacity(plan.samples * kk),
        psi: Vec::new(),
        coupling: Vec::new(),
    };
    if plan.psi_steps.is_some() {
        rows.psi.reserve_exact(plan.samples * kk);
        rows.coupling.reserve_exact(plan.samples * kk);
    }
    for _ in 0..plan.spinup_steps {
        p.rk4_step(&mut state, plan.dt, &mut work);
    }
    let mut g = vec![0.0; kk];
    let mut cpl = vec![0.0; kk];
    let mut scratch = Vec::new();
    for sample in 0..plan.samples {
        if sample > 0 {
            for _ in 0..plan.interval_steps {
                p.rk4_step(&mut state, plan.dt, &mut work);
            }
        }
        if !state.iter().all(|v| v.is_finite()) {
            return Err(format!(
                "two-scale Lorenz-96 trajectory (seed {seed}) became non-finite; reduce dt"
            ));
        }
        let z0 = &state[..kk];
        rows.z.extend_from_slice(z0);
        if let Some(ps) = plan.psi_steps {
            resolved_tendency(z0, p.f, &mut g);
            p.coupling_term(&state, &mut cpl);
            rows.coupling.extend_from_slice(&cpl);
            // Look ahead on a copy so that the sampling grid does not depend on ψ's step.
            scratch.clear();
            scratch.extend_from_slice(&state);
            for _ in 0..ps {
                p.rk4_step(&mut scratch, plan.dt, &mut work);
            }
            let span = ps as f64 * plan.dt;
            for k in 0..kk {
                rows.psi.push((scratch[k] - state[k]) / span - g[k]);
            }
        }
    }
    Ok(rows)
}

/// Runs `seeds.len()` trajectories, in parallel on the available cores; the result is independent
/// of the number of threads.
fn simulate_many(
    p: &TwoScaleParams,
    plan: Plan,
    seeds: &[u64],
) -> Result<Vec<TrajectoryRows>, String> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(seeds.len())
        .max(1);
    if threads == 1 {
        return seeds.iter().map(|&s| simulate(p, plan, s)).collect();
    }
    let chunk = seeds.len().div_ceil(threads);
    let results: Vec<Vec<Result<TrajectoryRows, String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|&s| simulate(p, plan, s)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Err(String::from("a Lorenz-96 worker thread panicked"))]
                })
            })
            .collect()
    });
    results.into_iter().flatten().collect()
}

/// Generates training pairs `(z, ψ)` from the full two-scale model (59) integrated with RK4.
///
/// Each of `cfg.trajectories` trajectories starts from [`TwoScaleParams::initial_state`] with its
/// own seed, is integrated for `cfg.spinup_time`, and then stores `cfg.pairs_per_trajectory` rows
/// `cfg.sample_interval` apart. At each stored time `t`: `z = z(t)`,
/// `ψ = (z(t+s) − z(t))/s − G(z(t))` with `s = Δt` ([`PsiStep::Integrator`], eq. 61) or `s = δt`
/// ([`PsiStep::Over`]), computed on a copy of the state so the sampling grid is unaffected, and
/// `coupling = −(hc/b) Σ_j y_{j,k}(t)`. Trajectories run in parallel (threads); results do not
/// depend on the thread count.
///
/// Errors: invalid parameters, `dt ≤ 0`, zero trajectories or pairs, `sample_interval` or
/// `spinup_time` or `δt` not a (positive where applicable) integer multiple of `dt`, or a
/// trajectory becoming non-finite.
///
/// Cost: about `(spinup_time + pairs·sample_interval)/dt` RK4 steps per trajectory plus `s/dt`
/// per pair; with the defaults (4000 pairs) well under a few seconds in release mode.
pub fn training_pairs(p: &TwoScaleParams, cfg: &TrainingConfig) -> Result<TrainingSet, String> {
    p.validate()?;
    if !(cfg.dt.is_finite() && cfg.dt > 0.0) {
        return Err(format!(
            "RK4 step dt must be positive and finite, got {}",
            cfg.dt
        ));
    }
    if cfg.trajectories == 0 || cfg.pairs_per_trajectory == 0 {
        return Err(String::from(
            "need at least one trajectory and one pair per trajectory",
        ));
    }
    let spinup_steps = whole_steps(cfg.spinup_time, cfg.dt, "spinup_time")?;
    let interval_steps = whole_steps(cfg.sample_interval, cfg.dt, "sample_interval")?;
    if interval_steps == 0 && cfg.pairs_per_trajectory > 1 {
        return Err(String::from("sample_interval must be positive"));
    }
    let psi_steps = match cfg.psi_step {
        PsiStep::Integrator => 1,
        PsiStep::Over(delta) => {
            let n = whole_steps(delta, cfg.dt, "psi step δt")?;
            if n == 0 {
                return Err(format!("psi step δt = {delta} must be positive"));
            }
            n
        }
    };
    let plan = Plan {
        dt: cfg.dt,
        spinup_steps,
        interval_steps,
        samples: cfg.pairs_per_trajectory,
        psi_steps: Some(psi_steps),
    };
    let mut rng = SplitMix64::new(cfg.seed);
    let seeds: Vec<u64> = (0..cfg.trajectories).map(|_| rng.next_u64()).collect();
    let parts = simulate_many(p, plan, &seeds)?;
    let n = cfg.trajectories * cfg.pairs_per_trajectory * p.k;
    let mut set = TrainingSet {
        k: p.k,
        trajectories: cfg.trajectories,
        pairs_per_trajectory: cfg.pairs_per_trajectory,
        sample_interval: cfg.sample_interval,
        z: Vec::with_capacity(n),
        psi: Vec::with_capacity(n),
        coupling: Vec::with_capacity(n),
    };
    for part in parts {
        set.z.extend_from_slice(&part.z);
        set.psi.extend_from_slice(&part.psi);
        set.coupling.extend_from_slice(&part.coupling);
    }
    Ok(set)
}

/// Slow-variable time series of one long run of the full two-scale model, for climate statistics.
///
/// Starts from [`TwoScaleParams::initial_state`]`(seed)`, integrates `spinup_time` with RK4 step
/// `dt`, then records `samples` slow states `sample_interval` apart (the first at the end of the
/// spin-up). Returns `samples × K` values, sample-major (row = `z_1 .. z_K`). All times in model
/// time units; `spinup_time` and `sample_interval` must be integer multiples of `dt`.
///
/// Errors: invalid parameters, `dt ≤ 0`, times that are not integer multiples of `dt`, or a
/// trajectory becoming non-finite.
pub fn full_model_slow_series(
    p: &TwoScaleParams,
    dt: f64,
    spinup_time: f64,
    sample_interval: f64,
    samples: usize,
    seed: u64,
) -> Result<Vec<f64>, String> {
    p.validate()?;
    if !(dt.is_finite() && dt > 0.0) {
        return Err(format!("RK4 step dt must be positive and finite, got {dt}"));
    }
    let spinup_steps = whole_steps(spinup_time, dt, "spinup_time")?;
    let interval_steps = whole_steps(sample_interval, dt, "sample_interval")?;
    if interval_steps == 0 && samples > 1 {
        return Err(String::from("sample_interval must be positive"));
    }
    let plan = Plan {
        dt,
        spinup_steps,
        interval_steps,
        samples,
        psi_steps: None,
    };
    Ok(simulate(p, plan, seed)?.z)
}

/// One Euler step (62) of the closure model: `z ← z + (G(z) + ψ) δt`, with `G` the resolved
/// tendency (60) of forcing `f`.
///
/// `z`, `psi` and `work` have length `K` (`work` receives `G(z)`); `dt = δt` in model time units.
/// Allocation-free.
///
/// # Panics
/// If the lengths differ.
pub fn closure_step(z: &mut [f64], psi: &[f64], f: f64, dt: f64, work: &mut [f64]) {
    assert_eq!(psi.len(), z.len(), "psi length must equal K");
    resolved_tendency(z, f, work);
    for ((zk, gk), pk) in z.iter_mut().zip(work.iter()).zip(psi) {
        *zk += (gk + pk) * dt;
    }
}

/// Integrates the closure model (62), `z(m+1) = z(m) + (G(z(m)) + ψ(m)) δt`, for `steps` steps.
///
/// Before each step `closure(z, ψ)` is called with the current state (length `K`) and must write
/// `ψ(m)` (length `K`, initialised to zero before the first call and otherwise left as the
/// previous call wrote it). The state after step `m` is recorded whenever `m` is a multiple of
/// `record_every` (`m = record_every, 2·record_every, …`), so the result holds
/// `⌊steps / record_every⌋ × K` values, sample-major; the initial state is not recorded.
///
/// Errors: empty `z0`, non-finite `f` or `dt`, `record_every == 0`, a non-finite or
/// `|z_k| > `[`BLOWUP_THRESHOLD`] initial state, or a blow-up: if after step `m` any `z_k` is
/// non-finite or exceeds the threshold in magnitude, integration stops and the error message names
/// the step `m` and time `m·δt`.
pub fn run_closure_model<C: FnMut(&[f64], &mut [f64])>(
    z0: &[f64],
    f: f64,
    dt: f64,
    steps: usize,
    record_every: usize,
    mut closure: C,
) -> Result<Vec<f64>, String> {
    let kk = z0.len();
    if kk == 0 {
        return Err(String::from(
            "closure model needs a non-empty initial state",
        ));
    }
    if record_every == 0 {
        return Err(String::from("record_every must be at least 1"));
    }
    if !(f.is_finite() && dt.is_finite()) {
        return Err(String::from(
            "closure model forcing and step must be finite",
        ));
    }
    let bad = |z: &[f64]| {
        z.iter()
            .any(|v| !v.is_finite() || v.abs() > BLOWUP_THRESHOLD)
    };
    if bad(z0) {
        return Err(String::from(
            "closure model initial state is non-finite or beyond the blow-up threshold",
        ));
    }
    let mut z = z0.to_vec();
    let mut psi = vec![0.0; kk];
    let mut work = vec![0.0; kk];
    let mut out = Vec::with_capacity((steps / record_every) * kk);
    for m in 1..=steps {
        closure(&z, &mut psi);
        closure_step(&mut z, &psi, f, dt, &mut work);
        if bad(&z) {
            let worst =
                z.iter()
                    .map(|v| v.abs())
                    .fold(0.0_f64, |a, b| if b.is_nan() { b } else { a.max(b) });
            return Err(format!(
                "closure model blew up at step {m} (t = {t:.6}): max |z| = {worst:e} \
                 (threshold {BLOWUP_THRESHOLD:e} or non-finite)",
                t = m as f64 * dt
            ));
        }
        if m % record_every == 0 {
            out.extend_from_slice(&z);
        }
    }
    Ok(out)
}

/// Deterministic cubic closure `ψ_k ≈ a_0 + a_1 z_k + a_2 z_k² + a_3 z_k³` (Wilks 2005, Arnold et
/// al. 2013), the same polynomial for every `k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CubicClosure {
    /// Coefficients `[a_0, a_1, a_2, a_3]`; `a_i` has units of ψ per (unit of z)^i.
    pub coef: [f64; 4],
}

impl CubicClosure {
    /// Least-squares fit of `ψ_k` on `(1, z_k, z_k², z_k³)`, pooled over all rows and all `k`.
    ///
    /// `z` and `psi` are paired element-wise (any layout, e.g. `n × K`). Minimises
    /// `Σ (ψ − a_0 − a_1 z − a_2 z² − a_3 z³)²` through the 4×4 normal equations, formed in the
    /// scaled variable `z / max|z|` for conditioning and solved by Cholesky with a pivot check.
    ///
    /// Errors: different lengths, fewer than 4 values, non-finite input, or a (numerically)
    /// singular system, e.g. fewer than four distinct `z` values.
    pub fn fit(z: &[f64], psi: &[f64]) -> Result<Self, String> {
        if z.len() != psi.len() {
            return Err(format!(
                "cubic fit: z has {} values but psi has {}",
                z.len(),
                psi.len()
            ));
        }
        if z.len() < 4 {
            return Err(String::from("cubic fit needs at least 4 values"));
        }
        if !z.iter().chain(psi).all(|v| v.is_finite()) {
            return Err(String::from("cubic fit: non-finite input"));
        }
        let scale = z.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
        if scale == 0.0 {
            return Err(String::from("cubic fit: all z are zero (singular system)"));
        }
        let mut a = [[0.0_f64; 4]; 4];
        let mut rhs = [0.0_f64; 4];
        for (&zv, &pv) in z.iter().zip(psi) {
            let x = zv / scale;
            let basis = [1.0, x, x * x, x * x * x];
            for ((row, r), br) in a.iter_mut().zip(rhs.iter_mut()).zip(basis) {
                *r += br * pv;
                for (e, bc) in row.iter_mut().zip(basis) {
                    *e += br * bc;
                }
            }
        }
        let sol = cholesky_solve4(a, rhs).ok_or_else(|| {
            String::from("cubic fit: normal equations are singular (too few distinct z values?)")
        })?;
        // Undo the scaling x = z/scale: a_i = sol_i / scale^i.
        let mut coef = [0.0; 4];
        let mut s = 1.0;
        for (c, v) in coef.iter_mut().zip(sol) {
            *c = v / s;
            s *= scale;
        }
        Ok(CubicClosure { coef })
    }

    /// `ψ(z_k) = a_0 + a_1 z_k + a_2 z_k² + a_3 z_k³` (Horner).
    pub fn eval(&self, z_k: f64) -> f64 {
        let [a0, a1, a2, a3] = self.coef;
        a0 + z_k * (a1 + z_k * (a2 + z_k * a3))
    }

    /// Applies [`eval`](Self::eval) element-wise: `psi[i] = ψ(z[i])`.
    ///
    /// # Panics
    /// If the lengths differ.
    pub fn eval_into(&self, z: &[f64], psi: &mut [f64]) {
        assert_eq!(z.len(), psi.len(), "z and psi lengths differ");
        for (p, &zv) in psi.iter_mut().zip(z) {
            *p = self.eval(zv);
        }
    }

    /// Residuals `r = ψ − ψ_cubic(z)`, element-wise.
    pub fn residuals(&self, z: &[f64], psi: &[f64]) -> Vec<f64> {
        z.iter()
            .zip(psi)
            .map(|(&zv, &pv)| pv - self.eval(zv))
            .collect()
    }
}

/// Solves the symmetric positive definite 4×4 system `A x = b` by Cholesky; `None` if a pivot is
/// not positive relative to the diagonal (numerically singular) or anything is non-finite.
fn cholesky_solve4(a: [[f64; 4]; 4], b: [f64; 4]) -> Option<[f64; 4]> {
    let mut l = [[0.0_f64; 4]; 4];
    for i in 0..4 {
        for j in 0..=i {
            let s = a[i][j] - (0..j).map(|m| l[i][m] * l[j][m]).sum::<f64>();
            if i == j {
                if !(s.is_finite() && s > 1e-12 * a[i][i]) || a[i][i] <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut y = [0.0_f64; 4];
    for i in 0..4 {
        let s = b[i] - (0..i).map(|m| l[i][m] * y[m]).sum::<f64>();
        y[i] = s / l[i][i];
    }
    let mut x = [0.0_f64; 4];
    for i in (0..4).rev() {
        let s = y[i] - (i + 1..4).map(|m| l[m][i] * x[m]).sum::<f64>();
        x[i] = s / l[i][i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// AR(1) noise `e_k ← φ e_k + σ ξ_k` (`ξ_k` standard normal), independent for each `k`, as the
/// stochastic part of the Arnold et al. (2013) closure `ψ_k = cubic(z_k) + e_k`.
///
/// Units: `φ` is the lag-one autocorrelation **per step of the series it was fitted on** (for
/// [`fit`](Self::fit): per training sampling interval `τ`), and `σ` (units of ψ) is the innovation
/// standard deviation for that step, so the stationary standard deviation is `σ/√(1−φ²)`. Use
/// [`rescaled`](Self::rescaled) with `ratio = δt/τ` before stepping with a different step `δt`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ar1Noise {
    /// Lag-one autocorrelation per step, `|φ| < 1`.
    pub phi: f64,
    /// Innovation standard deviation per step, `σ = std(r)·√(1−φ²)` (units of ψ).
    pub sigma: f64,
}

impl Ar1Noise {
    /// Fits AR(1) parameters to the residuals `r = ψ − cubic(z)` of `cubic`, pooled over `k`.
    ///
    /// `z` and `psi` are `n × k` sample-major time series made of consecutive segments of
    /// `segment_len` rows (e.g. [`TrainingSet::pairs_per_trajectory`]; lag pairs never cross a
    /// segment). With `m` the pooled mean of `r`:
    /// `φ = [mean over lag pairs of (r_t − m)(r_{t+1} − m)] / [mean over all of (r_t − m)²]`,
    /// `σ = std(r)·√(1−φ²)` with the population `std(r)`. `φ` is per row spacing (sampling
    /// interval).
    ///
    /// Errors: inconsistent sizes, no lag pairs, zero residual variance, non-finite values or
    /// `|φ| ≥ 1`.
    pub fn fit(
        cubic: &CubicClosure,
        z: &[f64],
        psi: &[f64],
        k: usize,
        segment_len: usize,
    ) -> Result<Self, String> {
        if k == 0 || segment_len == 0 {
            return Err(String::from(
                "AR(1) fit: k and segment_len must be positive",
            ));
        }
        let whole = k
            .checked_mul(segment_len)
            .is_some_and(|rows| z.len().is_multiple_of(rows));
        if z.len() != psi.len() || !whole {
            return Err(format!(
                "AR(1) fit: z ({}) and psi ({}) must both hold whole segments \
                 of {segment_len} rows of {k}",
                z.len(),
                psi.len()
            ));
        }
        let r = cubic.residuals(z, psi);
        if r.is_empty() || !r.iter().all(|v| v.is_finite()) {
            return Err(String::from("AR(1) fit: empty or non-finite residuals"));
        }
        let m = r.iter().sum::<f64>() / r.len() as f64;
        let c0 = r.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / r.len() as f64;
        let mut c1 = 0.0;
        let mut pairs = 0usize;
        for seg in r.chunks_exact(k * segment_len) {
            for (a, b) in seg.iter().zip(&seg[k..]) {
                c1 += (a - m) * (b - m);
                pairs += 1;
            }
        }
        if pairs == 0 {
            return Err(String::from("AR(1) fit: segments need at least two rows"));
        }
        if c0 <= 0.0 {
            return Err(String::from("AR(1) fit: residuals have zero variance"));
        }
        let phi = (c1 / pairs as f64) / c0;
        if !(phi.is_finite() && phi.abs() < 1.0) {
            return Err(format!("AR(1) fit: |phi| = {phi} is not below one"));
        }
        Ok(Ar1Noise {
            phi,
            sigma: c0.sqrt() * (1.0 - phi * phi).sqrt(),
        })
    }

    /// Stationary standard deviation `σ/√(1−φ²)` of the process (units of ψ).
    pub fn stationary_std(&self) -> f64 {
        self.sigma / (1.0 - self.phi * self.phi).sqrt()
    }

    /// The same stationary process sampled with a step `ratio` times the fitted one
    /// (`ratio = δt/τ`): `φ' = φ^ratio`, `σ' = σ_stat·√(1−φ'²)`, keeping the stationary standard
    /// deviation `σ_stat` and the autocorrelation time `−τ/ln φ`.
    ///
    /// Errors: `ratio` not positive and finite, or `φ < 0` with non-integer `ratio` (no real
    /// power); `φ = 0` gives white noise at any step.
    pub fn rescaled(&self, ratio: f64) -> Result<Self, String> {
        if !(ratio.is_finite() && ratio > 0.0) {
            return Err(format!(
                "AR(1) rescale: ratio must be positive and finite, got {ratio}"
            ));
        }
        if self.phi < 0.0 && ratio.fract() != 0.0 {
            return Err(format!(
                "AR(1) rescale: phi = {} < 0 has no real power {ratio}",
                self.phi
            ));
        }
        let phi = self.phi.powf(ratio);
        let s = self.stationary_std();
        Ok(Ar1Noise {
            phi,
            sigma: s * (1.0 - phi * phi).sqrt(),
        })
    }

    /// Advances the per-`k` noise state: `state_k ← φ·state_k + σ·normals_k`.
    ///
    /// `normals` are independent standard normal deviates supplied by the caller (same length
    /// as `state`). Start from `state_k = stationary_std()·ξ_k` for a stationary series.
    ///
    /// # Panics
    /// If the lengths differ.
    pub fn step(&self, state: &mut [f64], normals: &[f64]) {
        assert_eq!(
            state.len(),
            normals.len(),
            "state and normals lengths differ"
        );
        for (e, &xi) in state.iter_mut().zip(normals) {
            *e = self.phi * *e + self.sigma * xi;
        }
    }
}

/// splitmix64 (Steele, Lea & Flood 2014): tiny, deterministic, used only for initial conditions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// Uniform on `[0, 1)` with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
