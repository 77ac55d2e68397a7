//! A spatial order of samples: a permutation that makes every tile of
//! [`TILE`] consecutive samples one cell of a k-d partition, so
//! that each tile's bounding box is small and a truncated Sinkhorn run
//! ([`SinkhornOptions::truncation`](crate::sinkhorn::SinkhornOptions::truncation)) can skip the
//! blocks of tiles that lie far apart.
//!
//! **The partition.** A range of `n > TILE` positions is split along the coordinate of widest
//! extent `max_j x^(j)_c − min_j x^(j)_c` (the lowest such `c` on ties) after its first
//! `TILE · ⌈⌈n / TILE⌉ / 2⌉` samples in the order `(x^(j)_c, j)`, so that both halves hold whole
//! tiles (only the last tile of all may be shorter); each half is split again until a range is
//! one tile. Inside a tile the samples go in increasing index. The order is a function of the data
//! alone (a strict total order decides every split), computed in `O(M d log M)` without work space
//! beyond the order itself.
//!
//! The order never changes what a sampler samples — a bridge's law does not depend on the order
//! of its samples — but it renumbers them: a caller who sorts the data before a fit refers to
//! samples by their new positions.

use core::cmp::Ordering;

use crate::error::{check_len, Arg, Error};
use crate::fused::symmetric::TILE;
use crate::real::{check_data, Real};

/// Writes into `order` (length `M = data.len() / d`) the tile order of the sample-major `data`
/// (`M × d`): `order[k]` is the index of the sample placed at position `k` (see the module docs).
///
/// Errors: [`Error::LengthMismatch`] when `data.len()` is not `M d` for `M = order.len()`;
/// [`Error::ZeroDimension`] for `d = 0`; [`Error::NonFiniteData`] or [`Error::OutOfRange`] for a
/// coordinate [`Dataset::new`](crate::Dataset::new) would refuse; [`Error::Capacity`] when
/// `M ≥ 2³¹`.
pub fn tile_order<T: Real>(data: &[T], d: usize, order: &mut [u32]) -> Result<(), Error> {
    let m = order.len();
    check_order_len(m)?;
    if d == 0 {
        return Err(Error::ZeroDimension);
    }
    check_len(Arg::Data, m.saturating_mul(d), data.len())?;
    check_data(data)?;
    for (k, o) in order.iter_mut().enumerate() {
        *o = k as u32;
    }
    split(data, d, order);
    Ok(())
}

/// Rearranges the rows of the sample-major `data` (`M × d`) in place so that row `k` becomes the
/// old row `order[k]`; `order` (a permutation of `0..M`, as [`tile_order`] writes it) is the same
/// afterwards. Apply it to every array indexed by sample (targets, bandwidths) with its own `d`.
///
/// Errors: [`Error::LengthMismatch`] when `data.len() ≠ M d`; [`Error::InvalidLayout`] when
/// `order` is not a permutation (then `data` is unchanged); [`Error::Capacity`] when `M ≥ 2³¹`.
pub fn permute_rows<T: Copy>(data: &mut [T], d: usize, order: &mut [u32]) -> Result<(), Error> {
    let m = order.len();
    check_order_len(m)?;
    check_len(Arg::Data, m.saturating_mul(d), data.len())?;
    // A permutation: every value below M and none twice. Slot `j` is marked with the top bit
    // once the value `j` has been seen; the marks are cleared before returning.
    const MARK: u32 = 1 << 31;
    let mut valid = true;
    for k in 0..m {
        let j = (order[k] & !MARK) as usize;
        if j >= m || order[j] & MARK != 0 {
            valid = false;
            break;
        }
        order[j] |= MARK;
    }
    for o in order.iter_mut() {
        *o &= !MARK;
    }
    if !valid {
        return Err(Error::InvalidLayout);
    }
    // Cycle by cycle: row k ← row order[k]; a visited position is marked with the top bit.
    for start in 0..m {
        if order[start] & MARK != 0 || order[start] as usize == start {
            continue;
        }
        for c in 0..d {
            let first = data[start * d + c];
            let mut k = start;
            loop {
                let next = order[k] as usize;
                if next == start {
                    data[k * d + c] = first;
                    break;
                }
                data[k * d + c] = data[next * d + c];
                k = next;
            }
        }
        let mut k = start;
        loop {
            let next = order[k] as usize;
            order[k] |= MARK;
            if next == start {
                break;
            }
            k = next;
        }
    }
    for o in order.iter_mut() {
        *o &= !MARK;
    }
    Ok(())
}

fn check_order_len(m: usize) -> Result<(), Error> {
    if m >= 1 << 31 {
        return Err(Error::Capacity {
            limit: (1 << 31) - 1,
            requested: m,
        });
    }
    Ok(())
}

/// Splits `order` (a range of positions) as the module docs say, recursively (depth
/// `⌈log₂(M / TILE)⌉`).
fn split<T: Real>(data: &[T], d: usize, order: &mut [u32]) {
    let n = order.len();
    if n <= TILE {
        order.sort_unstable();
        return;
    }
    let mut widest = 0;
    let mut width = T::NEG_INFINITY;
    for c in 0..d {
        let (mut lo, mut hi) = (T::INFINITY, T::NEG_INFINITY);
        for &j in order.iter() {
            let v = data[j as usize * d + c];
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi - lo > width {
            (widest, width) = (c, hi - lo);
        }
    }
    let cut = TILE * n.div_ceil(TILE).div_ceil(2);
    let key = |&a: &u32, &b: &u32| {
        let (va, vb) = (data[a as usize * d + widest], data[b as usize * d + widest]);
        va.partial_cmp(&vb)
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    };
    order.select_nth_unstable_by(cut, key);
    let (low, high) = order.split_at_mut(cut);
    split(data, d, low);
    split(data, d, high);
}
