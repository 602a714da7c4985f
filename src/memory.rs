//! Giving back the pages that start-up and verification touched, once the
//! launcher has nothing left to do but wait.
//!
//! Most of a waiting launcher's resident memory is code and constant data
//! it read once (each page fault maps up to 16 neighbouring pages of an
//! already cached file, so most of the binary ends up resident). Once it is
//! serving, the launcher tells the kernel it does not need those pages now
//! (`MADV_DONTNEED`) on every mapping where that loses nothing: read-only,
//! backed by a file, and without a single page modified in memory (smaps'
//! `Anonymous: 0 kB`; the relocated part of the binary is such a modified
//! copy and stays). The pages stay in the page cache and come back on a
//! minor fault when that code runs again. The launcher is linked statically,
//! so that is a dozen mappings to read, not a hundred.

use std::ops::Range;

/// Releases what it can; returns how many bytes of mappings it advised.
pub fn release_clean_pages() -> usize {
    let Some(smaps) = crate::process::procfs::read("/proc/self/smaps", 32 * 1024) else {
        return 0;
    };
    let mut released = 0;
    for range in clean_file_mappings(&smaps) {
        let len = range.end - range.start;
        let Some(start) = std::ptr::NonNull::new(range.start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a whole mapping, read-only and backed by a
        // file, with no page modified in memory (checked just now; a
        // read-only mapping cannot gain one, as nothing here changes
        // protections): dropping its pages discards nothing, the next access
        // reads them back from the file, and no reference into it can be
        // invalidated.
        let advised = unsafe {
            nix::sys::mman::madvise(start, len, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        };
        if advised.is_ok() {
            released += len;
        }
    }
    released
}

/// The mappings of a `/proc/PID/smaps` text that are read-only, backed by a
/// file, and have no anonymous (modified) page. Header lines are
/// `start-end perms offset dev inode path`; the field lines of a mapping
/// follow its header.
pub fn clean_file_mappings(smaps: &[u8]) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut current: Option<Range<usize>> = None;
    for line in smaps.split(|&b| b == b'\n') {
        if let Some(kb) = line.strip_prefix(b"Anonymous:") {
            if let Some(range) = current.take()
                && kb.trim_ascii() == b"0 kB"
            {
                found.push(range);
            }
        } else if line.first().is_some_and(u8::is_ascii_hexdigit)
            && let Some(header) = mapping_header(line)
        {
            current = header;
        }
    }
    found
}

/// `Some(None)` for a mapping that does not qualify, `Some(Some(range))` for
/// one that may, `None` for a line that is not a header.
fn mapping_header(line: &[u8]) -> Option<Option<Range<usize>>> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let range = fields.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let hex = |d: &[u8]| usize::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok();
    let (start, end) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
    let perms = fields.next()?;
    let inode = fields.nth(2)?;
    let path = fields.next().unwrap_or_default();
    let qualifies = perms.len() == 4
        && perms[0] == b'r'
        && perms[1] == b'-'
        && inode != b"0"
        && path.first() == Some(&b'/')
        && start < end;
    Some(qualifies.then_some(start..end))
}

#[cfg(test)]
mod tests;
