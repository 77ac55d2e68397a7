//! Timing helpers shared by the benchmarks.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::time::Instant;

/// Minimum duration of one repetition, seconds.
pub const MIN_REP_SECONDS: f64 = 0.2;

/// Seconds per call of one measurement: median and range over the repetitions.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub median: f64,
    /// Median on-CPU time of this thread per call (Linux `schedstat`): what the wall time would
    /// be on an idle machine, near enough; `None` where unavailable.
    pub cpu: Option<f64>,
    pub min: f64,
    pub max: f64,
    pub reps: usize,
    pub calls_per_rep: usize,
}

/// Times `f`: one warm-up call (also the calibration), then `reps` repetitions of
/// `calls_per_rep` calls each, `calls_per_rep` chosen so that a repetition takes ≥ 0.2 s. When
/// the warm-up call itself takes ≥ 1 s (Sinkhorn at M = 4000), cold-cache effects are below the
/// noise and it counts as the first repetition, which keeps the whole run near three minutes.
pub fn measure(reps: usize, mut f: impl FnMut()) -> Stat {
    let t = Instant::now();
    let c = thread_cpu_seconds();
    f();
    let mut first = t.elapsed().as_secs_f64();
    let mut per_call = Vec::with_capacity(reps);
    let mut cpu = Vec::with_capacity(reps);
    if first >= 1.0 {
        per_call.push(first);
        cpu.push(c.zip(thread_cpu_seconds()).map(|(a, b)| b - a));
    }
    // A second calibration for very short calls, where one call is mostly timer noise.
    if first < 1e-4 {
        let n = 1000usize;
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        first = t.elapsed().as_secs_f64() / n as f64;
    }
    let calls = if first < MIN_REP_SECONDS {
        (MIN_REP_SECONDS / first.max(1e-9)).ceil() as usize
    } else {
        1
    };
    while per_call.len() < reps {
        let t = Instant::now();
        let c = thread_cpu_seconds();
        for _ in 0..calls {
            f();
        }
        per_call.push(t.elapsed().as_secs_f64() / calls as f64);
        cpu.push(
            c.zip(thread_cpu_seconds())
                .map(|(a, b)| (b - a) / calls as f64),
        );
    }
    per_call.sort_by(f64::total_cmp);
    let mut cpu: Option<Vec<f64>> = cpu.into_iter().collect();
    let cpu = cpu.as_mut().map(|v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    });
    Stat {
        median: per_call[per_call.len() / 2],
        cpu,
        min: per_call[0],
        max: per_call[per_call.len() - 1],
        reps,
        calls_per_rep: calls,
    }
}

/// On-CPU time of the calling thread in seconds (Linux `/proc/thread-self/schedstat`, ns
/// resolution); excludes the time the thread waited for a CPU on a shared machine.
pub fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? * 1e-9)
}

/// The 1-minute load average (Linux), to judge how shared the machine was.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A JSON object built field by field, printed as one `JSON {...}` line.
pub struct Json(pub String);

impl Json {
    pub fn new(what: &str) -> Self {
        let mut j = Json(String::from("{"));
        j.s("what", what);
        j
    }
    fn sep(&mut self) {
        if self.0.len() > 1 {
            self.0.push_str(", ");
        }
    }
    pub fn s(&mut self, k: &str, v: &str) -> &mut Self {
        self.sep();
        let _ = write!(self.0, "\"{k}\": \"{}\"", v.replace('"', "'"));
        self
    }
    pub fn n(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        self.sep();
        match v {
            Some(x) if x.is_finite() => {
                let _ = write!(self.0, "\"{k}\": {x:.6e}");
            }
            _ => {
                let _ = write!(self.0, "\"{k}\": null");
            }
        }
        self
    }
    pub fn u(&mut self, k: &str, v: usize) -> &mut Self {
        self.sep();
        let _ = write!(self.0, "\"{k}\": {v}");
        self
    }
    pub fn b(&mut self, k: &str, v: bool) -> &mut Self {
        self.sep();
        let _ = write!(self.0, "\"{k}\": {v}");
        self
    }
    pub fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.sep();
        let _ = write!(self.0, "\"{k}\": {v}");
        self
    }
    pub fn stat(&mut self, st: &Stat) -> &mut Self {
        self.n("seconds", Some(st.median))
            .n("cpu_seconds", st.cpu)
            .n("seconds_min", Some(st.min))
            .n("seconds_max", Some(st.max))
            .u("reps", st.reps)
            .u("calls_per_rep", st.calls_per_rep)
    }
    pub fn emit(&mut self, json_lines: &mut Vec<String>) {
        self.0.push('}');
        json_lines.push(format!("JSON {}", self.0));
    }
}

