//! Fallible allocation (docs/spec.md §0.5). A Rust allocation that fails ends the process (abort),
//! taking the Python interpreter with it; every buffer whose size the caller's arguments set is
//! therefore allocated here, sized first and refused with `CoreError::OutOfMemory` (Python's
//! `MemoryError`) when it cannot be had.
//!
//! "Cannot be had" is judged twice: a request larger than the memory the system reports available
//! (Linux: `MemAvailable` + `SwapFree` of /proc/meminfo, and the cgroup v2 limit of the process when
//! one is set) is refused before it is tried, since overcommitting memory would grant it and the
//! process would be killed when it touches the pages; then the allocation itself is made with
//! `try_reserve`, which fails instead of aborting (an address-space limit, a strict overcommit
//! policy, a request the allocator cannot map). The first test reads two small files and runs only
//! for requests of at least [`CHECK_FROM`] bytes.

use crate::error::{CoreError, Result};

/// Requests from this size on are compared with the available memory first.
pub const CHECK_FROM: usize = 64 << 20;

/// What a buffer is for, to name in the error: the argument whose size sets it, the buffer, and a
/// way out for the user. Built only when an allocation fails.
pub struct Need {
    pub arg: &'static str,
    pub what: String,
    pub hint: String,
}

impl Need {
    pub fn new(arg: &'static str, what: impl Into<String>, hint: impl Into<String>) -> Self {
        Need {
            arg,
            what: what.into(),
            hint: hint.into(),
        }
    }
}

fn refuse(bytes: Option<usize>, available: Option<u64>, need: impl FnOnce() -> Need) -> CoreError {
    let Need { arg, what, hint } = need();
    CoreError::OutOfMemory {
        arg,
        bytes,
        available,
        what,
        hint,
    }
}

/// `len` values of `T` in bytes, or None past `usize`.
fn bytes_of<T>(len: usize) -> Option<usize> {
    len.checked_mul(std::mem::size_of::<T>())
}

/// Fails unless `bytes` may be requested: no larger than `isize::MAX` and, from [`CHECK_FROM`]
/// on, than the memory available.
pub fn check(bytes: Option<usize>, need: impl FnOnce() -> Need) -> Result<()> {
    let Some(b) = bytes.filter(|&b| b <= isize::MAX as usize) else {
        return Err(refuse(bytes, None, need));
    };
    if b >= CHECK_FROM {
        if let Some(avail) = available() {
            if b as u64 > avail {
                return Err(refuse(bytes, Some(avail), need));
            }
        }
    }
    Ok(())
}

/// An empty vector with room for `len` values.
pub fn with_capacity<T>(len: usize, need: impl FnOnce() -> Need) -> Result<Vec<T>> {
    let bytes = bytes_of::<T>(len);
    let mut need = Some(need);
    check(bytes, || (need.take().unwrap())())?;
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| refuse(bytes, None, need.take().unwrap()))?;
    Ok(v)
}

/// Room for `additional` more values in `v`.
pub fn reserve<T>(v: &mut Vec<T>, additional: usize, need: impl FnOnce() -> Need) -> Result<()> {
    let bytes = bytes_of::<T>(v.len().saturating_add(additional));
    let mut need = Some(need);
    check(bytes, || (need.take().unwrap())())?;
    v.try_reserve_exact(additional)
        .map_err(|_| refuse(bytes, None, need.take().unwrap()))
}

/// `len` copies of `value`.
pub fn filled<T: Clone>(len: usize, value: T, need: impl FnOnce() -> Need) -> Result<Vec<T>> {
    let mut v = with_capacity(len, need)?;
    v.resize(len, value);
    Ok(v)
}

/// `len` zeros (`T::default()`; memory from the allocator's zeroed pages like `vec![0; len]`).
pub fn zeros<T: Zero>(len: usize, need: impl FnOnce() -> Need) -> Result<Vec<T>> {
    let bytes = bytes_of::<T>(len);
    let mut need = Some(need);
    check(bytes, || (need.take().unwrap())())?;
    if len == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| refuse(bytes, None, need.take().unwrap()))?;
    // SAFETY: `layout` has a non-zero size; `T: Zero` promises that all-zero bytes are a valid T,
    // and the pointer comes from the global allocator with T's layout, as `Vec` requires.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        if ptr.is_null() {
            return Err(refuse(bytes, None, need.take().unwrap()));
        }
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}

