//! Host helpers for model images (feature `std`): an owned, 16-byte aligned image buffer, reading
//! and writing image files, and a one-call fit that sizes and allocates the image.
//!
//! The numerical core never allocates; [`crate::model::write_model`] and
//! [`crate::model::ModelView::open`] work on caller bytes that must be 16-byte aligned
//! ([`crate::model::ALIGN`]). A `Vec<u8>` read from a file has no such guarantee, so this module
//! keeps image bytes in a [`ModelImage`], whose storage is always aligned:
//!
//! ```
//! use sbridge::layout::{single_head, single_head_sizes};
//! use sbridge::model_io::{fit_model, ModelImage};
//! use sbridge::{FitConfig, LayoutStorage};
//!
//! // M = 40 samples in d = 2, sample-major.
//! let data: Vec<f64> = (0..80).map(|k| ((k * 37 % 23) as f64 - 11.0) / 7.0).collect();
//! let s = single_head_sizes(2);
//! let (mut a, mut b, mut c, mut e) =
//!     (vec![0; s.heads + 1], vec![0; s.nb], vec![0; s.heads + 1], vec![0; s.tg]);
//! let st = LayoutStorage { nb_offsets: &mut a, nb_coords: &mut b, tg_offsets: &mut c, tg_coords: &mut e };
//! let layout = single_head(2, st).unwrap();
//! let (image, report) = fit_model(&data, 2, None, &layout, &FitConfig::new(0.1)).unwrap();
//! assert_eq!(image.len(), report.image_len);
//!
//! let path = std::env::temp_dir().join(format!("sbridge-doc-{}.sbm", std::process::id()));
//! image.write_file(&path).unwrap();
//! let back = ModelImage::read_file(&path).unwrap();
//! std::fs::remove_file(&path).unwrap();
//! assert_eq!(back.as_bytes(), image.as_bytes());
//! let view = back.view::<f64>().unwrap();
//! assert_eq!((view.m(), view.d(), view.n_heads()), (40, 2, 1));
//! ```

use crate::error::Error;
use crate::fit::FitConfig;
use crate::layout::HeadLayout;
use crate::model::{
    image_len, write_model, write_workspace_len, ImageFloat, ModelFitReport, ModelView, ALIGN,
};
use core::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::vec;
use std::vec::Vec;

/// Bytes per storage word of [`ModelImage`] (one `u128`).
const WORD: usize = core::mem::size_of::<u128>();

/// An owned model image in 16-byte aligned heap storage, ready for [`ModelView::open`].
///
/// The bytes live in a `Vec<u128>`; the image starts at the first 16-byte boundary inside it (on
/// every mainstream 64-bit target that is the start, since `u128` is 16-byte aligned there) and is
/// [`Self::len`] bytes long. The storage is never reallocated, so the alignment holds for the
/// image's whole life, including after moves.
#[derive(Clone)]
pub struct ModelImage {
    words: Vec<u128>,
    /// Byte offset of the image inside `words` (0..16).
    start: usize,
    /// Image length in bytes.
    len: usize,
}

impl ModelImage {
    /// A zeroed image of `len` bytes (for writing with [`write_model`] through
    /// [`Self::as_mut_bytes`]).
    ///
    /// # Panics
    /// When `len` bytes cannot be allocated (as `Vec` does).
    pub fn with_len(len: usize) -> Self {
        // One spare word in case the allocator gives only 8-byte alignment for u128 (32-bit Arm).
        let words = vec![0u128; len.div_ceil(WORD) + 1];
        let addr = words.as_ptr() as usize;
        let start = (ALIGN - addr % ALIGN) % ALIGN;
        ModelImage { words, start, len }
    }

