//! Heads and neighbourhoods (paper 000 §3): which coordinates each head's kernel sees and which it
//! writes, in compressed (CSR) form over caller storage.
//!
//! A head `α` has a neighbourhood `Λ(α)` of `d_α ≤` [`MAX_HEAD_DIM`] distinct coordinates and a
//! non-empty target set inside it; no coordinate is targeted by two heads. The plain bridge is the
//! one head that sees and writes all `d` coordinates ([`single_head`]); the localized bridge has
//! one head per sampled coordinate. Builders, all allocation-free, fill a [`LayoutStorage`] sized
//! by the matching `*_sizes` function:
//!
//! * [`periodic_stencil`]: `Λ(a) = {a−r, …, a+r} mod n`, target `a`, on a ring of `n` points;
//! * [`closure_layout`]: state `x = (block_0, …, block_{B−1})` of `B` blocks of `K` (e.g. `(z, ψ)`
//!   or `(z, ψ_prev, ψ)`), heads for the last block: the head of `ψ_k` sees coordinates
//!   `k−r..k+r` (periodic) of every block;
//! * [`temporal_blocks`]: the Markov blocks of 000 eq. (57) for a process of `s` components at
//!   `K+1` times: the heads of time `t ≥ 1` see times `t−1` and `t`, those of time 0 see time 0;
//! * explicit lists through [`HeadLayout::new`].

use crate::dense::MAX_DENSE_DIM;
use crate::error::{check_room, Arg, Error};

/// Largest neighbourhood of one head (`d_α`): the head's dense KDE and covariance algebra is done
/// in fixed-size matrices of this size.
pub const MAX_HEAD_DIM: usize = MAX_DENSE_DIM;

/// Validated heads in CSR form: head `h` sees `nb_coords[nb_offsets[h]..nb_offsets[h+1]]` and
/// writes `tg_coords[tg_offsets[h]..tg_offsets[h+1]]` (global coordinate indices).
#[derive(Clone, Copy, Debug)]
pub struct HeadLayout<'a> {
    d: usize,
    nb_offsets: &'a [u32],
    nb_coords: &'a [u32],
    tg_offsets: &'a [u32],
    tg_coords: &'a [u32],
}

/// Sizes of the four CSR arrays of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutSizes {
    /// Number of heads (the offset arrays have one more entry).
    pub heads: usize,
    /// Total neighbourhood entries.
    pub nb: usize,
    /// Total target entries.
    pub tg: usize,
}

/// Caller storage a builder fills (lengths from the builder's `*_sizes`).
#[derive(Debug)]
pub struct LayoutStorage<'a> {
    /// `heads + 1` neighbourhood offsets.
    pub nb_offsets: &'a mut [u32],
    /// Neighbourhood coordinates.
    pub nb_coords: &'a mut [u32],
    /// `heads + 1` target offsets.
    pub tg_offsets: &'a mut [u32],
    /// Target coordinates.
    pub tg_coords: &'a mut [u32],
}

