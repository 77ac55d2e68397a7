//! Model image files for `sb_model_load` / `sb_model_free`: the library owns the aligned buffer
//! (host builds with `std`; without it, loading is `SB_UNSUPPORTED`).

use super::model::SbModel;
use super::status::{SbStatus, SbStatus::*};
use core::ffi::CStr;

/// Alignment of a loaded image.
#[cfg(feature = "std")]
const ALIGN: usize = crate::model::ALIGN;

/// The allocation of a loaded image of `len` bytes.
#[cfg(feature = "std")]
fn layout(len: usize) -> Result<std::alloc::Layout, SbStatus> {
    std::alloc::Layout::from_size_align(len, ALIGN).map_err(|_| SB_OUT_OF_MEMORY)
}

/// An aligned, zero-initialised buffer, released on drop unless handed over.
#[cfg(feature = "std")]
struct Buffer {
    ptr: *mut u8,
    len: usize,
}

#[cfg(feature = "std")]
impl Buffer {
    fn new(len: usize) -> Result<Buffer, SbStatus> {
        let l = layout(len)?;
        // SAFETY: `l` has a non-zero size (callers reject empty files).
        let ptr = unsafe { std::alloc::alloc_zeroed(l) };
        if ptr.is_null() {
            return Err(SB_OUT_OF_MEMORY);
        }
        Ok(Buffer { ptr, len })
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` holds `len` initialised (zeroed) bytes owned by this buffer.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: as in `bytes_mut`.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
    /// Gives up ownership: the caller releases it with [`release`].
    fn into_raw(self) -> *const u8 {
        let p = self.ptr;
        core::mem::forget(self);
        p
    }
}

#[cfg(feature = "std")]
impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated in `new` with this layout and is released once.
        unsafe { release(self.ptr, self.len) }
    }
}

#[cfg(feature = "std")]
fn path_of(p: &CStr) -> Result<&std::path::Path, SbStatus> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(
            p.to_bytes(),
        )))
    }
    #[cfg(not(unix))]
    {
        p.to_str()
            .map(std::path::Path::new)
            .map_err(|_| SB_INVALID_ARGUMENT)
    }
}

/// Reads and opens the image file at `path` (see `sb_model_load`).
#[cfg(feature = "std")]
pub(crate) fn load(path: &CStr) -> Result<SbModel, SbStatus> {
    use std::io::{ErrorKind, Read};
    let path = path_of(path)?;
    let not_read = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound => SB_FILE_NOT_FOUND,
        _ => SB_FILE_UNREADABLE,
    };
    let meta = std::fs::metadata(path).map_err(not_read)?;
    if !meta.is_file() {
        return Err(SB_NOT_A_FILE);
    }
    if meta.len() == 0 {
        return Err(SB_FILE_EMPTY);
    }
    let len = usize::try_from(meta.len()).map_err(|_| SB_OUT_OF_MEMORY)?;
    let mut buf = Buffer::new(len)?;
    let mut file = std::fs::File::open(path).map_err(not_read)?;
    file.read_exact(buf.bytes_mut())
        .map_err(|_| SB_FILE_UNREADABLE)?;
    let handle = super::model::handle_of_any(buf.bytes())?;
    if handle.image_len != len {
        // Trailing bytes: not the file of one image.
        return Err(SB_IMAGE_CORRUPT);
    }
    let image = buf.into_raw();
    Ok(SbModel {
        image,
        owned: 1,
        ..handle
    })
}

/// Without `std` there are no files.
#[cfg(not(feature = "std"))]
pub(crate) fn load(_path: &CStr) -> Result<SbModel, SbStatus> {
    Err(SB_UNSUPPORTED)
}

/// Releases an image allocated by [`load`].
///
/// # Safety
/// `ptr` and `len` are the `image` and `image_len` of a handle that [`load`] returned, not yet
/// released.
#[cfg(feature = "std")]
pub(crate) unsafe fn release(ptr: *const u8, len: usize) {
    if let Ok(l) = layout(len) {
        // SAFETY: allocated by `Buffer::new` with exactly this layout (caller's contract).
        unsafe { std::alloc::dealloc(ptr as *mut u8, l) }
    }
}

/// Without `std` nothing is ever loaded, so nothing is released.
///
/// # Safety
/// None needed: it does nothing.
#[cfg(not(feature = "std"))]
pub(crate) unsafe fn release(_ptr: *const u8, _len: usize) {}