/// The values of an iterator of known length, collected into a vector allocated once.
pub fn collect<T>(iter: impl ExactSizeIterator<Item = T>, need: impl FnOnce() -> Need) -> Result<Vec<T>> {
    let mut v = with_capacity(iter.len(), need)?;
    v.extend(iter);
    Ok(v)
}

/// A `rows × cols` faer matrix of zeros, with the layout `Mat::zeros` gives it.
pub fn matrix(rows: usize, cols: usize, need: impl FnOnce() -> Need) -> Result<faer::Mat<f64>> {
    let bytes = rows.checked_mul(cols).and_then(bytes_of::<f64>);
    let mut need = Some(need);
    check(bytes, || (need.take().unwrap())())?;
    let mut m = faer::Mat::<f64>::new();
    m.try_reserve(rows, cols)
        .map_err(|_| refuse(bytes, None, need.take().unwrap()))?;
    m.resize_with(rows, cols, |_, _| 0.0);
    Ok(m)
}

/// Scratch memory for a faer decomposition.
pub fn scratch(req: faer::dyn_stack::StackReq, need: impl FnOnce() -> Need) -> Result<faer::dyn_stack::MemBuffer> {
    let bytes = Some(req.size_bytes());
    let mut need = Some(need);
    check(bytes, || (need.take().unwrap())())?;
    faer::dyn_stack::MemBuffer::try_new(req).map_err(|_| refuse(bytes, None, need.take().unwrap()))
}

/// Element types for which all-zero bytes are the value zero.
///
/// # Safety
/// Implement only for types whose all-zero bit pattern is a valid value.
pub unsafe trait Zero: Copy {}
unsafe impl Zero for f64 {}
unsafe impl Zero for f32 {}
unsafe impl Zero for u64 {}
unsafe impl Zero for u32 {}
unsafe impl Zero for u16 {}
unsafe impl Zero for u8 {}
unsafe impl Zero for usize {}
unsafe impl Zero for i64 {}

/// The memory the system reports available to this process, in bytes (None where unknown: not
/// Linux, or unreadable).
pub fn available() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = meminfo.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb * 1024)
        };
        let system = field("MemAvailable:")?.saturating_add(field("SwapFree:").unwrap_or(0));
        Some(match cgroup_room() {
            Some(room) => system.min(room),
            None => system,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Room left under the cgroup v2 memory limit of this process (memory.max − memory.current), when
/// it has one.
#[cfg(target_os = "linux")]
fn cgroup_room() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?; // "max" (no limit) does not parse
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// `bytes` for people: "1.5 GB", "80.0 GB", "512 kB".
pub fn human(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_requests_are_refused_not_aborted() {
        let need = || Need::new("x", "a test buffer", "ask for less");
        let e = zeros::<f64>(usize::MAX / 4, need).unwrap_err();
        assert!(matches!(e, CoreError::OutOfMemory { arg: "x", .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("x: ") && msg.contains("a test buffer") && msg.contains("ask for less"),
            "{msg}"
        );
        assert!(filled(usize::MAX / 16, 1u8, need).is_err());
        assert!(with_capacity::<u64>(1 << 60, need).is_err());
        assert!(matrix(1 << 31, 1 << 31, need).is_err());
        let v: Vec<u32> = collect(0..10u32, need).unwrap();
        assert_eq!(v, (0..10).collect::<Vec<_>>());
        assert_eq!(zeros::<f64>(3, need).unwrap(), vec![0.0; 3]);
        let m = matrix(3, 2, need).unwrap();
        assert_eq!((m.nrows(), m.ncols(), m[(2, 1)]), (3, 2, 0.0));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(80_000_000_000), "80.0 GB");
        assert_eq!(human(1_536_000), "1.5 MB");
    }
}
