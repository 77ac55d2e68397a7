//! `--layout` specifications and owned head layouts built from them.

use crate::{CliError, CliResult};
use sbridge::layout::{
    closure_layout, closure_layout_sizes, periodic_stencil, periodic_stencil_sizes, single_head,
    single_head_sizes, temporal_blocks, temporal_blocks_sizes,
};
use sbridge::{Error, HeadLayout, LayoutSizes, LayoutStorage, MAX_HEAD_DIM};
use std::path::{Path, PathBuf};

/// What `--layout` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutSpec {
    /// One head over every coordinate.
    Single,
    /// `stencil:R`.
    Stencil(usize),
    /// `closure:K,BLOCKS,R`.
    Closure {
        /// Coordinates per block.
        k: usize,
        /// Number of blocks.
        blocks: usize,
        /// Radius.
        r: usize,
    },
    /// `temporal:S`.
    Temporal(usize),
    /// `heads:FILE`.
    Heads(PathBuf),
}

impl LayoutSpec {
    /// Parses a `--layout` value (clap value parser).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let num = |t: &str, what: &str| -> Result<usize, String> {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("{what} must be a non-negative integer, got '{t}'"))
        };
        if s == "single" {
            return Ok(LayoutSpec::Single);
        }
        let (kind, arg) = s.split_once([':', '=']).ok_or_else(|| {
            format!(
                "unknown layout '{s}': use single, stencil:R, closure:K,BLOCKS,R, temporal:S or heads:FILE"
            )
        })?;
        match kind {
            "stencil" => Ok(LayoutSpec::Stencil(num(arg, "R")?)),
            "temporal" => {
                let s = num(arg, "S")?;
                if s == 0 {
                    return Err(String::from("S must be at least 1"));
                }
                Ok(LayoutSpec::Temporal(s))
            }
            "closure" => {
                let parts: Vec<&str> = arg.split(',').collect();
                let [k, b, r] = parts[..] else {
                    return Err(format!("closure layout needs K,BLOCKS,R, got '{arg}'"));
                };
                let (k, blocks, r) = (num(k, "K")?, num(b, "BLOCKS")?, num(r, "R")?);
                if k == 0 || blocks == 0 {
                    return Err(String::from("K and BLOCKS must be at least 1"));
                }
                Ok(LayoutSpec::Closure { k, blocks, r })
            }
            "heads" if !arg.is_empty() => Ok(LayoutSpec::Heads(PathBuf::from(arg))),
            _ => Err(format!(
                "unknown layout '{s}': use single, stencil:R, closure:K,BLOCKS,R, temporal:S or heads:FILE"
            )),
        }
    }
}

/// A head layout in owned CSR arrays.
#[derive(Clone, Debug)]
pub struct OwnedLayout {
    d: usize,
    nb_offsets: Vec<u32>,
    nb_coords: Vec<u32>,
    tg_offsets: Vec<u32>,
    tg_coords: Vec<u32>,
}

impl OwnedLayout {
    /// The validated view.
    pub fn view(&self) -> HeadLayout<'_> {
        HeadLayout::new(
            self.d,
            &self.nb_offsets,
            &self.nb_coords,
            &self.tg_offsets,
            &self.tg_coords,
        )
        .expect("an OwnedLayout is validated when built")
    }

    fn from_builder(
        d: usize,
        sizes: LayoutSizes,
        build: impl for<'s> FnOnce(LayoutStorage<'s>) -> Result<HeadLayout<'s>, Error>,
    ) -> Result<Self, Error> {
        let mut a = vec![0u32; sizes.heads + 1];
        let mut b = vec![0u32; sizes.nb];
        let mut c = vec![0u32; sizes.heads + 1];
        let mut e = vec![0u32; sizes.tg];
        let (nb, tg) = {
            let l = build(LayoutStorage {
                nb_offsets: &mut a,
                nb_coords: &mut b,
                tg_offsets: &mut c,
                tg_coords: &mut e,
            })?;
            let s = l.sizes();
            (s.nb, s.tg)
        };
        b.truncate(nb);
        e.truncate(tg);
        Ok(OwnedLayout {
            d,
            nb_offsets: a,
            nb_coords: b,
            tg_offsets: c,
            tg_coords: e,
        })
    }

    /// The slow/closure layout (`closure_layout`), for the demo.
    pub fn closure(k: usize, blocks: usize, r: usize) -> Result<Self, Error> {
        Self::from_builder(k * blocks, closure_layout_sizes(k, blocks, r), |st| {
            closure_layout(k, blocks, r, st)
        })
    }
}

fn capacity_msg(flag: &str, e: Error) -> String {
    match e {
        Error::Capacity { limit, requested } => format!(
            "{flag}: a head would see {requested} coordinates, at most {limit} are supported"
        ),
        other => format!("{flag}: {other}"),
    }
}

