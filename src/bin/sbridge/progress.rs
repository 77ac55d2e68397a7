//! Progress display on stderr (drawn only when stderr is a terminal, never with `--quiet`).

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A bar of `len` units labelled `msg`.
pub fn bar(len: u64, msg: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{msg:<28} [{bar:30}] {percent:>3}%  {elapsed_precise} elapsed, ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let pb = ProgressBar::new(len).with_style(style);
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// A spinner with elapsed time for a phase without a known length.
pub fn spinner(msg: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{spinner} {msg}  {elapsed_precise}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let pb = ProgressBar::new_spinner().with_style(style);
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}