impl<'a> HeadLayout<'a> {
    /// Checks a layout over `d` coordinates: offsets start at 0, never decrease and end at the
    /// array lengths; every neighbourhood has `1..=MAX_HEAD_DIM` distinct coordinates `< d`;
    /// every head has at least one target, all inside its neighbourhood; no coordinate is targeted
    /// twice.
    pub fn new(
        d: usize,
        nb_offsets: &'a [u32],
        nb_coords: &'a [u32],
        tg_offsets: &'a [u32],
        tg_coords: &'a [u32],
    ) -> Result<Self, Error> {
        if d == 0 {
            return Err(Error::ZeroDimension);
        }
        if nb_offsets.len() < 2 || tg_offsets.len() != nb_offsets.len() {
            return Err(Error::InvalidLayout);
        }
        let csr_ok = |off: &[u32], len: usize| {
            off[0] == 0
                && off.windows(2).all(|w| w[0] <= w[1])
                && off[off.len() - 1] as usize == len
        };
        if !csr_ok(nb_offsets, nb_coords.len()) || !csr_ok(tg_offsets, tg_coords.len()) {
            return Err(Error::InvalidLayout);
        }
        let layout = HeadLayout {
            d,
            nb_offsets,
            nb_coords,
            tg_offsets,
            tg_coords,
        };
        for h in 0..layout.n_heads() {
            let nb = layout.neighbourhood(h);
            if nb.len() > MAX_HEAD_DIM {
                return Err(Error::Capacity {
                    limit: MAX_HEAD_DIM,
                    requested: nb.len(),
                });
            }
            let tg = layout.targets(h);
            if nb.is_empty() || tg.is_empty() {
                return Err(Error::InvalidLayout);
            }
            for (k, &c) in nb.iter().enumerate() {
                if c as usize >= d || nb[..k].contains(&c) {
                    return Err(Error::InvalidIndex);
                }
            }
            if !tg.iter().all(|t| nb.contains(t)) {
                return Err(Error::InvalidLayout);
            }
        }
        // Each coordinate targeted at most once (quadratic in the number of targets, done once).
        for (k, &t) in tg_coords.iter().enumerate() {
            if tg_coords[..k].contains(&t) {
                return Err(Error::InvalidLayout);
            }
        }
        Ok(layout)
    }

    /// Dimension `d` of the full state.
    pub fn d(&self) -> usize {
        self.d
    }
    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.nb_offsets.len() - 1
    }
    /// `Λ(h)`: the coordinates head `h` sees.
    pub fn neighbourhood(&self, h: usize) -> &'a [u32] {
        &self.nb_coords[self.nb_offsets[h] as usize..self.nb_offsets[h + 1] as usize]
    }
    /// The coordinates head `h` writes.
    pub fn targets(&self, h: usize) -> &'a [u32] {
        &self.tg_coords[self.tg_offsets[h] as usize..self.tg_offsets[h + 1] as usize]
    }
    /// The four CSR arrays `(nb_offsets, nb_coords, tg_offsets, tg_coords)`.
    pub fn arrays(&self) -> (&'a [u32], &'a [u32], &'a [u32], &'a [u32]) {
        (
            self.nb_offsets,
            self.nb_coords,
            self.tg_offsets,
            self.tg_coords,
        )
    }
    /// Sizes of the CSR arrays.
    pub fn sizes(&self) -> LayoutSizes {
        LayoutSizes {
            heads: self.n_heads(),
            nb: self.nb_coords.len(),
            tg: self.tg_coords.len(),
        }
    }
    /// `true` when one head sees and writes every coordinate (the plain, unlocalized bridge).
    pub fn is_single_full_head(&self) -> bool {
        self.n_heads() == 1 && self.nb_coords.len() == self.d && self.tg_coords.len() == self.d
    }
    /// Largest neighbourhood.
    pub fn max_head_dim(&self) -> usize {
        (0..self.n_heads())
            .map(|h| self.neighbourhood(h).len())
            .max()
            .unwrap_or(0)
    }
}

impl LayoutStorage<'_> {
    fn check(&self, s: LayoutSizes) -> Result<(), Error> {
        if s.heads >= u32::MAX as usize || s.nb >= u32::MAX as usize || s.tg >= u32::MAX as usize {
            return Err(Error::Capacity {
                limit: u32::MAX as usize,
                requested: s.heads.max(s.nb).max(s.tg),
            });
        }
        check_room(Arg::Output, s.heads + 1, self.nb_offsets.len())?;
        check_room(Arg::Output, s.nb, self.nb_coords.len())?;
        check_room(Arg::Output, s.heads + 1, self.tg_offsets.len())?;
        check_room(Arg::Output, s.tg, self.tg_coords.len())
    }
}

