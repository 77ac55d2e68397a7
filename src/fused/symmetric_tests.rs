//! The symmetric pass's tests, compiled twice like the fused pass's (`src/fused/tests.rs`, its
//! sibling module in both builds): as unit tests against the portable build and by
//! `tests/fused_builds.rs` against the build chosen at run time. Both must give the bits of the
//! documented scalar order.
use sbridge::fused::symmetric::{
    row_sums_with, tile_blocks, tile_range, tiles, KernelSource, SymmetricKernel, TILE,
};
use sbridge::fused::LANES;
use sbridge::kernel::InvBandwidth;
use sbridge::real::Real;
use sbridge::rng::Rng;
use std::vec::Vec;

// The sibling module `tests` (`src/fused/tests.rs`) in both builds of these tests.
use super::tests::reduce_lanes;

/// [`row_sums_with`] on one thread.
fn row_sums<T: Real>(k: &SymmetricKernel<'_, T>, g: &[T], sums: &mut [T], parts: &mut [T]) {
    row_sums_with(k.m, sums, parts, &mut |ti, tj, rp, cs| {
        tile_blocks(k, g, ti, tj, rp, cs)
    })
}

/// The documented order, written as plain scalar loops.
fn reference<T: Real>(
    m: usize,
    d: usize,
    x: &[T],
    w: Option<&[T]>,
    inv_bw: InvBandwidth<'_, T>,
    g: &[T],
) -> Vec<T> {
    let p = |i: usize, j: usize| -> T {
        let mut s = T::ZERO;
        for c in 0..d {
            let t = x[i * d + c] - x[j * d + c];
            s += match w {
                Some(w) => t * t * w[c],
                None => t * t,
            };
        }
        let gij = g[i] + g[j];
        let a = match inv_bw {
            InvBandwidth::Uniform(k) => gij - s * k,
            InvBandwidth::Variable {
                half_inv_eps, rho, ..
            } => gij - s * half_inv_eps / (rho[i] + rho[j]),
        };
        a.exp_poly()
    };
    let nt = tiles(m);
    let row_part = |i: usize, tj: usize| -> T {
        let cols = tile_range(tj, m);
        let mut lanes = [T::ZERO; LANES];
        for (q, j) in cols.clone().enumerate() {
            lanes[q % LANES] += p(i, j);
        }
        reduce_lanes(lanes)
    };
    let col_part = |ti: usize, j: usize| -> T {
        let mut s = T::ZERO;
        for i in tile_range(ti, m) {
            s += p(i, j);
        }
        s
    };
    (0..m)
        .map(|i| {
            let ti = i / TILE;
            let mut s = T::ZERO;
            for tj in 0..ti {
                s += col_part(tj, i);
            }
            for tj in ti..nt {
                s += row_part(i, tj);
            }
            s
        })
        .collect()
}

