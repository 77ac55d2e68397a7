//! The spatial order of samples and the truncated Sinkhorn run: the order is a k-d partition
//! into tiles; the truncated run's scaling meets the exact kernel's row sums within the tolerance
//! plus the neglected mass it reports, checked against a dense evaluation written out here.

use sbridge::fused::symmetric::{tile_range, tiles};
use sbridge::spatial::{permute_rows, tile_order};
use sbridge::{sinkhorn, sinkhorn_workspace_len, Dataset, Error, Rng, SinkhornOptions};

/// Two Gaussian modes at `(±1, 0)` with standard deviation 0.3: unit-scale bimodal data.
fn bimodal(m: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed, 0);
    let mut x = Vec::with_capacity(2 * m);
    for j in 0..m {
        let centre = if j % 2 == 0 { -1.0 } else { 1.0 };
        x.push(centre + 0.3 * rng.normal());
        x.push(0.3 * rng.normal());
    }
    x
}

fn ordered(data: &[f64], d: usize) -> Vec<f64> {
    let mut order = vec![0u32; data.len() / d];
    tile_order(data, d, &mut order).unwrap();
    let mut out = data.to_vec();
    permute_rows(&mut out, d, &mut order).unwrap();
    out
}

/// `lo` and `hi` of each tile.
fn boxes(data: &[f64], d: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let m = data.len() / d;
    (0..tiles(m))
        .map(|t| {
            let mut lo = vec![f64::INFINITY; d];
            let mut hi = vec![f64::NEG_INFINITY; d];
            for j in tile_range(t, m) {
                for c in 0..d {
                    lo[c] = lo[c].min(data[j * d + c]);
                    hi[c] = hi[c].max(data[j * d + c]);
                }
            }
            (lo, hi)
        })
        .collect()
}

#[test]
fn tile_order_is_a_kd_partition_into_tiles() {
    for (m, d) in [(3000, 2), (2 * 256, 3), (5 * 256 + 17, 6), (100, 2)] {
        let mut rng = Rng::new(7 + m as u64, 1);
        let data: Vec<f64> = (0..m * d).map(|_| rng.normal()).collect();
        let mut order = vec![0u32; m];
        tile_order(&data, d, &mut order).unwrap();
        // A permutation, increasing inside each tile.
        let mut seen = vec![false; m];
        for &o in &order {
            assert!(!seen[o as usize], "index {o} twice");
            seen[o as usize] = true;
        }
        for t in 0..tiles(m) {
            let r = tile_range(t, m);
            assert!(order[r].windows(2).all(|w| w[0] < w[1]));
        }
        // Cells of a k-d partition: the boxes of two tiles are separated along some coordinate.
        let sorted = ordered(&data, d);
        let b = boxes(&sorted, d);
        for i in 0..b.len() {
            for j in i + 1..b.len() {
                let apart = (0..d).any(|c| b[i].1[c] <= b[j].0[c] || b[j].1[c] <= b[i].0[c]);
                assert!(apart, "M = {m}, d = {d}: tiles {i} and {j} overlap");
            }
        }
        // The same cells for the same points in another order.
        let mut perm: Vec<u32> = (0..m as u32).rev().collect();
        let mut shuffled = data.clone();
        permute_rows(&mut shuffled, d, &mut perm).unwrap();
        let again = ordered(&shuffled, d);
        for t in 0..tiles(m) {
            let key = |x: &[f64]| {
                let mut rows: Vec<Vec<u64>> = x
                    [tile_range(t, m).start * d..tile_range(t, m).end * d]
                    .chunks(d)
                    .map(|r| r.iter().map(|v| v.to_bits()).collect())
                    .collect();
                rows.sort();
                rows
            };
            assert_eq!(key(&sorted), key(&again), "tile {t}");
        }
    }
}