/// Fills `st` head by head with `each(h, nb_out, tg_out) -> (n_nb, n_tg)` and validates.
fn build<'s>(
    d: usize,
    s: LayoutSizes,
    st: LayoutStorage<'s>,
    mut each: impl FnMut(usize, &mut [u32], &mut [u32]) -> (usize, usize),
) -> Result<HeadLayout<'s>, Error> {
    st.check(s)?;
    let LayoutStorage {
        nb_offsets,
        nb_coords,
        tg_offsets,
        tg_coords,
    } = st;
    let (mut nb_at, mut tg_at) = (0usize, 0usize);
    nb_offsets[0] = 0;
    tg_offsets[0] = 0;
    for h in 0..s.heads {
        let (nn, nt) = each(h, &mut nb_coords[nb_at..], &mut tg_coords[tg_at..]);
        nb_at += nn;
        tg_at += nt;
        nb_offsets[h + 1] = nb_at as u32;
        tg_offsets[h + 1] = tg_at as u32;
    }
    HeadLayout::new(
        d,
        &nb_offsets[..s.heads + 1],
        &nb_coords[..nb_at],
        &tg_offsets[..s.heads + 1],
        &tg_coords[..tg_at],
    )
}

fn wrap(i: isize, n: usize) -> u32 {
    i.rem_euclid(n as isize) as u32
}

/// Sizes for [`single_head`].
pub const fn single_head_sizes(d: usize) -> LayoutSizes {
    LayoutSizes {
        heads: 1,
        nb: d,
        tg: d,
    }
}

/// One head that sees and writes all `d` coordinates: the plain bridge.
pub fn single_head(d: usize, st: LayoutStorage<'_>) -> Result<HeadLayout<'_>, Error> {
    build(d, single_head_sizes(d), st, |_, nb, tg| {
        for c in 0..d {
            nb[c] = c as u32;
            tg[c] = c as u32;
        }
        (d, d)
    })
}

/// Sizes for [`periodic_stencil`].
/// Sizes saturate at `usize::MAX` instead of overflowing (such a layout cannot be built).
pub const fn periodic_stencil_sizes(n: usize, r: usize) -> LayoutSizes {
    LayoutSizes {
        heads: n,
        nb: n.saturating_mul(stencil_width(r)),
        tg: n,
    }
}

/// `2r + 1`, saturating.
const fn stencil_width(r: usize) -> usize {
    r.saturating_mul(2).saturating_add(1)
}

/// Ring of `n` points, head `a` sees `{a−r, …, a+r} mod n` (in that order) and writes `a`.
/// Errors: [`Error::InvalidLayout`] when `2r + 1 > n` (the stencil would wrap onto itself).
pub fn periodic_stencil(
    n: usize,
    r: usize,
    st: LayoutStorage<'_>,
) -> Result<HeadLayout<'_>, Error> {
    if stencil_width(r) > n {
        return Err(Error::InvalidLayout);
    }
    build(n, periodic_stencil_sizes(n, r), st, |a, nb, tg| {
        for (k, o) in (-(r as isize)..=r as isize).enumerate() {
            nb[k] = wrap(a as isize + o, n);
        }
        tg[0] = a as u32;
        (2 * r + 1, 1)
    })
}

/// Sizes for [`closure_layout`] (saturating).
pub const fn closure_layout_sizes(k: usize, blocks: usize, r: usize) -> LayoutSizes {
    LayoutSizes {
        heads: k,
        nb: k.saturating_mul(blocks).saturating_mul(stencil_width(r)),
        tg: k,
    }
}