/// Builds the layout `spec` asks for over `d` coordinates; errors name the `--layout` value.
pub fn build(spec: &LayoutSpec, d: usize) -> CliResult<OwnedLayout> {
    match spec {
        LayoutSpec::Single => {
            if d > MAX_HEAD_DIM {
                return bad_input!(
                    "--layout single: d = {d} exceeds the largest head ({MAX_HEAD_DIM} coordinates); use a localized layout"
                );
            }
            OwnedLayout::from_builder(d, single_head_sizes(d), |st| single_head(d, st))
                .map_err(|e| CliError::Input(capacity_msg("--layout single", e)))
        }
        &LayoutSpec::Stencil(r) => {
            let flag = format!("--layout stencil:{r}");
            if 2 * r + 1 > d {
                return bad_input!("{flag}: needs 2R+1 <= d, but d = {d}");
            }
            OwnedLayout::from_builder(d, periodic_stencil_sizes(d, r), |st| {
                periodic_stencil(d, r, st)
            })
            .map_err(|e| CliError::Input(capacity_msg(&flag, e)))
        }
        &LayoutSpec::Closure { k, blocks, r } => {
            let flag = format!("--layout closure:{k},{blocks},{r}");
            if k * blocks != d {
                return bad_input!(
                    "{flag}: K*BLOCKS = {} but the data have d = {d}",
                    k * blocks
                );
            }
            if 2 * r + 1 > k {
                return bad_input!("{flag}: needs 2R+1 <= K");
            }
            OwnedLayout::closure(k, blocks, r).map_err(|e| CliError::Input(capacity_msg(&flag, e)))
        }
        &LayoutSpec::Temporal(s) => {
            let flag = format!("--layout temporal:{s}");
            if !d.is_multiple_of(s) {
                return bad_input!("{flag}: d = {d} is not a multiple of S");
            }
            let k = d / s - 1;
            OwnedLayout::from_builder(d, temporal_blocks_sizes(s, k), |st| {
                temporal_blocks(s, k, st)
            })
            .map_err(|e| CliError::Input(capacity_msg(&flag, e)))
        }
        LayoutSpec::Heads(path) => read_heads(path, d),
    }
}

/// Parses a list of coordinates separated by commas and/or spaces.
fn coords(text: &str) -> Result<Vec<u32>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| format!("'{t}' is not a coordinate index"))
        })
        .collect()
}

/// Reads a heads file: one head per line, `TARGETS : NEIGHBOURHOOD`.
fn read_heads(path: &Path, d: usize) -> CliResult<OwnedLayout> {
    let name = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return bad_input!("{name}: cannot read: {}", crate::io::io_reason(&e)),
    };
    let mut owner: Vec<Option<usize>> = vec![None; d];
    let (mut nb_off, mut nb, mut tg_off, mut tg) = (vec![0u32], Vec::new(), vec![0u32], Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((t, n)) = line.split_once(':') else {
            return bad_input!("{name}:{line_no}: expected 'TARGETS : NEIGHBOURHOOD'");
        };
        let (t, n) = match (coords(t), coords(n)) {
            (Ok(t), Ok(n)) => (t, n),
            (Err(e), _) | (_, Err(e)) => return bad_input!("{name}:{line_no}: {e}"),
        };
        if t.is_empty() || n.is_empty() {
            return bad_input!(
                "{name}:{line_no}: a head needs at least one target and one neighbour"
            );
        }
        if n.len() > MAX_HEAD_DIM {
            return bad_input!(
                "{name}:{line_no}: {} neighbours, at most {MAX_HEAD_DIM} are supported",
                n.len()
            );
        }
        for (k, &c) in n.iter().enumerate() {
            if c as usize >= d {
                return bad_input!("{name}:{line_no}: coordinate {c} is out of range (d = {d})");
            }
            if n[..k].contains(&c) {
                return bad_input!("{name}:{line_no}: coordinate {c} is repeated");
            }
        }
        for &c in &t {
            if !n.contains(&c) {
                return bad_input!("{name}:{line_no}: target {c} is not in the neighbourhood");
            }
            if let Some(other) = owner[c as usize] {
                return bad_input!(
                    "{name}:{line_no}: coordinate {c} is already targeted on line {other}"
                );
            }
            owner[c as usize] = Some(line_no);
        }
        nb.extend_from_slice(&n);
        tg.extend_from_slice(&t);
        nb_off.push(nb.len() as u32);
        tg_off.push(tg.len() as u32);
    }
    if nb_off.len() < 2 {
        return bad_input!("{name}: no heads");
    }
    let layout = OwnedLayout {
        d,
        nb_offsets: nb_off,
        nb_coords: nb,
        tg_offsets: tg_off,
        tg_coords: tg,
    };
    let ok = HeadLayout::new(
        d,
        &layout.nb_offsets,
        &layout.nb_coords,
        &layout.tg_offsets,
        &layout.tg_coords,
    );
    match ok {
        Ok(_) => Ok(layout),
        Err(e) => bad_input!("{name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(LayoutSpec::parse("single"), Ok(LayoutSpec::Single));
        assert_eq!(LayoutSpec::parse("stencil:2"), Ok(LayoutSpec::Stencil(2)));
        assert_eq!(
            LayoutSpec::parse("closure:12,2,1"),
            Ok(LayoutSpec::Closure {
                k: 12,
                blocks: 2,
                r: 1
            })
        );
        assert!(LayoutSpec::parse("closure:12,2").is_err());
        assert!(LayoutSpec::parse("ring").is_err());
        assert!(LayoutSpec::parse("temporal:0").is_err());
    }

    #[test]
    fn builds_layouts() {
        let l = build(
            &LayoutSpec::Closure {
                k: 6,
                blocks: 2,
                r: 1,
            },
            12,
        )
        .unwrap();
        assert_eq!(l.view().n_heads(), 6);
        assert!(build(&LayoutSpec::Stencil(3), 5).is_err());
        assert!(build(&LayoutSpec::Single, 17).is_err());
        let t = build(&LayoutSpec::Temporal(2), 6).unwrap();
        assert_eq!(t.view().n_heads(), 6);
    }
}
