//! Command-line arguments (clap derive). Values are checked here as far as they can be on their
//! own (positive `ε`, `β ≤ 0`, counts ≥ 1, well-formed layout specs), so that an impossible
//! parameter is a one-line usage error naming the flag.

use crate::layout_spec::LayoutSpec;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Schrödinger-bridge samplers: fit a model from samples, draw (conditional) samples, inspect a
/// model image, or run the stochastic-closure demo on the two-scale Lorenz-96 model.
#[derive(Parser, Debug)]
#[command(name = "sbridge", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success, 2 usage error or bad input, 1 internal failure.\n\
                  Start with `sbridge demo lorenz96` to see a learned stochastic closure at work."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fit a model (Sinkhorn weights for every head) from samples and write its image file.
    Fit(FitArgs),
    /// Draw samples, or conditional samples, from a model image.
    Sample(SampleArgs),
    /// Print what a model image holds and check it.
    Inspect(InspectArgs),
    /// Demonstrations.
    #[command(subcommand)]
    Demo(DemoCommand),
}

/// `sbridge fit`.
#[derive(Args, Debug)]
#[command(
    after_help = "DATA: CSV without header, comma-separated, one sample per row; or NumPy \
    .npy, 2-D (samples × dimensions), little-endian float64 ('<f8') or float32 ('<f4'), C order.\n\
    LAYOUT:\n  single              one head sees and writes every coordinate (the plain bridge)\n  \
    stencil:R           ring of d points, head a sees a-R..a+R (periodic) and writes a\n  \
    closure:K,BLOCKS,R  state of BLOCKS blocks of K, heads for the last block, each seeing\n                      \
    k-R..k+R of every block (paper 000 §5.1: closure:K,2,1)\n  \
    temporal:S          Markov blocks of a process of S components at d/S times\n  \
    heads:FILE          explicit heads, one per line: `TARGETS : NEIGHBOURHOOD`, coordinates\n                      \
    separated by commas or spaces (0-based), `#` starts a comment"
)]
pub struct FitArgs {
    /// Training samples (.csv or .npy).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Bandwidth / step size ε > 0.
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    pub eps: f64,
    /// Variable-bandwidth exponent β ≤ 0 (omit for a fixed bandwidth).
    #[arg(long, value_parser = nonpositive_f64, allow_negative_numbers = true)]
    pub beta: Option<f64>,
    /// Per-coordinate scales of the metric: `none`, `std` (each column's standard deviation) or a
    /// FILE (.csv/.npy) with d positive values.
    #[arg(long, default_value = "none", value_name = "none|std|FILE")]
    pub scales: String,
    /// Heads of the model (see LAYOUT below).
    #[arg(long, default_value = "single", value_parser = LayoutSpec::parse)]
    pub layout: LayoutSpec,
    /// Store the model in single precision (f32) instead of f64.
    #[arg(long)]
    pub f32: bool,
    /// Sinkhorn tolerance on max_i |v_i (T v)_i − 1| (default 1e-12 for f64, 2e-5 for f32).
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    pub tol: Option<f64>,
    /// Cap on Sinkhorn iterations per head.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_iter: u32,
    /// Truncated Sinkhorn: bound τ in [0, 1) on the kernel mass each row may leave out (0: every
    /// entry computed). Skips only what provably lies below it; pays off at small ε with
    /// --spatial-order. The summary prints the bound met.
    #[arg(long, default_value_t = 0.0, value_parser = unit_interval_f64, allow_negative_numbers = true)]
    pub truncation: f64,
    /// Reorder the samples into tiles of nearby points (k-d cells of 256) before fitting, so that
    /// --truncation can skip distant tiles; the image then holds the samples in that order.
    #[arg(long)]
    pub spatial_order: bool,
    /// Write the model even when a head's Sinkhorn run misses the tolerance (exit code 0).
    #[arg(long)]
    pub allow_unconverged: bool,
    /// Threads fitting heads in parallel (default: all cores); the model bytes do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub threads: Option<u64>,
    /// Suppress the progress display and the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Model image file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Step scheme of `sbridge sample`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemeArg {
    /// Isotropic noise: the localized sweep, or 001 eq. 20 for a single-head model.
    Isotropic,
    /// Data-aware covariance noise (001 eq. 21); single-head models only.
    Covariance,
}

/// Noise draws of the localized sweep.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseArg {
    /// One draw per sweep shared by all heads (000 eqs. 14a, 42).
    Global,
    /// Each head draws its own noise (Algorithm 1 as printed).
    PerHead,
}

/// Which state of the last step `sbridge sample` writes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteArg {
    /// The projected state X' = m(X½): inside the convex hull of the data.
    Projected,
    /// The noisy half-step X½ (what the papers' figures plot); clamped coordinates are written
    /// at their conditioning values.
    Half,
}

