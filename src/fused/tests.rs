//! The fused pass's tests, compiled twice: as the crate's unit tests (`cfg(test)`: the portable
//! build, the code a CPU without AVX2 or a firmware runs) and by `tests/fused_builds.rs` against
//! the library as users get it (on an x86-64 `std` host, the AVX-512 or AVX2 build chosen at run
//! time). Both must give the bits of the documented scalar order: this is the check that the
//! vector build does not change a result.
use sbridge::fused::{
    logit_row_sums, max_logit, shifted_row, shifted_sums, weighted_sums, Query, Samples, LANES,
};
use sbridge::kernel::InvBandwidth;
use sbridge::real::Real;
use sbridge::rng::Rng;
use std::vec::Vec;

/// The documented lane reduction, `v_l ← v_l + v_{l+h}` for `h = LANES/2, …, 1`, written out here
/// rather than taken from the crate, so that the scalar references (this file's and
/// `symmetric_tests.rs`'s) do not share the code they check.
pub(crate) fn reduce_lanes<T: Real>(mut v: [T; LANES]) -> T {
    let mut h = LANES / 2;
    while h > 0 {
        for l in 0..h {
            v[l] += v[l + h];
        }
        h /= 2;
    }
    v[0]
}

struct Case<T> {
    rows: Vec<T>,
    cols: Vec<T>,
    g: Vec<T>,
    rho: Vec<T>,
    w: Vec<T>,
    x: Vec<T>,
    m: usize,
    d: usize,
}

fn case<T: Real>(m: usize, d: usize, seed: u64) -> Case<T> {
    let mut rng = Rng::new(seed, 0);
    let rows: Vec<T> = (0..m * d).map(|_| T::from_f64(rng.normal())).collect();
    let mut cols = std::vec![T::ZERO; m * d];
    sbridge::bridge::transpose_samples(&rows, d, &mut cols);
    Case {
        g: (0..m).map(|_| T::from_f64(0.3 * rng.normal())).collect(),
        rho: (0..m)
            .map(|_| T::from_f64(0.5 + rng.uniform_open0()))
            .collect(),
        w: (0..d)
            .map(|_| T::from_f64(0.5 + rng.uniform_open0()))
            .collect(),
        x: (0..d).map(|_| T::from_f64(0.5 * rng.normal())).collect(),
        rows,
        cols,
        m,
        d,
    }
}

fn queries<T: Real>(c: &Case<T>) -> Vec<(Query<'_, T>, Query<'_, T>)> {
    let mut out = Vec::new();
    for weighted in [false, true] {
        for variable in [false, true] {
            let inv_bw = if variable {
                InvBandwidth::Variable {
                    half_inv_eps: T::from_f64(2.5),
                    rho_x: T::from_f64(0.8),
                    rho: &c.rho,
                }
            } else {
                InvBandwidth::Uniform(T::from_f64(1.25))
            };
            let metric = weighted.then_some(&c.w[..]);
            let rows = Query {
                samples: Samples::Rows {
                    data: &c.rows,
                    d: c.d,
                },
                x: &c.x,
                metric,
                offsets: &c.g,
                inv_bw,
            };
            let cols = Query {
                samples: Samples::Columns {
                    data: &c.cols,
                    m: c.m,
                },
                ..rows
            };
            out.push((rows, cols));
        }
    }
    out
}

/// The documented order, written as a plain scalar loop: lane `j % LANES` accumulates, lanes
/// combine pairwise. Any build of the pass (scalar, SSE2, AVX2, AVX-512) must give these bits.
fn scalar_reference<T: Real>(q: &Query<'_, T>, targets: &[usize], shift: T) -> (T, Vec<T>) {
    let (m, d) = (q.samples.m(), q.samples.d());
    let at = |j: usize, c: usize| match q.samples {
        Samples::Rows { data, d } => data[j * d + c],
        Samples::Columns { data, m } => data[c * m + j],
        Samples::Strided { data, stride, .. } => data[c * stride + j],
    };
    let mut sum = [T::ZERO; LANES];
    let mut acc = std::vec![[T::ZERO; LANES]; targets.len()];
    for j in 0..m {
        let mut s = T::ZERO;
        for c in 0..d {
            let t = q.x[c] - at(j, c);
            s += match q.metric {
                Some(w) => t * t * w[c],
                None => t * t,
            };
        }
        let a = match q.inv_bw {
            InvBandwidth::Uniform(k) => q.offsets[j] - s * k,
            InvBandwidth::Variable {
                half_inv_eps,
                rho_x,
                rho,
            } => q.offsets[j] - s * half_inv_eps / (rho_x + rho[j]),
        };
        let e = (a - shift).exp_poly();
        sum[j % LANES] += e;
        for (k, &t) in targets.iter().enumerate() {
            acc[k][j % LANES] += e * at(j, t);
        }
    }
    (
        reduce_lanes(sum),
        acc.into_iter().map(reduce_lanes).collect(),
    )
}

fn bits<T: Real>(v: T) -> u64 {
    v.to_f64().to_bits()
}

