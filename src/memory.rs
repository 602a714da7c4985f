//! Giving back the code pages that start-up and verification touched, once
//! the launcher has nothing left to do but wait.
//!
//! Most of a waiting launcher's resident memory is code it ran once: its
//! own, libc's and the loader's (each page fault maps up to 16 neighbouring
//! pages of an already cached file, so the launcher's whole text ends up
//! resident). Once it is serving, the launcher tells the kernel it does not
//! need those pages now (`MADV_DONTNEED`) on its executable file mappings.
//! Code is never written, so nothing is lost: the pages stay in the page
//! cache, shared as before, and come back on a minor fault when that code
//! runs again. Read-only data is left alone: telling it apart from the
//! relocated (written) parts of a library takes `/proc/self/smaps`, which
//! costs more to read than those pages are worth.

use std::ops::Range;

/// Releases what it can; returns how many bytes of mappings it advised.
pub fn release_code_pages() -> usize {
    let Some(maps) = crate::proc::read("/proc/self/maps", 8192) else {
        return 0;
    };
    let mut released = 0;
    for range in code_mappings(&maps) {
        let len = range.end - range.start;
        let Some(start) = std::ptr::NonNull::new(range.start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a whole private mapping of a file, readable
        // and executable but not writable: code, which nothing in this
        // process writes (no JIT, no text relocations). Dropping its pages
        // discards nothing; the next access reads them back from the file,
        // and no reference into it can be invalidated.
        let advised = unsafe {
            nix::sys::mman::madvise(start, len, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        };
        if advised.is_ok() {
            released += len;
        }
    }
    released
}

/// The executable, non-writable file mappings of a `/proc/PID/maps` text
/// (`start-end perms offset dev inode path`).
pub fn code_mappings(maps: &[u8]) -> Vec<Range<usize>> {
    maps.split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
            let range = fields.next()?;
            let dash = range.iter().position(|&b| b == b'-')?;
            let hex = |d: &[u8]| usize::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok();
            let (start, end) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
            let perms = fields.next()?;
            let inode = fields.nth(2)?;
            let path = fields.next()?;
            let code = perms == b"r-xp" && inode != b"0" && path.first() == Some(&b'/');
            (code && start < end).then_some(start..end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0010000 r--p 00000000 08:01 1234 /usr/bin/gunicorn-launcher
55d0c0010000-55d0c0020000 r-xp 00010000 08:01 1234 /usr/bin/gunicorn-launcher
55d0c0020000-55d0c0024000 r--p 00020000 08:01 1234 /usr/bin/gunicorn-launcher
55d0c0024000-55d0c0025000 rw-p 00024000 08:01 1234 /usr/bin/gunicorn-launcher
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000100000 r-xp 00026000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000200000-7f0000201000 r-xs 00000000 08:01 98 /dev/shm/x
7f0000300000-7f0000301000 rwxp 00000000 08:01 97 /tmp/jit
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn only_private_code_mappings_of_files_qualify() {
        assert_eq!(
            code_mappings(MAPS.as_bytes()),
            vec![
                0x55d0c0010000..0x55d0c0020000,
                0x7f0000000000..0x7f0000100000
            ]
        );
        assert!(code_mappings(b"garbage\n\n-\n").is_empty());
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        let maps = std::fs::read("/proc/self/maps").unwrap();
        assert!(!code_mappings(&maps).is_empty());
        assert!(release_code_pages() > 0);
        // The code runs on, read back from the file.
        let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        assert_eq!(v.join(",").len(), 289);
    }
}