/// The slow/closure layout: state of `blocks` blocks of `k` coordinates (block `b` holds
/// coordinates `b k .. (b+1) k`), one head per coordinate of the last block. The head of
/// coordinate `k'` of the last block sees coordinates `k'−r..k'+r` (periodic in `k`) of every
/// block and writes its own. With `blocks = 2`, `r = 1` this is paper 000 §5.1's
/// `Λ(α) = {α−1, α, α+1, K+α−1, K+α, K+α+1}`.
/// Errors: [`Error::InvalidLayout`] for `blocks = 0` or `2r + 1 > k`.
pub fn closure_layout(
    k: usize,
    blocks: usize,
    r: usize,
    st: LayoutStorage<'_>,
) -> Result<HeadLayout<'_>, Error> {
    if blocks == 0 || stencil_width(r) > k || k.checked_mul(blocks).is_none() {
        return Err(Error::InvalidLayout);
    }
    let per = blocks * (2 * r + 1);
    build(
        k * blocks,
        closure_layout_sizes(k, blocks, r),
        st,
        |a, nb, tg| {
            let mut n = 0;
            for b in 0..blocks {
                for o in -(r as isize)..=r as isize {
                    nb[n] = (b * k) as u32 + wrap(a as isize + o, k);
                    n += 1;
                }
            }
            tg[0] = ((blocks - 1) * k + a) as u32;
            (per, 1)
        },
    )
}

/// Sizes for [`temporal_blocks`] (saturating).
pub const fn temporal_blocks_sizes(s: usize, k: usize) -> LayoutSizes {
    let heads = k.saturating_add(1).saturating_mul(s);
    let ss = s.saturating_mul(s);
    LayoutSizes {
        heads,
        nb: ss.saturating_add(k.saturating_mul(ss).saturating_mul(2)),
        tg: heads,
    }
}