fn check<T: Real>(m: usize, d: usize, seed: u64, weighted: bool, variable: bool) {
    let mut rng = Rng::new(seed, 7);
    let x: Vec<T> = (0..m * d).map(|_| T::from_f64(rng.normal())).collect();
    let mut cols = std::vec![T::ZERO; m * d];
    sbridge::bridge::transpose_samples(&x, d, &mut cols);
    let g: Vec<T> = (0..m).map(|_| T::from_f64(0.3 * rng.normal())).collect();
    let rho: Vec<T> = (0..m)
        .map(|_| T::from_f64(0.5 + rng.uniform_open0()))
        .collect();
    let w: Vec<T> = (0..d)
        .map(|_| T::from_f64(0.5 + rng.uniform_open0()))
        .collect();
    let eps = T::from_f64(0.7);
    let inv_bw = InvBandwidth::for_eps(eps, T::ONE, variable.then_some(&rho[..]));
    let metric = weighted.then_some(&w[..]);
    let want = reference(m, d, &x, metric, inv_bw, &g);
    let k = SymmetricKernel {
        m,
        source: KernelSource::Computed {
            rows: &x,
            columns: &cols,
            d,
            metric,
            inv_bw,
        },
    };
    let mut sums = std::vec![T::ZERO; m];
    let mut parts = std::vec![T::ZERO; tiles(m) * TILE];
    row_sums(&k, &g, &mut sums, &mut parts);
    let what = std::format!("{} m={m} d={d} w={weighted} rho={variable}", T::NAME);
    for i in 0..m {
        assert_eq!(sums[i].to_f64(), want[i].to_f64(), "{what}: row {i}");
    }
    // The cached log T (as `log_kernel_row` writes it) gives the same bits.
    let mut log_t = std::vec![T::ZERO; m * m];
    let ones = std::vec![T::ONE; d];
    for i in 0..m {
        let bw = InvBandwidth::for_eps(eps, rho[i], variable.then_some(&rho[..]));
        sbridge::kernel::log_kernel_row(
            &x,
            d,
            &x[i * d..(i + 1) * d],
            metric.unwrap_or(&ones),
            None,
            bw,
            &mut log_t[i * m..(i + 1) * m],
        );
    }
    let kc = SymmetricKernel {
        m,
        source: KernelSource::Cached { log_t: &log_t },
    };
    let mut cached = std::vec![T::ZERO; m];
    row_sums(&kc, &g, &mut cached, &mut parts);
    for i in 0..m {
        assert_eq!(
            cached[i].to_f64(),
            sums[i].to_f64(),
            "{what} cached: row {i}"
        );
    }
}

#[test]
fn follows_the_documented_order_bit_for_bit() {
    // One tile, a partial chunk; several tiles with a short last tile; exact tiles.
    for &(m, d) in &[
        (1, 2),
        (13, 3),
        (40, 6),
        (300, 6),
        (2 * TILE, 2),
        (3 * TILE + 37, 6),
    ] {
        for (weighted, variable) in [(false, false), (true, false), (false, true), (true, true)] {
            check::<f64>(m, d, m as u64, weighted, variable);
            check::<f32>(m, d, m as u64 + 1, weighted, variable);
        }
    }
}

#[test]
fn blocks_split_over_any_grouping_give_the_same_bits() {
    let (m, d) = (5 * TILE + 3, 4);
    let mut rng = Rng::new(5, 1);
    let x: Vec<f64> = (0..m * d).map(|_| rng.normal()).collect();
    let mut cols = std::vec![0.0; m * d];
    sbridge::bridge::transpose_samples(&x, d, &mut cols);
    let g: Vec<f64> = (0..m).map(|_| 0.2 * rng.normal()).collect();
    let k = SymmetricKernel {
        m,
        source: KernelSource::Computed {
            rows: &x,
            columns: &cols,
            d,
            metric: None,
            inv_bw: InvBandwidth::Uniform(0.4),
        },
    };
    let nt = tiles(m);
    let mut parts = std::vec![0.0; nt * TILE];
    let mut one = std::vec![0.0; m];
    row_sums(&k, &g, &mut one, &mut parts);
    // Each tile row's J-range cut into pieces of `width` tiles, computed last piece first.
    for width in [1usize, 2, 4] {
        let mut split = std::vec![0.0; m];
        row_sums_with(m, &mut split, &mut parts, &mut |ti, tj, rp, cs| {
            let pieces: Vec<usize> = tj.clone().step_by(width).collect();
            for &p0 in pieces.iter().rev() {
                let p1 = (p0 + width).min(tj.end);
                let a = (p0 - tj.start) * TILE;
                let b = ((p1 - tj.start) * TILE).min(rp.len());
                let cb = ((p1 - tj.start) * TILE).min(cs.len());
                tile_blocks(&k, &g, ti, p0..p1, &mut rp[a..b], &mut cs[a..cb]);
            }
        });
        assert_eq!(split, one, "pieces of {width} tiles");
    }
}
