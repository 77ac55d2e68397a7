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
