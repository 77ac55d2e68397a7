//! Turning the caller's pointers and lengths into slices: the only `unsafe` of the crate.
//!
//! Every helper checks null, alignment and that the byte length fits in `isize` before it builds a
//! slice; [`disjoint`] checks that an output does not overlap another buffer, so no `&mut` slice
//! ever aliases another slice of the same call.

use super::status::SbStatus::{self, *};

/// A byte range `[start, start + len)` of one argument, for overlap checks.
#[derive(Clone, Copy)]
pub(crate) struct Span(pub(crate) usize, pub(crate) usize);

impl Span {
    pub(crate) fn of<T>(s: &[T]) -> Span {
        Span(s.as_ptr() as usize, core::mem::size_of_val(s))
    }
    pub(crate) fn one<T>(r: &T) -> Span {
        Span(r as *const T as usize, core::mem::size_of::<T>())
    }
}

/// `SB_OVERLAPPING_BUFFERS` if `out` overlaps any of `others` (empty ranges never overlap).
pub(crate) fn disjoint(out: Span, others: &[Span]) -> Result<(), SbStatus> {
    for o in others {
        if out.1 > 0 && o.1 > 0 && out.0 < o.0 + o.1 && o.0 < out.0 + out.1 {
            return Err(SB_OVERLAPPING_BUFFERS);
        }
    }
    Ok(())
}

/// Every output disjoint from every input and from every other output.
pub(crate) fn outputs_disjoint(outputs: &[Span], inputs: &[Span]) -> Result<(), SbStatus> {
    for (i, o) in outputs.iter().enumerate() {
        disjoint(*o, inputs)?;
        disjoint(*o, &outputs[i + 1..])?;
    }
    Ok(())
}

fn check_ptr<T>(p: *const T, n: usize) -> Result<(), SbStatus> {
    if p.is_null() {
        return Err(SB_NULL_POINTER);
    }
    if !(p as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return Err(SB_MISALIGNED_POINTER);
    }
    match n.checked_mul(core::mem::size_of::<T>()) {
        Some(b) if b <= isize::MAX as usize && (p as usize).checked_add(b).is_some() => Ok(()),
        _ => Err(SB_INVALID_ARGUMENT),
    }
}

/// `n` readable values at `p`.
///
/// # Safety
/// The caller of the entry point guarantees that a non-null `p` points to `n` initialised values
/// that stay valid and unmodified for the call (the documented contract of every entry point).
pub(crate) unsafe fn input<'a, T>(p: *const T, n: usize) -> Result<&'a [T], SbStatus> {
    check_ptr(p, n)?;
    // SAFETY: `p` is non-null and aligned, `n * size_of::<T>()` fits in `isize` and does not wrap
    // the address space (checked above); validity of the `n` values for the call is the caller's
    // documented contract.
    Ok(unsafe { core::slice::from_raw_parts(p, n) })
}

/// Like [`input`] but `None` for a null pointer (a *nullable* argument).
///
/// # Safety
/// As [`input`].
pub(crate) unsafe fn input_opt<'a, T>(p: *const T, n: usize) -> Result<Option<&'a [T]>, SbStatus> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract of `input`.
        unsafe { input(p, n) }.map(Some)
    }
}

/// `n` writable values at `p`.
///
/// # Safety
/// The caller of the entry point guarantees that a non-null `p` points to `n` writable values,
/// valid for the call; the entry point checks with [`disjoint`] that no other slice of the call
/// overlaps it before writing.
pub(crate) unsafe fn output<'a, T>(p: *mut T, n: usize) -> Result<&'a mut [T], SbStatus> {
    check_ptr(p, n)?;
    // SAFETY: non-null, aligned, size fits (checked above); the memory is writable for the call
    // by contract, and every entry point proves it disjoint from its other slices with `disjoint`
    // before it writes through this one.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, n) })
}

/// Like [`output`] but `None` for a null pointer.
///
/// # Safety
/// As [`output`].
pub(crate) unsafe fn output_opt<'a, T>(
    p: *mut T,
    n: usize,
) -> Result<Option<&'a mut [T]>, SbStatus> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract of `output`.
        unsafe { output(p, n) }.map(Some)
    }
}

/// One readable value at `p`.
///
/// # Safety
/// As [`input`] with `n = 1`.
pub(crate) unsafe fn input_ref<'a, T>(p: *const T) -> Result<&'a T, SbStatus> {
    // SAFETY: forwarded contract of `input`.
    unsafe { input(p, 1) }.map(|s| &s[0])
}

/// One writable value at `p`.
///
/// # Safety
/// As [`output`] with `n = 1`.
pub(crate) unsafe fn output_ref<'a, T>(p: *mut T) -> Result<&'a mut T, SbStatus> {
    // SAFETY: forwarded contract of `output`.
    unsafe { output(p, 1) }.map(|s| &mut s[0])
}
