//! Tests of the two-scale Lorenz-96 model, its training data and the baseline closures.
//!
//! Expected values are computed by hand or by independent code in this file, never copied from
//! the output of the code under test.
#![cfg(feature = "std")]

use sbridge::lorenz96::{
    closure_step, full_model_slow_series, resolved_tendency, run_closure_model, training_pairs,
    Ar1Noise, CubicClosure, PsiStep, TrainingConfig, TwoScaleParams, TwoScaleWork,
};
use std::time::Instant;

/// Test-local splitmix64 with uniform and Box–Muller normal deviates.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn pop_std(x: &[f64]) -> f64 {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Independent, deliberately naive implementation of (59a/b) with explicit index maps for the
/// paper's boundary conditions z_{k+K} = z_k, y_{j+J,k} = y_{j,k+1}.
fn naive_tendency(p: &TwoScaleParams, s: &[f64]) -> Vec<f64> {
    let (kk, jj) = (p.k as i64, p.j as i64);
    let z = |k: i64| s[k.rem_euclid(kk) as usize];
    // y(j, k) with j possibly outside 0..J: carry into the neighbouring sector.
    let y = |j: i64, k: i64| {
        let kk2 = (k + j.div_euclid(jj)).rem_euclid(kk);
        let j2 = j.rem_euclid(jj);
        s[(kk + kk2 * jj + j2) as usize]
    };
    let hcb = p.h * p.c / p.b;
    let mut out = vec![0.0; s.len()];
    for k in 0..kk {
        let sum: f64 = (0..jj).map(|j| y(j, k)).sum();
        out[k as usize] = -z(k - 1) * (z(k - 2) - z(k + 1)) - z(k) + p.f - hcb * sum;
        for j in 0..jj {
            out[(kk + k * jj + j) as usize] =
                -p.c * p.b * y(j + 1, k) * (y(j + 2, k) - y(j - 1, k)) - p.c * y(j, k) + hcb * z(k);
        }
    }
    out
}

fn random_state(p: &TwoScaleParams, rng: &mut Rng) -> Vec<f64> {
    let mut s: Vec<f64> = (0..p.dim()).map(|_| rng.normal()).collect();
    for zk in &mut s[..p.k] {
        *zk *= 5.0;
    }
    s
}

#[test]
fn resolved_tendency_hand_computed_k4() {
    // z = (1, 2, 3, 4), F = 8, G_k = −z_{k−1}(z_{k−2} − z_{k+1}) − z_k + F:
    // G_0 = −z_3(z_2 − z_1) − z_0 + 8 = −4·1 − 1 + 8 = 3
    // G_1 = −z_0(z_3 − z_2) − z_1 + 8 = −1·1 − 2 + 8 = 5
    // G_2 = −z_1(z_0 − z_3) − z_2 + 8 = −2·(−3) − 3 + 8 = 11
    // G_3 = −z_2(z_1 − z_0) − z_3 + 8 = −3·1 − 4 + 8 = 1
    let z = [1.0, 2.0, 3.0, 4.0];
    let mut g = [0.0; 4];
    resolved_tendency(&z, 8.0, &mut g);
    assert_eq!(g, [3.0, 5.0, 11.0, 1.0]);
}

#[test]
fn resolved_tendency_is_shift_equivariant() {
    let mut rng = Rng(7);
    let k = 9;
    let z: Vec<f64> = (0..k).map(|_| 5.0 * rng.normal()).collect();
    let mut g = vec![0.0; k];
    resolved_tendency(&z, 20.0, &mut g);
    for shift in 1..k {
        let zs: Vec<f64> = (0..k).map(|i| z[(i + shift) % k]).collect();
        let mut gs = vec![0.0; k];
        resolved_tendency(&zs, 20.0, &mut gs);
        for i in 0..k {
            assert!((gs[i] - g[(i + shift) % k]).abs() < 1e-12);
        }
    }
}