#[test]
fn permute_rows_moves_rows_and_refuses_a_non_permutation() {
    let d = 3;
    let data: Vec<f64> = (0..7 * d).map(|v| v as f64).collect();
    let mut order = vec![3u32, 0, 6, 1, 2, 5, 4];
    let mut out = data.clone();
    permute_rows(&mut out, d, &mut order).unwrap();
    assert_eq!(order, [3, 0, 6, 1, 2, 5, 4], "the order is kept");
    for (k, &o) in order.iter().enumerate() {
        assert_eq!(
            out[k * d..(k + 1) * d],
            data[o as usize * d..(o as usize + 1) * d]
        );
    }
    for bad in [vec![0u32, 1, 2, 3, 4, 5, 5], vec![0, 1, 2, 3, 4, 5, 7]] {
        let mut order = bad.clone();
        let mut out = data.clone();
        assert_eq!(
            permute_rows(&mut out, d, &mut order),
            Err(Error::InvalidLayout)
        );
        assert_eq!(out, data, "unchanged");
        assert_eq!(order, bad, "the order is given back unchanged");
    }
    let mut order = vec![0u32; 7];
    assert!(matches!(
        tile_order(&data[..20], d, &mut order),
        Err(Error::LengthMismatch { .. })
    ));
    let mut nan = data.clone();
    nan[4] = f64::NAN;
    assert_eq!(tile_order(&nan, d, &mut order), Err(Error::NonFiniteData));
    assert_eq!(tile_order(&data, 0, &mut order), Err(Error::ZeroDimension));
}

/// `max_i |Σ_j exp(g_i + g_j + log T_ij) − 1|` over the exact kernel, evaluated densely.
fn exact_residual(
    data: &[f64],
    d: usize,
    eps: f64,
    w: &[f64],
    rho: Option<&[f64]>,
    g: &[f64],
) -> f64 {
    let m = data.len() / d;
    let mut worst = 0.0f64;
    for i in 0..m {
        let mut s = 0.0;
        for j in 0..m {
            let q: f64 = (0..d)
                .map(|c| w[c] * (data[i * d + c] - data[j * d + c]).powi(2))
                .sum();
            let log_t = match rho {
                None => -q / (4.0 * eps),
                Some(r) => -q / (2.0 * eps * (r[i] + r[j])),
            };
            s += (g[i] + g[j] + log_t).exp();
        }
        worst = worst.max((s - 1.0).abs());
    }
    worst
}

#[test]
fn truncated_run_meets_the_exact_kernel_within_tol_plus_the_reported_mass() {
    let (m, d, eps, tol) = (4000, 2, 0.001, 1e-9);
    let data = ordered(&bimodal(m, 3), d);
    let rho: Vec<f64> = data
        .chunks(d)
        .map(|x| 0.6 + 0.4 * (x[0] * x[0] + x[1] * x[1]).sqrt())
        .collect();
    let scales = [1.0, 0.8];
    let mut work = vec![0.0; sinkhorn_workspace_len(m, d)];
    let cases = [(false, false), (true, false), (false, true), (true, true)];
    for ((metric, variable), tau) in cases.into_iter().flat_map(|c| [(c, 1e-10), (c, 1e-4)]) {
        let ds = Dataset::new(&data, d, metric.then_some(&scales[..])).unwrap();
        let w: Vec<f64> = if metric {
            scales.iter().map(|s| 1.0 / (s * s)).collect()
        } else {
            vec![1.0; d]
        };
        let rho = variable.then_some(&rho[..]);
        let opts = SinkhornOptions {
            truncation: tau,
            ..SinkhornOptions::new(tol, 1000)
        };
        let mut g = vec![0.0; m];
        let rep = sinkhorn(&ds, eps, rho, opts, &mut g, &mut work, None).unwrap();
        let what = format!("metric {metric}, variable {variable}, τ {tau:e}");
        assert!(rep.neglected <= tau, "{what}: neglected {}", rep.neglected);
        assert!(
            rep.kernel_fraction < 0.6,
            "{what}: fraction {}",
            rep.kernel_fraction
        );
        let res = exact_residual(&data, d, eps, &w, rho, &g);
        assert!(
            res <= tol + rep.neglected * (1.0 + 1e-9) + 1e-12,
            "{what}: exact residual {res:e}, report {rep:?}"
        );
        // The exact run's scaling, for comparison.
        let mut g_exact = vec![0.0; m];
        let exact = sinkhorn(
            &ds,
            eps,
            rho,
            SinkhornOptions::new(tol, 1000),
            &mut g_exact,
            &mut work,
            None,
        )
        .unwrap();
        assert_eq!((exact.neglected, exact.kernel_fraction), (0.0, 1.0));
        let diff = g
            .iter()
            .zip(&g_exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            diff < 1e-8 + 10.0 * rep.neglected,
            "{what}: |g − g_exact| = {diff:e}"
        );
        println!(
            "{what}: kept {:.3} of the kernel, neglected ≤ {:.2e}, exact residual {res:.2e}, \
             {} updates (exact run {}), |Δg| {diff:.1e}",
            rep.kernel_fraction, rep.neglected, rep.iterations, exact.iterations
        );
    }
}