fn check_layouts_and_order<T: Real>() {
    for (m, d) in [
        (1, 1),
        (15, 2),
        (16, 6),
        (37, 6),
        (100, 3),
        (257, 9),
        (64, 16),
    ] {
        let c = case::<T>(m, d, m as u64);
        let targets: Vec<usize> = (0..d).rev().collect();
        for (rows, cols) in queries(&c) {
            for t in [&targets[..], &targets[..1], &[]] {
                let shift = T::from_f64(0.4);
                let a = shifted_sums(&rows, t, shift);
                let b = shifted_sums(&cols, t, shift);
                let (s, acc) = scalar_reference(&cols, t, shift);
                assert_eq!(bits(a.sum), bits(b.sum), "rows vs columns, M = {m}");
                assert_eq!(bits(a.sum), bits(s), "pass vs scalar order, M = {m}");
                for (k, &want) in acc.iter().enumerate() {
                    assert_eq!(bits(a.targets[k]), bits(b.targets[k]));
                    assert_eq!(bits(a.targets[k]), bits(want), "target {k}, M = {m}");
                }
                // The row output holds the same terms.
                let mut row = std::vec![T::ZERO; m];
                let rs = shifted_row(&cols, shift, &mut row);
                assert_eq!(bits(rs), bits(a.sum));
                // The logits' maximum is the maximum of the logits the pass used.
                let mx = max_logit(&rows);
                assert_eq!(bits(mx), bits(max_logit(&cols)));
                let e_at_max = (mx - shift).exp_poly();
                assert!(row.iter().any(|&e| bits(e) == bits(e_at_max)));
            }
        }
    }
}

#[test]
fn rows_columns_and_the_documented_scalar_order_agree_bit_for_bit() {
    check_layouts_and_order::<f64>();
    check_layouts_and_order::<f32>();
}

#[test]
fn sums_match_a_direct_libm_evaluation() {
    let c = case::<f64>(1000, 6, 7);
    for (_, q) in queries(&c) {
        let s = weighted_sums(&q, &[2, 5], 10.0).unwrap();
        let (mut se, mut a2, mut a5) = (0.0, 0.0, 0.0);
        for j in 0..c.m {
            let (mut dist, y) = (0.0, &c.rows[j * 6..j * 6 + 6]);
            for k in 0..6 {
                let wk = q.metric.map_or(1.0, |w| w[k]);
                dist += wk * (c.x[k] - y[k]) * (c.x[k] - y[k]);
            }
            let kappa = match q.inv_bw {
                InvBandwidth::Uniform(k) => k,
                InvBandwidth::Variable {
                    half_inv_eps,
                    rho_x,
                    rho,
                } => half_inv_eps / (rho_x + rho[j]),
            };
            let e = libm::exp(c.g[j] - dist * kappa - s.shift);
            se += e;
            a2 += e * y[2];
            a5 += e * y[5];
        }
        assert!((s.sum / se - 1.0).abs() < 1e-13);
        assert!((s.mean(0) - a2 / se).abs() < 1e-13);
        assert!((s.mean(1) - a5 / se).abs() < 1e-13);
    }
}

#[test]
fn a_query_far_from_the_data_falls_back_to_the_exact_maximum() {
    // f32, logits near −200: exp(a − max g) underflows everywhere, the fallback does not.
    let c = case::<f32>(200, 2, 3);
    let far = [20.0f32, -20.0];
    let q = Query {
        samples: Samples::Rows {
            data: &c.rows,
            d: 2,
        },
        x: &far,
        metric: None,
        offsets: &c.g,
        inv_bw: InvBandwidth::Uniform(0.25),
    };
    let gmax = c.g.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(shifted_sums(&q, &[0], gmax).sum, 0.0);
    let s = weighted_sums(&q, &[0, 1], gmax).unwrap();
    assert_eq!(s.shift, max_logit(&q));
    assert!(s.sum >= 1.0);
    // The mean is that of a libm evaluation in f64.
    let mx = s.shift as f64;
    let (mut se, mut a0) = (0.0f64, 0.0f64);
    for j in 0..200 {
        let (y0, y1) = (c.rows[2 * j] as f64, c.rows[2 * j + 1] as f64);
        let dist = (20.0 - y0).powi(2) + (-20.0 - y1).powi(2);
        let e = libm::exp(c.g[j] as f64 - 0.25 * dist - mx);
        se += e;
        a0 += e * y0;
    }
    assert!((s.mean(0) as f64 - a0 / se).abs() < 1e-4);
    assert!(((s.log_sum_exp() as f64) - (mx + se.ln())).abs() < 1e-3);
    // Non-finite logits: no result.
    let nan = [f32::NAN, 0.0];
    assert!(weighted_sums(&Query { x: &nan, ..q }, &[], gmax).is_none());
}

#[test]
fn cached_logits_give_the_pass_bits() {
    for (m, d) in [(37usize, 3usize), (64, 6)] {
        let c = case::<f64>(m, d, 9);
        let zero_g = std::vec![0.0; m];
        for (q, _) in queries(&c) {
            // A cached log T row holds −(s_j κ_j).
            let row: Vec<f64> = (0..m)
                .map(|j| {
                    let mut dist = 0.0;
                    for k in 0..d {
                        let t = c.x[k] - c.rows[j * d + k];
                        dist += match q.metric {
                            Some(w) => t * t * w[k],
                            None => t * t,
                        };
                    }
                    -(match q.inv_bw {
                        InvBandwidth::Uniform(k) => dist * k,
                        InvBandwidth::Variable {
                            half_inv_eps,
                            rho_x,
                            rho,
                        } => dist * half_inv_eps / (rho_x + rho[j]),
                    })
                })
                .collect();
            let a = weighted_sums(&q, &[], 0.1).unwrap();
            let b = logit_row_sums(&row, Some(&c.g), 0.1).unwrap();
            assert_eq!(bits(a.sum), bits(b.sum));
            let zq = Query {
                offsets: &zero_g,
                ..q
            };
            let a = weighted_sums(&zq, &[], 0.0).unwrap();
            let b = logit_row_sums(&row, None, 0.0).unwrap();
            assert_eq!(bits(a.sum), bits(b.sum));
        }
    }
}