#[test]
fn full_tendency_matches_naive_index_implementation() {
    let mut rng = Rng(11);
    for (k, j) in [(4, 1), (5, 3), (12, 24), (6, 2)] {
        let p = TwoScaleParams {
            k,
            j,
            f: 20.0,
            b: 10.0,
            c: 10.0,
            h: 1.0,
        };
        let s = random_state(&p, &mut rng);
        let mut out = vec![0.0; p.dim()];
        p.tendency(&s, &mut out);
        let expect = naive_tendency(&p, &s);
        for (a, b) in out.iter().zip(&expect) {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                "K={k} J={j}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn full_tendency_is_sector_shift_equivariant() {
    let p = TwoScaleParams::default();
    let mut rng = Rng(13);
    let s = random_state(&p, &mut rng);
    let mut out = vec![0.0; p.dim()];
    p.tendency(&s, &mut out);
    // Shift by one sector: z_k → z_{k+1}, y_{j,k} → y_{j,k+1}.
    let shift = |v: &[f64]| -> Vec<f64> {
        let mut r = Vec::with_capacity(v.len());
        r.extend((0..p.k).map(|k| v[(k + 1) % p.k]));
        let y = &v[p.k..];
        let n = p.k * p.j;
        r.extend((0..n).map(|i| y[(i + p.j) % n]));
        r
    };
    let ss = shift(&s);
    let mut outs = vec![0.0; p.dim()];
    p.tendency(&ss, &mut outs);
    let expect = shift(&out);
    for (a, b) in outs.iter().zip(&expect) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
    }
}

#[test]
fn energy_identities() {
    let mut rng = Rng(17);
    // h = 0, F = 0: advection conserves energy, so Σ z·dz/dt = −Σ z² and Σ y·dy/dt = −c Σ y².
    let p0 = TwoScaleParams {
        f: 0.0,
        h: 0.0,
        ..TwoScaleParams::default()
    };
    let s = random_state(&p0, &mut rng);
    let mut d = vec![0.0; p0.dim()];
    p0.tendency(&s, &mut d);
    let (z, y) = s.split_at(p0.k);
    let (dz, dy) = d.split_at(p0.k);
    let zz: f64 = z.iter().map(|v| v * v).sum();
    let yy: f64 = y.iter().map(|v| v * v).sum();
    let zdz: f64 = z.iter().zip(dz).map(|(a, b)| a * b).sum();
    let ydy: f64 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
    assert!((zdz + zz).abs() < 1e-10 * zz, "{zdz} vs {}", -zz);
    assert!(
        (ydy + p0.c * yy).abs() < 1e-10 * p0.c * yy,
        "{ydy} vs {}",
        -p0.c * yy
    );

    // With coupling and forcing the coupling also conserves Σ z²/2 + Σ y²/2:
    // d/dt E = −Σ z² − c Σ y² + F Σ z.
    let p = TwoScaleParams::default();
    let s = random_state(&p, &mut rng);
    p.tendency(&s, &mut d);
    let (z, y) = s.split_at(p.k);
    let zz: f64 = z.iter().map(|v| v * v).sum();
    let yy: f64 = y.iter().map(|v| v * v).sum();
    let zsum: f64 = z.iter().sum();
    let de: f64 = s.iter().zip(&d).map(|(a, b)| a * b).sum();
    let expect = -zz - p.c * yy + p.f * zsum;
    assert!(
        (de - expect).abs() < 1e-10 * (zz + p.c * yy),
        "{de} vs {expect}"
    );
}

fn spun_up_state(p: &TwoScaleParams, seed: u64, steps: usize) -> Vec<f64> {
    let mut s = p.initial_state(seed);
    let mut w = TwoScaleWork::new(p);
    for _ in 0..steps {
        p.rk4_step(&mut s, 5e-4, &mut w);
    }
    s
}

fn integrate(p: &TwoScaleParams, s0: &[f64], dt: f64, steps: usize) -> Vec<f64> {
    let mut s = s0.to_vec();
    let mut w = TwoScaleWork::new(p);
    for _ in 0..steps {
        p.rk4_step(&mut s, dt, &mut w);
    }
    s
}

#[test]
fn rk4_is_fourth_order() {
    let p = TwoScaleParams::default();
    let s0 = spun_up_state(&p, 3, 4000);
    let horizon = 0.02;
    let reference = integrate(&p, &s0, horizon / 320.0, 320);
    let err = |steps: usize| -> f64 {
        let s = integrate(&p, &s0, horizon / steps as f64, steps);
        s.iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let (e1, e2) = (err(10), err(20));
    let ratio = e1 / e2;
    println!("RK4 max errors over t = {horizon}: {e1:e} (dt = 2e-3), {e2:e} (dt = 1e-3), ratio {ratio:.2}");
    assert!(
        (10.0..=22.0).contains(&ratio),
        "error ratio {ratio} (errors {e1:e}, {e2:e}) is not ~16"
    );
}

#[test]
fn training_pairs_psi_approximates_coupling_to_first_order() {
    let p = TwoScaleParams::default();
    let base = TrainingConfig {
        trajectories: 2,
        spinup_time: 1.0,
        sample_interval: 0.05,
        pairs_per_trajectory: 100,
        ..TrainingConfig::default()
    };
    let set = training_pairs(&p, &base).unwrap();
    assert_eq!(set.len(), 200);
    assert_eq!(set.z.len(), 200 * p.k);
    assert_eq!(set.psi.len(), 200 * p.k);
    let dev = |s: &sbridge::lorenz96::TrainingSet| -> (f64, f64) {
        let d: Vec<f64> = s.psi.iter().zip(&s.coupling).map(|(a, b)| a - b).collect();
        let rms = (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64).sqrt();
        let max = d.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
        (rms, max)
    };
    let coupling_std = pop_std(&set.coupling);
    let (rms1, max1) = dev(&set);
    // ψ − coupling = (Δt/2)(dG/dt + d(coupling)/dt) + O(Δt²). The coupling (a sum of fast
    // variables) changes on the fast time scale, |d(coupling)/dt| ~ 10³, so with Δt = 5e-4 the
    // deviation is a few per cent of the coupling's spread in rms and well below half of it at
    // worst. Bounds: rms < 0.1·std, max < 0.4·std.
    assert!(coupling_std > 1.0, "coupling std {coupling_std}");
    assert!(
        rms1 < 0.1 * coupling_std,
        "rms |ψ − coupling| = {rms1}, std = {coupling_std}"
    );
    assert!(
        max1 < 0.4 * coupling_std,
        "max |ψ − coupling| = {max1}, std = {coupling_std}"
    );

    // Doubling the difference step doubles the O(Δt) deviation (same trajectories: same seeds).
    let set2 = training_pairs(
        &p,
        &TrainingConfig {
            psi_step: PsiStep::Over(2.0 * base.dt),
            ..base
        },
    )
    .unwrap();
    assert_eq!(set2.z, set.z, "ψ's step must not change the sampling grid");
    assert_eq!(set2.coupling, set.coupling);
    let (rms2, _) = dev(&set2);
    let ratio = rms2 / rms1;
    assert!(
        (1.6..=2.4).contains(&ratio),
        "deviation ratio {ratio} not ~2 ({rms1}, {rms2})"
    );
    println!("coupling std {coupling_std:.3}, |ψ − coupling| rms {rms1:.4} max {max1:.4}");
    println!("Over(2Δt): rms {rms2:.4}, ratio {ratio:.3}");
}

#[test]
fn training_pairs_over_step_is_exact_for_euler() {
    // With PsiStep::Over(δt), one Euler step (62) from z(t) with ψ reproduces z(t+δt); check it via
    // the next row when the sampling interval equals δt.
    let p = TwoScaleParams::default();
    let cfg = TrainingConfig {
        trajectories: 1,
        spinup_time: 0.5,
        sample_interval: 0.005,
        pairs_per_trajectory: 20,
        psi_step: PsiStep::Over(0.005),
        ..TrainingConfig::default()
    };
    let set = training_pairs(&p, &cfg).unwrap();
    let k = p.k;
    let mut work = vec![0.0; k];
    for t in 0..19 {
        let mut z = set.z[t * k..(t + 1) * k].to_vec();
        closure_step(&mut z, &set.psi[t * k..(t + 1) * k], p.f, 0.005, &mut work);
        for (a, b) in z.iter().zip(&set.z[(t + 1) * k..(t + 2) * k]) {
            assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

#[test]
fn training_pairs_validation_and_layout() {
    let p = TwoScaleParams::default();
    let small = TrainingConfig {
        trajectories: 3,
        spinup_time: 0.1,
        sample_interval: 0.01,
        pairs_per_trajectory: 5,
        ..TrainingConfig::default()
    };
    // δt not an integer multiple of Δt.
    let bad = TrainingConfig {
        psi_step: PsiStep::Over(1.5 * small.dt),
        ..small
    };
    assert!(training_pairs(&p, &bad).is_err());
    let bad = TrainingConfig {
        sample_interval: 0.0101,
        ..small
    };
    assert!(training_pairs(&p, &bad).is_err());
    let bad = TrainingConfig { dt: 0.0, ..small };
    assert!(training_pairs(&p, &bad).is_err());
    let bad_p = TwoScaleParams {
        k: 3,
        ..TwoScaleParams::default()
    };
    assert!(training_pairs(&bad_p, &small).is_err());

    let set = training_pairs(&p, &small).unwrap();
    assert_eq!(set.len(), 15);
    assert!(set.z.iter().chain(&set.psi).all(|v| v.is_finite()));
    // Deterministic in the seed, different for another seed.
    assert_eq!(training_pairs(&p, &small).unwrap(), set);
    let other = training_pairs(&p, &TrainingConfig { seed: 2, ..small }).unwrap();
    assert_ne!(other.z, set.z);
    // Trajectories are distinct.
    let (z0, _) = set.trajectory(0).unwrap();
    let (z1, _) = set.trajectory(1).unwrap();
    assert_ne!(z0, z1);
    assert!(set.trajectory(3).is_none());

    let x = set.joint();
    let k = p.k;
    assert_eq!(x.len(), 2 * set.z.len());
    for i in 0..set.len() {
        assert_eq!(&x[i * 2 * k..i * 2 * k + k], &set.z[i * k..(i + 1) * k]);
        assert_eq!(
            &x[i * 2 * k + k..(i + 1) * 2 * k],
            &set.psi[i * k..(i + 1) * k]
        );
    }
}

#[test]
fn full_model_climate_std_is_plausible() {
    let p = TwoScaleParams::default();
    let t0 = Instant::now();
    // 300 time units after a spin-up of 2 (604 000 RK4 steps, about a second in release mode).
    let z = full_model_slow_series(&p, 5e-4, 2.0, 0.05, 6000, 42).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(z.len(), 6000 * p.k);
    let s = pop_std(&z);
    let m = z.iter().sum::<f64>() / z.len() as f64;
    println!("full model: mean z = {m:.3}, std z = {s:.3} over 300 time units ({secs:.2} s)");
    assert!((4.5..=7.0).contains(&s), "std of z = {s}");
}

#[test]
fn full_model_series_reuses_initial_condition_and_spinup() {
    let p = TwoScaleParams::default();
    // The series from spin-up 0.1 sampled every 0.05 contains, shifted by two rows, the series
    // from spin-up 0.2.
    let a = full_model_slow_series(&p, 5e-4, 0.1, 0.05, 6, 5).unwrap();
    let b = full_model_slow_series(&p, 5e-4, 0.2, 0.05, 4, 5).unwrap();
    assert_eq!(&a[2 * p.k..], &b[..]);
    // First row after zero spin-up is the initial state.
    let c = full_model_slow_series(&p, 5e-4, 0.0, 0.05, 1, 5).unwrap();
    assert_eq!(&c[..], &p.initial_state(5)[..p.k]);
}

#[test]
fn timing_of_default_training_set() {
    // 16 trajectories × 250 pairs every 0.025 time units after a spin-up of 5 (the defaults).
    let p = TwoScaleParams::default();
    let cfg = TrainingConfig::default();
    let t0 = Instant::now();
    let set = training_pairs(&p, &cfg).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(set.len(), 4000);
    let zs = pop_std(&set.z);
    let ps = pop_std(&set.psi);
    println!("training_pairs: 4000 pairs in {secs:.2} s; std z = {zs:.3}, std psi = {ps:.3}");
    assert!((4.0..=7.5).contains(&zs));
}

#[test]
fn closure_step_is_euler_of_resolved_plus_psi() {
    // z = (1, 2, 3, 4), F = 8: G = (3, 5, 11, 1) (see the hand computation above).
    let mut z = [1.0, 2.0, 3.0, 4.0];
    let psi = [0.5, -1.0, 0.0, 2.0];
    let mut w = [0.0; 4];
    closure_step(&mut z, &psi, 8.0, 0.1, &mut w);
    let expect = [1.0 + 0.35, 2.0 + 0.4, 3.0 + 1.1, 4.0 + 0.3];
    for (a, b) in z.iter().zip(&expect) {
        assert!((a - b).abs() < 1e-14, "{a} vs {b}");
    }
}

#[test]
fn run_closure_model_records_and_matches_manual_steps() {
    let k = 8;
    let z0: Vec<f64> = (0..k)
        .map(|i| 8.0 + if i == 0 { 0.01 } else { 0.0 })
        .collect();
    let closure = |z: &[f64], psi: &mut [f64]| {
        for (p, zk) in psi.iter_mut().zip(z) {
            *p = -0.3 * zk;
        }
    };
    let rec = run_closure_model(&z0, 8.0, 0.005, 10, 3, closure).unwrap();
    assert_eq!(rec.len(), 3 * k);
    let mut z = z0.clone();
    let mut psi = vec![0.0; k];
    let mut w = vec![0.0; k];
    for m in 1..=10 {
        closure(&z, &mut psi);
        closure_step(&mut z, &psi, 8.0, 0.005, &mut w);
        if m % 3 == 0 {
            assert_eq!(&rec[(m / 3 - 1) * k..(m / 3) * k], &z[..]);
        }
    }
}

#[test]
fn run_closure_model_zero_closure_stays_bounded() {
    // Single-scale Lorenz-96 (ψ ≡ 0) with F = 20 is chaotic but bounded; forward Euler needs a
    // small step for it (δt = 0.005 drifts to a blow-up after about 10 time units).
    let z0: Vec<f64> = (0..12).map(|i| 5.0 + 0.1 * i as f64).collect();
    let rec = run_closure_model(&z0, 20.0, 0.001, 20_000, 50, |_, psi| psi.fill(0.0)).unwrap();
    assert_eq!(rec.len(), 400 * 12);
    assert!(rec.iter().all(|v| v.is_finite() && v.abs() < 100.0));
}

#[test]
fn run_closure_model_reports_blow_up() {
    let z0 = vec![5.0; 12];
    let err = run_closure_model(&z0, 20.0, 0.005, 100, 1, |_, psi| psi.fill(1e6)).unwrap_err();
    // z_1 = 5 + (G + 1e6)·0.005 ≈ 5 + 5000 > 10³ at the first step.
    assert!(err.contains("step 1 "), "{err}");
    let err = run_closure_model(&z0, 20.0, 0.005, 100, 1, |_, psi| psi.fill(f64::NAN)).unwrap_err();
    assert!(err.contains("step 1 "), "{err}");
    // A milder constant push blows up later, and the reported step is where |z| first exceeds 10³.
    let err = run_closure_model(&z0, 0.0, 0.01, 100_000, 1, |z, psi| {
        for (p, zk) in psi.iter_mut().zip(z) {
            *p = 2.0 * zk + 1.0;
        }
    })
    .unwrap_err();
    assert!(err.contains("blew up at step"), "{err}");
    assert!(run_closure_model(&z0, 20.0, 0.005, 10, 0, |_, _| {}).is_err());
}

#[test]
fn cubic_closure_recovers_coefficients() {
    let mut rng = Rng(23);
    let n = 5000;
    let z: Vec<f64> = (0..n).map(|_| -10.0 + 25.0 * rng.uniform()).collect();
    let truth = [1.0, -2.0, 0.0, 0.1];
    let psi: Vec<f64> = z
        .iter()
        .map(|&x| {
            truth[0] + truth[1] * x + truth[2] * x * x + truth[3] * x * x * x + 1e-6 * rng.normal()
        })
        .collect();
    let fit = CubicClosure::fit(&z, &psi).unwrap();
    let tol = [1e-5, 1e-5, 1e-6, 1e-7];
    for i in 0..4 {
        assert!(
            (fit.coef[i] - truth[i]).abs() < tol[i],
            "coef {i}: {} vs {}",
            fit.coef[i],
            truth[i]
        );
    }
    // eval is the polynomial: ψ(2) = 1 − 4 + 0 + 0.8 = −2.2 for the true coefficients.
    let exact = CubicClosure { coef: truth };
    assert!((exact.eval(2.0) + 2.2).abs() < 1e-14);
    let mut out = [0.0; 2];
    exact.eval_into(&[0.0, 2.0], &mut out);
    assert!((out[0] - 1.0).abs() < 1e-15 && (out[1] + 2.2).abs() < 1e-14);

    // Singular: three distinct z values cannot determine a cubic.
    let z3 = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
    assert!(CubicClosure::fit(&z3, &[0.0; 6]).is_err());
    assert!(CubicClosure::fit(&z[..10], &psi[..9]).is_err());
}

#[test]
fn ar1_noise_fit_recovers_phi_sigma_and_rescales() {
    let mut rng = Rng(29);
    let (k, seg, segs) = (6, 2000, 4);
    let (phi, sigma) = (0.7, 0.5);
    let cubic = CubicClosure {
        coef: [0.3, -0.8, 0.01, 0.002],
    };
    let stat = sigma / (1.0_f64 - phi * phi).sqrt();
    let mut z = Vec::new();
    let mut psi = Vec::new();
    for _ in 0..segs {
        let mut e: Vec<f64> = (0..k).map(|_| stat * rng.normal()).collect();
        for _ in 0..seg {
            for ek in e.iter_mut() {
                let zk = -5.0 + 15.0 * rng.uniform();
                z.push(zk);
                psi.push(cubic.eval(zk) + *ek);
                *ek = phi * *ek + sigma * rng.normal();
            }
        }
    }
    // Fit the cubic first, as in practice, then the AR(1) on its residuals.
    let fitted = CubicClosure::fit(&z, &psi).unwrap();
    let noise = Ar1Noise::fit(&fitted, &z, &psi, k, seg).unwrap();
    // 48 000 values: standard error of phi ≈ sqrt((1−φ²)/N) ≈ 0.003.
    assert!((noise.phi - phi).abs() < 0.02, "phi {}", noise.phi);
    assert!(
        (noise.sigma / sigma - 1.0).abs() < 0.03,
        "sigma {}",
        noise.sigma
    );
    assert!((noise.stationary_std() / stat - 1.0).abs() < 0.05);

    // Rescaling to half the interval: φ' = φ^½, stationary std preserved; twice: back again.
    let half = noise.rescaled(0.5).unwrap();
    assert!((half.phi - noise.phi.sqrt()).abs() < 1e-14);
    assert!((half.stationary_std() - noise.stationary_std()).abs() < 1e-12);
    let twice = half.rescaled(2.0).unwrap();
    assert!((twice.phi - noise.phi).abs() < 1e-12 && (twice.sigma - noise.sigma).abs() < 1e-12);
    assert!(Ar1Noise {
        phi: -0.5,
        sigma: 1.0
    }
    .rescaled(0.5)
    .is_err());
    assert!(noise.rescaled(0.0).is_err());

    // step: e ← φ e + σ ξ.
    let n = Ar1Noise {
        phi: 0.5,
        sigma: 2.0,
    };
    let mut e = [1.0, -2.0];
    n.step(&mut e, &[0.25, 1.0]);
    assert_eq!(e, [0.5 + 0.5, -1.0 + 2.0]);

    // The rows (8000) are not whole segments of 7 rows.
    assert!(Ar1Noise::fit(&fitted, &z, &psi, k, 7).is_err());
}

#[test]
fn cubic_ar1_closure_reproduces_full_model_climate() {
    // End to end: training pairs with ψ differenced over the closure step δt = 10Δt, the
    // Wilks/Arnold cubic + AR(1) closure fitted to them, and the Euler closure model (62) run for
    // 40 000 steps of δt. Its climate must match the full model's: std of z within 10 % and
    // W1 < 0.5 (the full model's z std is about 5.6).
    let p = TwoScaleParams::default();
    let dt = 0.005;
    let cfg = TrainingConfig {
        psi_step: PsiStep::Over(dt),
        ..TrainingConfig::default()
    };
    let set = training_pairs(&p, &cfg).unwrap();
    let cubic = CubicClosure::fit(&set.z, &set.psi).unwrap();
    // The fitted closure damps: ψ decreases through zero near z ≈ 0 (slope a_1 < 0).
    assert!(cubic.coef[1] < 0.0, "{:?}", cubic.coef);
    let noise = Ar1Noise::fit(&cubic, &set.z, &set.psi, p.k, set.pairs_per_trajectory).unwrap();
    assert!(noise.phi > 0.0 && noise.phi < 1.0, "{noise:?}");
    let step_noise = noise.rescaled(dt / cfg.sample_interval).unwrap();

    let mut rng = Rng(31);
    let mut e: Vec<f64> = (0..p.k)
        .map(|_| step_noise.stationary_std() * rng.normal())
        .collect();
    let mut xi = vec![0.0; p.k];
    let z0 = set.z[..p.k].to_vec();
    let rec = run_closure_model(&z0, p.f, dt, 40_000, 5, |z, psi| {
        cubic.eval_into(z, psi);
        for (a, b) in psi.iter_mut().zip(&e) {
            *a += b;
        }
        for x in xi.iter_mut() {
            *x = rng.normal();
        }
        step_noise.step(&mut e, &xi);
    })
    .unwrap();
    let (s_closure, s_full) = (pop_std(&rec), pop_std(&set.z));
    let w1 = sbridge::stats::wasserstein1(&rec, &set.z);
    println!("closure std {s_closure:.3} vs full {s_full:.3}, W1 {w1:.3}; {noise:?}");
    assert!((s_closure / s_full - 1.0).abs() < 0.1);
    assert!(w1 < 0.5);
}