/// The Markov blocks of paper 000 eq. (57) for a process with `s` components at `K+1` times
/// (`d = (K+1) s`, time `t` at coordinates `t s .. (t+1) s`): the heads of time 0 see time 0; the
/// heads of time `t ≥ 1` see times `t−1` and `t`; each writes its own coordinate. (The paper
/// prints `l = 0..K−2`, which leaves the last time without heads; we cover all `K+1` times.)
pub fn temporal_blocks(s: usize, k: usize, st: LayoutStorage<'_>) -> Result<HeadLayout<'_>, Error> {
    if s == 0 {
        return Err(Error::ZeroDimension);
    }
    if temporal_blocks_sizes(s, k).nb == usize::MAX {
        return Err(Error::InvalidLayout);
    }
    build((k + 1) * s, temporal_blocks_sizes(s, k), st, |a, nb, tg| {
        let t = a / s;
        let first = if t == 0 { 0 } else { (t - 1) * s };
        let n = (t + 1) * s - first;
        for (i, c) in (first..(t + 1) * s).enumerate() {
            nb[i] = c as u32;
        }
        tg[0] = a as u32;
        (n, 1)
    })
}

/// Checks that `coords` are distinct indices `< d` (for conditioning sets given as `u32`).
pub(crate) fn check_coords(d: usize, coords: &[u32]) -> Result<(), Error> {
    for (k, &c) in coords.iter().enumerate() {
        if c as usize >= d || coords[..k].contains(&c) {
            return Err(Error::InvalidIndex);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn storage<'a>(
        a: &'a mut [u32],
        b: &'a mut [u32],
        c: &'a mut [u32],
        d: &'a mut [u32],
    ) -> LayoutStorage<'a> {
        LayoutStorage {
            nb_offsets: a,
            nb_coords: b,
            tg_offsets: c,
            tg_coords: d,
        }
    }

    #[test]
    fn periodic_stencil_wraps() {
        let (mut a, mut b, mut c, mut d) = ([0; 8], [0; 21], [0; 8], [0; 7]);
        let l = periodic_stencil(7, 1, storage(&mut a, &mut b, &mut c, &mut d)).unwrap();
        assert_eq!(l.n_heads(), 7);
        assert_eq!(l.neighbourhood(0), &[6, 0, 1]);
        assert_eq!(l.neighbourhood(6), &[5, 6, 0]);
        assert_eq!(l.targets(3), &[3]);
        assert!(!l.is_single_full_head());
        let (mut a, mut b, mut c, mut d) = ([0; 8], [0; 21], [0; 8], [0; 7]);
        assert_eq!(
            periodic_stencil(2, 1, storage(&mut a, &mut b, &mut c, &mut d)).err(),
            Some(Error::InvalidLayout)
        );
    }

    #[test]
    fn closure_layout_matches_paper_000_section_5_1() {
        let k = 12;
        let s = closure_layout_sizes(k, 2, 1);
        let (mut a, mut b, mut c, mut d) = (
            vec![0; s.heads + 1],
            vec![0; s.nb],
            vec![0; s.heads + 1],
            vec![0; s.tg],
        );
        let l = closure_layout(k, 2, 1, storage(&mut a, &mut b, &mut c, &mut d)).unwrap();
        assert_eq!(l.d(), 24);
        // Head of ψ_0 (coordinate 12) sees z_11, z_0, z_1, ψ_11, ψ_0, ψ_1.
        assert_eq!(l.neighbourhood(0), &[11, 0, 1, 23, 12, 13]);
        assert_eq!(l.targets(0), &[12]);
        assert_eq!(l.targets(11), &[23]);
    }

    #[test]
    fn temporal_blocks_follow_eq_57() {
        let s = temporal_blocks_sizes(2, 3);
        let (mut a, mut b, mut c, mut d) = (
            vec![0; s.heads + 1],
            vec![0; s.nb],
            vec![0; s.heads + 1],
            vec![0; s.tg],
        );
        let l = temporal_blocks(2, 3, storage(&mut a, &mut b, &mut c, &mut d)).unwrap();
        assert_eq!(l.d(), 8);
        assert_eq!(l.neighbourhood(0), &[0, 1]);
        assert_eq!(l.neighbourhood(1), &[0, 1]);
        assert_eq!(l.neighbourhood(2), &[0, 1, 2, 3]);
        assert_eq!(l.neighbourhood(7), &[4, 5, 6, 7]);
        assert_eq!(l.targets(7), &[7]);
    }

    #[test]
    fn explicit_layout_errors() {
        // Target outside its neighbourhood.
        assert_eq!(
            HeadLayout::new(3, &[0, 2], &[0, 1], &[0, 1], &[2]).err(),
            Some(Error::InvalidLayout)
        );
        // Same coordinate targeted twice.
        assert_eq!(
            HeadLayout::new(3, &[0, 2, 4], &[0, 1, 1, 2], &[0, 1, 2], &[1, 1]).err(),
            Some(Error::InvalidLayout)
        );
        // Coordinate out of range, repeated coordinate, decreasing offsets, wrong end.
        assert_eq!(
            HeadLayout::new(3, &[0, 2], &[0, 3], &[0, 1], &[0]).err(),
            Some(Error::InvalidIndex)
        );
        assert_eq!(
            HeadLayout::new(3, &[0, 2], &[0, 0], &[0, 1], &[0]).err(),
            Some(Error::InvalidIndex)
        );
        assert_eq!(
            HeadLayout::new(3, &[0, 2, 1], &[0, 1], &[0, 1, 1], &[0]).err(),
            Some(Error::InvalidLayout)
        );
        assert_eq!(
            HeadLayout::new(3, &[0, 3], &[0, 1], &[0, 1], &[0]).err(),
            Some(Error::InvalidLayout)
        );
        // Over capacity.
        let nb: [u32; 17] = core::array::from_fn(|i| i as u32);
        assert_eq!(
            HeadLayout::new(20, &[0, 17], &nb, &[0, 1], &[0]).err(),
            Some(Error::Capacity {
                limit: 16,
                requested: 17
            })
        );
        let l = HeadLayout::new(2, &[0, 2], &[0, 1], &[0, 2], &[0, 1]).unwrap();
        assert!(l.is_single_full_head());
    }
}