/// `sbridge sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Model image file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Number of samples (independent chains).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub n: u64,
    /// Steps (localized sweeps) per chain.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Step scheme.
    #[arg(long, value_enum, default_value_t = SchemeArg::Isotropic)]
    pub scheme: SchemeArg,
    /// Noise draws of the localized sweep.
    #[arg(long, value_enum, default_value_t = NoiseArg::Global)]
    pub noise: NoiseArg,
    /// Conditional sampling: clamp coordinates to values, e.g. `0=1.5,3=-0.2` (0-based).
    #[arg(long, value_name = "c=v,c=v", allow_hyphen_values = true)]
    pub condition: Option<String>,
    /// Which state of the last step to write (each row is the full state, d values).
    #[arg(long, value_enum, default_value_t = WriteArg::Projected)]
    pub write: WriteArg,
    /// Seed; chain i uses the random stream (seed, i), so results do not depend on --threads.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub threads: Option<u64>,
    /// Output file (.npy for NumPy float64, anything else CSV).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `sbridge inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Model image file.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
}

/// `sbridge demo ...`.
#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// Learn a stochastic closure from a two-scale Lorenz-96 run, drive the one-scale model with
    /// it and compare its climate with the full model and with cubic / cubic+AR(1) closures.
    Lorenz96(DemoArgs),
}

/// How ψ of a training pair is differenced.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsiStepArg {
    /// Over the closure model's own step δt: ψ = (z(t+δt) − z(t))/δt − G(z(t)).
    Closure,
    /// Over one RK4 step Δt of the full model (the paper's eq. 61).
    Integrator,
}

/// `sbridge demo lorenz96`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Outputs: DIR/table.txt (also printed), DIR/figure.svg (pdf of z, \
    autocorrelations, covariance rows) and DIR/metrics.json.\n\
    Defaults (M = 4000, eps = 0.1, n_c = 10, 16 x 1500 closure steps) take a few minutes on two \
    cores; --quick takes well under a minute. --paper uses the paper's settings (M = 40 000, \
    eps = 0.1, n_c = 100, 40 000 closure steps) and takes hours: the fit alone solves 12 Sinkhorn \
    problems of size M^2 one after another. Explicit flags override the --quick/--paper presets."
)]
pub struct DemoArgs {
    /// Small settings for a quick check (about half a minute).
    #[arg(long, conflicts_with = "paper")]
    pub quick: bool,
    /// The paper's settings: M = 40 000, ε = 0.1, n_c = 100, 40 000 closure steps.
    #[arg(long)]
    pub paper: bool,
    /// Training pairs M (a multiple of --train-trajectories).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub m: Option<u64>,
    /// Bridge bandwidth ε > 0 (in units of the climatological standard deviations).
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// Sweeps n_c of the localized sampler per closure call.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub nc: Option<u64>,
    /// Closure-model time steps δt in total, split evenly over --trajectories (after a discarded
    /// transient of one time unit per trajectory).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub steps: Option<u64>,
    /// Independent closure-model trajectories (also the number of full-model runs compared).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub trajectories: Option<u64>,
    /// Two-scale trajectories the training pairs come from.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub train_trajectories: Option<u64>,
    /// Condition ψ_n also on ψ_{n−1}: state (z, ψ_prev, ψ), the way AR(1) closures add memory.
    #[arg(long)]
    pub memory: bool,
    /// How ψ of the training pairs is differenced.
    #[arg(long, value_enum, default_value_t = PsiStepArg::Closure)]
    pub psi_step: PsiStepArg,
    /// Sinkhorn tolerance of the fit, max_i |v_i (T v)_i − 1| (1e-9 needs about 10 iterations
    /// fewer than the library's f64 default 1e-12 and changes the weights by ~1e-9).
    #[arg(long, default_value_t = 1e-9, value_parser = positive_f64, allow_negative_numbers = true)]
    pub tol: f64,
    /// Localization radius r: the head of ψ_k sees k−r..k+r of every block.
    #[arg(long, default_value_t = 1)]
    pub radius: usize,
    /// Seed of the initial conditions and of every random stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads for the model runs (default: all cores); results do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub threads: Option<u64>,
    /// Output directory for table.txt, figure.svg and metrics.json.
    #[arg(long, default_value = "sbridge-demo", value_name = "DIR")]
    pub out: PathBuf,
    /// No progress bars (the table is still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

/// A finite number > 0.
pub fn positive_f64(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be finite and > 0, got {s}"))
    }
}

/// A number in `[0, 1)`.
pub fn unit_interval_f64(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be >= 0 and < 1, got {s}"))
    }
}

/// A finite number ≤ 0.
pub fn nonpositive_f64(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v.is_finite() && v <= 0.0 {
        Ok(v)
    } else {
        Err(format!("must be finite and <= 0, got {s}"))
    }
}

/// Worker threads: the flag, or all cores.
pub fn threads(flag: Option<u64>) -> usize {
    match flag {
        Some(n) => n as usize,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    }
}
