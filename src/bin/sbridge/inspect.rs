//! `sbridge inspect`: print what a model image holds and check it; also the shared model loader.

use crate::args::InspectArgs;
use crate::{CliError, CliResult};
use sbridge::model::{checksum, ImageFloat, MAGIC};
use sbridge::model_io::{ModelImage, ModelIoError};
use sbridge::ModelView;
use std::fmt::Write as _;
use std::path::Path;

/// Reads a model file into aligned storage (not validated).
pub fn read_image(path: &Path) -> CliResult<ModelImage> {
    ModelImage::read_file(path).map_err(|e| match e {
        ModelIoError::Io { source, .. } => CliError::Input(format!(
            "{}: cannot read: {}",
            path.display(),
            crate::io::io_reason(&source)
        )),
        other => CliError::Input(format!("{}: {other}", path.display())),
    })
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The float size recorded in an image header (4 or 8), or the reason it cannot be read.
pub fn float_size(path: &Path, b: &[u8]) -> CliResult<usize> {
    if b.len() < 128 {
        return bad_input!(
            "{}: not a model image: {} bytes, shorter than the 128-byte header",
            path.display(),
            b.len()
        );
    }
    if b[..8] != MAGIC {
        return bad_input!("{}: not a model image (bad magic bytes)", path.display());
    }
    match u32_at(b, 16) {
        4 => Ok(4),
        8 => Ok(8),
        n => bad_input!(
            "{}: model image corrupt: float size {n} (must be 4 or 8)",
            path.display()
        ),
    }
}

/// Opens (validates) the image as float kind `T`; errors name the file.
pub fn open<'a, T: ImageFloat>(path: &Path, image: &'a ModelImage) -> CliResult<ModelView<'a, T>> {
    image
        .view::<T>()
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
}

fn header_text(path: &Path, b: &[u8]) -> String {
    let mut s = String::new();
    let fs = u32_at(b, 16);
    let flags = u32_at(b, 20);
    let declared = u64_at(b, 24);
    let _ = writeln!(
        s,
        "file              {} ({} bytes)",
        path.display(),
        b.len()
    );
    let _ = writeln!(
        s,
        "format            {}.{} (header {} bytes, head entries {} bytes)",
        u16_at(b, 8),
        u16_at(b, 10),
        u32_at(b, 12),
        u32_at(b, 64)
    );
    let kind = match fs {
        4 => "f32".to_string(),
        8 => "f64".to_string(),
        n => format!("unknown ({n}-byte)"),
    };
    let _ = writeln!(s, "float kind        {kind}");
    let _ = writeln!(s, "image length      {declared} bytes");
    let _ = writeln!(s, "d                 {}", u32_at(b, 32));
    let _ = writeln!(s, "heads             {}", u32_at(b, 36));
    let _ = writeln!(s, "M (samples)       {}", u64_at(b, 40));
    let _ = writeln!(s, "epsilon           {}", f64::from_bits(u64_at(b, 48)));
    if flags & 1 != 0 {
        let _ = writeln!(
            s,
            "bandwidth         variable, beta = {}",
            f64::from_bits(u64_at(b, 56))
        );
    } else {
        let _ = writeln!(s, "bandwidth         fixed");
    }
    let _ = writeln!(
        s,
        "scales            {}",
        if flags & 2 != 0 {
            "per coordinate"
        } else {
            "none (Euclidean metric)"
        }
    );
    let stored = u64_at(b, 120);
    if declared <= b.len() as u64 {
        let computed = checksum(&b[..declared as usize]);
        let verdict = if computed == stored { "OK" } else { "MISMATCH" };
        let _ = writeln!(s, "checksum          {stored:#018x} {verdict}");
    } else {
        let _ = writeln!(
            s,
            "checksum          {stored:#018x} not checked: the file is shorter than the image"
        );
    }
    s
}

fn list(v: &[u32]) -> String {
    let parts: Vec<String> = v.iter().map(u32::to_string).collect();
    parts.join(",")
}

fn heads_text<T: ImageFloat>(view: &ModelView<'_, T>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{:>5} {:>4} {:<14} {:<30} {:>10} {:>10}",
        "head", "d_a", "targets", "neighbourhood", "iterations", "residual"
    );
    let (mut max_it, mut max_res) = (0u32, 0.0f64);
    for h in 0..view.n_heads() {
        let head = view.head(h);
        let (it, res) = view.head_fit(h).unwrap_or((0, f64::NAN));
        max_it = max_it.max(it);
        max_res = max_res.max(res);
        let _ = writeln!(
            s,
            "{h:>5} {:>4} {:<14} {:<30} {it:>10} {res:>10.2e}",
            head.coords.len(),
            list(head.targets),
            list(head.coords),
        );
    }
    let _ = writeln!(
        s,
        "\nvalid model: {} head(s), max d_a = {}, Sinkhorn at most {max_it} iterations, residual <= {max_res:.2e}",
        view.n_heads(),
        view.max_head_dim()
    );
    s
}

/// Runs `sbridge inspect`.
pub fn run(a: &InspectArgs) -> CliResult<()> {
    let image = read_image(&a.model)?;
    let b = image.as_bytes();
    let fs = float_size(&a.model, b)?;
    print!("{}", header_text(&a.model, b));
    let heads = if fs == 4 {
        heads_text(&open::<f32>(&a.model, &image)?)
    } else {
        heads_text(&open::<f64>(&a.model, &image)?)
    };
    print!("{heads}");
    Ok(())
}