    /// A copy of `bytes` (any alignment, e.g. read from a file or a network) in aligned storage.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut img = Self::with_len(bytes.len());
        img.as_mut_bytes().copy_from_slice(bytes);
        img
    }

    /// Image length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a zero-length image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The image bytes (`len()` bytes, starting on a 16-byte boundary).
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[self.start..self.start + self.len]
    }

    /// The image bytes, writable (`len()` bytes, starting on a 16-byte boundary).
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        let (start, len) = (self.start, self.len);
        &mut bytemuck::cast_slice_mut::<u128, u8>(&mut self.words)[start..start + len]
    }

    /// Validates the image as a model of float kind `T` ([`ModelView::open`]) and returns the
    /// zero-copy view borrowing `self`.
    pub fn view<T: ImageFloat>(&self) -> Result<ModelView<'_, T>, Error> {
        ModelView::open(self.as_bytes())
    }

    /// Reads the whole file at `path` into aligned storage. The bytes are not validated: call
    /// [`Self::view`] for that.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self, ModelIoError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| ModelIoError::io(path, e))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Writes the image to `path` atomically: the bytes go to a new temporary file in the same
    /// directory, which is flushed to disk and then renamed over `path`. A failure at any point
    /// removes the temporary file and leaves whatever was at `path` untouched, so no partial image
    /// is ever seen under the final name.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<(), ModelIoError> {
        let path = path.as_ref();
        let name = path.file_name().ok_or_else(|| {
            ModelIoError::io(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
            )
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (tmp, mut file) = create_temp(&dir, name)?;
        let written = file
            .write_all(self.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| ModelIoError::io(&tmp, e));
        drop(file);
        let renamed =
            written.and_then(|()| fs::rename(&tmp, path).map_err(|e| ModelIoError::io(path, e)));
        if renamed.is_err() {
            let _ = fs::remove_file(&tmp);
            return renamed;
        }
        // Make the rename itself durable where the platform allows syncing a directory.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Creates a fresh temporary file `.<name>.<pid>.<n>.tmp` in `dir` (never an existing one).
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> Result<(PathBuf, fs::File), ModelIoError> {
    use core::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(std::format!(".{pid}.{n}.tmp"));
        let tmp = dir.join(tmp_name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ModelIoError::io(&tmp, e)),
        }
    }
}

impl fmt::Debug for ModelImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelImage")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ModelImage {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for ModelImage {}

impl AsRef<[u8]> for ModelImage {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// An error of the host helpers: a file operation failed, or the model itself was rejected.
#[derive(Debug)]
pub enum ModelIoError {
    /// Reading, writing, syncing or renaming a file failed.
    Io {
        /// The file the operation was on (for a write, possibly the temporary file next to the
        /// destination).
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The image was rejected or could not be made (see [`Error`]).
    Model(Error),
}

impl ModelIoError {
    fn io(path: &Path, source: io::Error) -> Self {
        ModelIoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for ModelIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelIoError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ModelIoError::Model(e) => write!(f, "model image: {e}"),
        }
    }
}

impl std::error::Error for ModelIoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ModelIoError::Io { source, .. } => Some(source),
            ModelIoError::Model(e) => Some(e),
        }
    }
}

impl From<Error> for ModelIoError {
    fn from(e: Error) -> Self {
        ModelIoError::Model(e)
    }
}

/// Fits every head of `layout` on `data` (`M × d` values, sample-major; `scales` optional, `d`
/// values) with `cfg`, into a freshly allocated image of exactly [`image_len`] bytes, with the
/// work space ([`write_workspace_len`]`(M)` values of `T`) allocated and freed here.
///
/// Errors are those of [`write_model`]; a head whose Sinkhorn run misses the tolerance gives
/// [`Error::NotConverged`] (the image is dropped). An image size that does not fit in `usize`
/// is [`Error::Capacity`].
pub fn fit_model<T: ImageFloat>(
    data: &[T],
    d: usize,
    scales: Option<&[T]>,
    layout: &HeadLayout<'_>,
    cfg: &FitConfig<T>,
) -> Result<(ModelImage, ModelFitReport), Error> {
    // Validates d > 0, M > 0, lengths and finiteness before anything is sized from them.
    let full = crate::dataset::Dataset::new(data, d, scales)?;
    let m = full.m();
    let len = image_len::<T>(layout, m, cfg.beta.is_some(), scales.is_some());
    if len == usize::MAX {
        return Err(Error::Capacity {
            limit: usize::MAX - 1,
            requested: len,
        });
    }
    let mut image = ModelImage::with_len(len);
    let mut work = vec![T::ZERO; write_workspace_len(m)];
    let (_, report) = write_model(
        image.as_mut_bytes(),
        data,
        d,
        scales,
        layout,
        cfg,
        &mut work,
    )?;
    image.len = report.image_len;
    Ok((image, report))
}