#[test]
fn truncation_without_a_spatial_order_is_still_bounded_and_threads_give_the_same_bits() {
    let (m, d, eps, tol, tau) = (1500, 2, 0.002, 1e-9, 1e-8);
    let data = bimodal(m, 5);
    let ds = Dataset::new(&data, d, None).unwrap();
    let opts = SinkhornOptions {
        truncation: tau,
        ..SinkhornOptions::new(tol, 1000)
    };
    let mut work = vec![0.0; sinkhorn_workspace_len(m, d)];
    let mut g = vec![0.0; m];
    let rep = sinkhorn(&ds, eps, None, opts, &mut g, &mut work, None).unwrap();
    assert!(rep.neglected <= tau);
    let res = exact_residual(&data, d, eps, &[1.0, 1.0], None, &g);
    assert!(
        res <= tol + rep.neglected * (1.0 + 1e-9) + 1e-12,
        "{res:e} {rep:?}"
    );

    let sorted = ordered(&data, d);
    let ds = Dataset::new(&sorted, d, None).unwrap();
    let mut one = vec![0.0; m];
    let r1 = sinkhorn(&ds, eps, None, opts, &mut one, &mut work, None).unwrap();
    assert!(r1.kernel_fraction < rep.kernel_fraction);
    for threads in [2, 3] {
        let mut many = vec![0.0; m];
        let rt = sbridge::sinkhorn::sinkhorn_threaded(
            &ds, eps, None, opts, &mut many, &mut work, None, threads,
        )
        .unwrap();
        assert_eq!(rt, r1);
        assert!(one
            .iter()
            .zip(&many)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn truncation_outside_zero_to_one_is_refused() {
    let data = bimodal(50, 1);
    let ds = Dataset::new(&data, 2, None).unwrap();
    let mut work = vec![0.0; sinkhorn_workspace_len(50, 2)];
    let mut g = vec![0.0; 50];
    for tau in [-1e-12, 1.0, f64::NAN, f64::INFINITY] {
        let opts = SinkhornOptions {
            truncation: tau,
            ..SinkhornOptions::new(1e-9, 100)
        };
        assert_eq!(
            sinkhorn(&ds, 0.1, None, opts, &mut g, &mut work, None),
            Err(Error::InvalidTolerance)
        );
    }
}

/// An exact fit of the ordered bimodal data, owned.
struct Fitted {
    data: Vec<f64>,
    log_v: Vec<f64>,
}

fn fitted(m: usize, eps: f64) -> Fitted {
    let data = ordered(&bimodal(m, 9), 2);
    let ds = Dataset::new(&data, 2, None).unwrap();
    let mut log_v = vec![0.0; m];
    let mut work = vec![0.0; sinkhorn_workspace_len(m, 2)];
    sinkhorn(
        &ds,
        eps,
        None,
        SinkhornOptions::new(1e-11, 1000),
        &mut log_v,
        &mut work,
        None,
    )
    .unwrap();
    Fitted { data, log_v }
}

#[test]
fn truncated_bridge_mean_moves_by_at_most_tau_times_the_spread() {
    let (m, eps) = (6000, 0.002);
    let f = fitted(m, eps);
    let ds = Dataset::new(&f.data, 2, None).unwrap();
    let exact = sbridge::Bridge::new(ds, eps, &f.log_v, None).unwrap();
    let mut cols = vec![0.0; 2 * m];
    let mut rng = Rng::new(4, 4);
    for (tau, columns) in [(1e-6, false), (1e-6, true), (1e-12, true)] {
        let base = if columns {
            exact.with_columns(&mut cols).unwrap()
        } else {
            exact
        };
        let mut storage = vec![0.0; sbridge::fused::truncated::tile_index_len(m, 2)];
        let cut = base.with_truncation(tau, &mut storage).unwrap();
        let mut work = vec![0.0; sbridge::bridge_workspace_len(m, 2)];
        let spread = [(-2.5f64, 2.5f64), (-1.5, 1.5)]; // the data's range, with room
        let (mut differ, mut worst) = (0, 0.0f64);
        for q in 0..60 {
            // Queries at noisy training points, and a few far out.
            let j = (q * 97) % m;
            let far = if q % 15 == 0 { 3.0 } else { 0.0 };
            let x = [
                f.data[2 * j] + 0.05 * rng.normal() + far,
                f.data[2 * j + 1] + 0.05 * rng.normal(),
            ];
            let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
            base.mean(&x, &mut a, &mut work).unwrap();
            cut.mean(&x, &mut b, &mut work).unwrap();
            for c in 0..2 {
                let err = (a[c] - b[c]).abs();
                let allowed = tau * (spread[c].1 - spread[c].0) + 1e-13;
                assert!(
                    err <= allowed,
                    "τ {tau}, query {q}, coordinate {c}: {err:e} > {allowed:e}"
                );
                worst = worst.max(err);
                differ += usize::from(a[c].to_bits() != b[c].to_bits());
            }
        }
        assert!(differ > 0, "τ {tau}: no query took the truncated pass");
        println!(
            "τ {tau:e} columns {columns}: worst |Δm| {worst:.1e}, {differ} of 120 means differ"
        );
        // τ = 0 is the bridge itself.
        let same = base.with_truncation(0.0, &mut storage).unwrap();
        let x = [f.data[0], f.data[1]];
        let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
        base.mean(&x, &mut a, &mut work).unwrap();
        same.mean(&x, &mut b, &mut work).unwrap();
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
    }
    let mut short = vec![0.0; 3];
    assert!(matches!(
        exact.with_truncation(1e-6, &mut short),
        Err(Error::BufferTooSmall { .. })
    ));
    for tau in [-0.1, 1.0, f64::NAN] {
        assert_eq!(
            exact.with_truncation(tau, &mut short).map(|_| ()),
            Err(Error::InvalidTolerance)
        );
    }
}

#[test]
fn truncated_closure_stays_within_its_bound_and_keeps_its_bits_across_batches() {
    use sbridge::layout::{single_head, single_head_sizes};
    use sbridge::{closure, closure_batch, closure_workspace_len, ClosureConfig, FitConfig};
    use sbridge::{LayoutStorage, ModelView};
    let (m, eps) = (6000, 0.002);
    let data = ordered(&bimodal(m, 11), 2);
    let s = single_head_sizes(2);
    let (mut a, mut b, mut c, mut e) = (
        vec![0u32; s.heads + 1],
        vec![0u32; s.nb],
        vec![0u32; s.heads + 1],
        vec![0u32; s.tg],
    );
    let layout = single_head(
        2,
        LayoutStorage {
            nb_offsets: &mut a,
            nb_coords: &mut b,
            tg_offsets: &mut c,
            tg_coords: &mut e,
        },
    )
    .unwrap();
    let cfg = FitConfig {
        sinkhorn: SinkhornOptions {
            truncation: 1e-10,
            ..SinkhornOptions::new(1e-11, 1000)
        },
        ..FitConfig::new(eps)
    };
    let (image, report) = sbridge::model_io::fit_model(&data, 2, None, &layout, &cfg).unwrap();
    assert!(
        report.max_neglected <= 1e-10 && report.max_neglected > 0.0,
        "{report:?}"
    );
    let view: ModelView<'_, f64> = image.view().unwrap();
    let mut work = vec![0.0; closure_workspace_len(&view)];
    let z_star: Vec<f64> = (0..8).map(|i| -1.4 + 0.4 * i as f64).collect();
    let run = |tau: f64, sweeps: usize, work: &mut [f64]| {
        let cfg = ClosureConfig {
            sweeps,
            truncation: tau,
            ..ClosureConfig::default()
        };
        let mut psi: Vec<f64> = vec![0.0; z_star.len()];
        for (i, (p, &z)) in psi.iter_mut().zip(&z_star).enumerate() {
            let mut rng = Rng::new(21, i as u64);
            let mut one = [0.0];
            closure(&view, &cfg, &[0], &[z], &mut one, &mut rng, work).unwrap();
            *p = one[0];
        }
        (cfg, psi)
    };
    // One sweep: the mean moved by at most τ times the spread of ψ (the same noise for both).
    let tau = 1e-6;
    let (_, exact) = run(0.0, 1, &mut work);
    let (_, cut) = run(tau, 1, &mut work);
    for (a, b) in exact.iter().zip(&cut) {
        assert!((a - b).abs() <= tau * 3.0 + 1e-13, "{a} {b}");
    }
    assert!(exact
        .iter()
        .zip(&cut)
        .any(|(a, b)| a.to_bits() != b.to_bits()));
    // A batch gives each column the bits of the call alone.
    let (cfg, alone) = run(tau, 20, &mut work);
    let mut psi = vec![0.0; z_star.len()];
    let mut rngs: Vec<Rng> = (0..z_star.len()).map(|i| Rng::new(21, i as u64)).collect();
    closure_batch(&view, &cfg, &[0], &z_star, &mut psi, &mut rngs, &mut work).unwrap();
    assert_eq!(
        psi.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        alone.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let bad = ClosureConfig {
        truncation: 1.0,
        ..ClosureConfig::default()
    };
    let mut one = [0.0];
    assert_eq!(
        closure(
            &view,
            &bad,
            &[0],
            &[0.0],
            &mut one,
            &mut Rng::new(1, 1),
            &mut work
        ),
        Err(Error::InvalidTolerance)
    );
}

/// The variable bandwidth and a metric: the truncated mean against the exact one.
#[test]
fn truncated_mean_with_variable_bandwidth_and_metric() {
    use sbridge::{fit, fit_workspace_len, BandwidthStorage, FitConfig, FitStorage};
    let (m, d, eps) = (5000, 2, 0.002);
    let data = ordered(&bimodal(m, 13), d);
    let scales = [1.2, 0.7];
    let (mut chol, mut whitened, mut rho, mut log_v) = (
        vec![0.0; d * d],
        vec![0.0; m * d],
        vec![0.0; m],
        vec![0.0; m],
    );
    let ds = Dataset::new(&data, d, Some(&scales)).unwrap();
    let cfg = FitConfig::new(eps).with_beta(-0.2);
    let mut work = vec![0.0; fit_workspace_len(m, d)];
    let storage = FitStorage {
        log_v: &mut log_v,
        bandwidth: Some(BandwidthStorage {
            chol: &mut chol,
            whitened: &mut whitened,
            rho: &mut rho,
        }),
    };
    let (exact, _) = fit(ds, &cfg, storage, &mut work, None).unwrap();
    let tau = 1e-6;
    let mut storage = vec![0.0; sbridge::fused::truncated::tile_index_len(m, d)];
    let cut = exact.with_truncation(tau, &mut storage).unwrap();
    let mut work = vec![0.0; sbridge::bridge_workspace_len(m, d)];
    let mut rng = Rng::new(8, 8);
    let mut differ = 0;
    for q in 0..40 {
        let j = (q * 131) % m;
        let x = [
            data[2 * j] + 0.05 * rng.normal(),
            data[2 * j + 1] + 0.05 * rng.normal(),
        ];
        let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
        exact.mean(&x, &mut a, &mut work).unwrap();
        cut.mean(&x, &mut b, &mut work).unwrap();
        for c in 0..2 {
            assert!(
                (a[c] - b[c]).abs() <= tau * 5.0 + 1e-13,
                "query {q}: {a:?} {b:?}"
            );
            differ += usize::from(a[c].to_bits() != b[c].to_bits());
        }
    }
    assert!(differ > 0, "no query took the truncated pass");
}