/// The machine's own limit for the fused kernel, measured in the build the kernel runs in (the
/// same run-time choice of AVX-512 / AVX2 / baseline code as `sbridge::fused`).
#[derive(Clone, Copy, Debug)]
pub struct Roofline {
    /// Independent multiply-then-add lane operations per ns (plain `a * b + c`, not fused: the
    /// arithmetic the kernel is restricted to), median of 5 runs.
    pub lane_ops_per_ns: f64,
    /// ns per `exp_poly` evaluation over a long array in blocks of 2 × 16 lanes (as the fused
    /// pass evaluates it), median of 5 runs.
    pub exp_ns: f64,
}

/// Lane operations of one kernel evaluation besides the exponential, for `d` coordinates and
/// `targets` weighted sums: per coordinate a difference, a square and an add (and a scale with
/// per-coordinate scales), 2 for the logit (`s κ`, `g −`), 1 for the shift, 1 for the sum, 2 per
/// target (multiply, add).
pub fn kernel_ops_besides_exp(d: usize, scaled: bool, targets: usize) -> f64 {
    (d * (3 + scaled as usize) + 4 + 2 * targets) as f64
}

impl Roofline {
    /// ns per kernel evaluation at the limit: the other lane operations at the peak rate, plus
    /// one exponential at its measured throughput.
    pub fn ns_per_eval(&self, d: usize, scaled: bool, targets: usize) -> f64 {
        kernel_ops_besides_exp(d, scaled, targets) / self.lane_ops_per_ns + self.exp_ns
    }
}

#[cfg_attr(
    target_arch = "x86_64",
    multiversion::multiversion(targets(
        "x86_64+avx512f+avx512vl+avx512dq+avx512bw+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt",
        "x86_64+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt"
    ))
)]
fn mul_add_chains<T: sbridge::Real, const W: usize>(reps: usize) -> T {
    let mut acc = [T::ONE; W];
    let b = std::hint::black_box(T::from_f64(0.999_999));
    let c = std::hint::black_box(T::from_f64(1e-7));
    for _ in 0..reps {
        for a in acc.iter_mut() {
            *a = *a * b + c;
        }
    }
    acc.iter().fold(T::ZERO, |s, &v| s + v)
}

#[cfg_attr(
    target_arch = "x86_64",
    multiversion::multiversion(targets(
        "x86_64+avx512f+avx512vl+avx512dq+avx512bw+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt",
        "x86_64+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt"
    ))
)]
fn exp_array<T: sbridge::Real>(xs: &[T], out: &mut [T]) {
    // Blocks of 2 × 16 lanes, as the fused pass evaluates them.
    for (o, x) in out.chunks_exact_mut(32).zip(xs.chunks_exact(32)) {
        let mut b = [[T::ZERO; 16]; 2];
        b[0].copy_from_slice(&x[..16]);
        b[1].copy_from_slice(&x[16..]);
        let e = T::exp_poly_block(&b);
        o[..16].copy_from_slice(&e[0]);
        o[16..].copy_from_slice(&e[1]);
    }
}

/// Measures the [`Roofline`] for `T` (about half a second).
pub fn roofline<T: sbridge::Real>() -> Roofline {
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    // Enough independent chains to cover the latency of a multiply and an add on 512-bit lanes.
    let four_byte = core::mem::size_of::<T>() == 4;
    let (w, reps) = (if four_byte { 256 } else { 128 }, 200_000usize);
    let peak = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let r = if four_byte {
                    mul_add_chains::<T, 256>(reps)
                } else {
                    mul_add_chains::<T, 128>(reps)
                };
                std::hint::black_box(r);
                (2 * w * reps) as f64 / (t.elapsed().as_secs_f64() * 1e9)
            })
            .collect(),
    );
    let n = 4096;
    let xs: Vec<T> = (0..n)
        .map(|i| T::from_f64(-30.0 * i as f64 / n as f64))
        .collect();
    let mut out = vec![T::ZERO; n];
    let exp_ns = median(
        (0..5)
            .map(|_| {
                let reps = 2000;
                let t = Instant::now();
                for _ in 0..reps {
                    exp_array(std::hint::black_box(&xs), &mut out);
                    std::hint::black_box(&mut out);
                }
                t.elapsed().as_secs_f64() * 1e9 / (reps * n) as f64
            })
            .collect(),
    );
    Roofline {
        lane_ops_per_ns: peak,
        exp_ns,
    }
}
