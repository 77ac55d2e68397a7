//! The host side of the firmware demo: fits the closure model the firmware embeds and returns its
//! image bytes. `build.rs` writes them where `include_model!` finds them; `tests/firmware.rs`
//! compiles this same file to check that the host's image is the one the firmware ran.
//!
//! The model: two-scale Lorenz-96 with `K = 8` slow and `J = 8` fast variables per slow one
//! (`F = 20`, `b = c = 10`, `h = 1`), 4 trajectories of 128 pairs `(z, ψ)` sampled every 0.025
//! time units (`M = 512`), `ψ` differenced over the closure step `δt = 0.005`; the localized
//! closure layout of paper 000 §5.1 (head `k` sees `z` and `ψ` at `k−1, k, k+1`), scales = the
//! columns' standard deviations, `ε = 0.1`, fitted in f32.

use crate::demo::{CLOSURE_D, CLOSURE_K, CLOSURE_M};
use sbridge::layout::{closure_layout, closure_layout_sizes, LayoutStorage};
use sbridge::lorenz96::{training_pairs, PsiStep, TrainingConfig, TwoScaleParams};
use sbridge::{image_len, write_model, write_workspace_len, FitConfig};

/// `ε` of the closure model.
pub const CLOSURE_EPS: f32 = 0.1;

/// The closure model's image bytes (deterministic: the same bytes on every run and machine of
/// the same build).
pub fn closure_image() -> Vec<u8> {
    let p = TwoScaleParams {
        k: CLOSURE_K,
        j: 8,
        ..TwoScaleParams::default()
    };
    let cfg = TrainingConfig {
        trajectories: 4,
        pairs_per_trajectory: CLOSURE_M / 4,
        psi_step: PsiStep::Over(0.005),
        seed: 7,
        ..TrainingConfig::default()
    };
    let training = training_pairs(&p, &cfg).expect("Lorenz-96 training pairs");
    let joint: Vec<f32> = training.joint().iter().map(|&v| v as f32).collect();
    assert_eq!(joint.len(), CLOSURE_M * CLOSURE_D);
    let scales: Vec<f32> = (0..CLOSURE_D)
        .map(|c| {
            let col: Vec<f64> = joint
                .iter()
                .skip(c)
                .step_by(CLOSURE_D)
                .map(|&v| v as f64)
                .collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let var =
                col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (col.len() - 1) as f64;
            var.sqrt() as f32
        })
        .collect();

    let sizes = closure_layout_sizes(CLOSURE_K, 2, 1);
    let (mut nb_off, mut nb) = (vec![0u32; sizes.heads + 1], vec![0u32; sizes.nb]);
    let (mut tg_off, mut tg) = (vec![0u32; sizes.heads + 1], vec![0u32; sizes.tg]);
    let storage = LayoutStorage {
        nb_offsets: &mut nb_off,
        nb_coords: &mut nb,
        tg_offsets: &mut tg_off,
        tg_coords: &mut tg,
    };
    let layout = closure_layout(CLOSURE_K, 2, 1, storage).expect("closure layout");

    let len = image_len::<f32>(&layout, CLOSURE_M, false, true);
    // A 16-byte-aligned window of a byte vector, as write_model requires.
    let mut raw = vec![0u8; len + 16];
    let at = raw.as_ptr().align_offset(16);
    let mut work = vec![0.0f32; write_workspace_len(CLOSURE_M)];
    let (_, report) = write_model(
        &mut raw[at..at + len],
        &joint,
        CLOSURE_D,
        Some(&scales),
        &layout,
        &FitConfig::new(CLOSURE_EPS),
        &mut work,
    )
    .expect("fitting the closure model");
    assert_eq!(report.image_len, len);
    raw[at..at + len].to_vec()
}
