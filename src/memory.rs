//! Giving back the pages that start-up and verification touched, once the
//! launcher has nothing left to do but wait.
//!
//! Most of a waiting launcher's resident memory is code and constant data
//! it read once (each page fault maps up to 16 neighbouring pages of an
//! already cached file, so most of the binary ends up resident). Once it is
//! serving, the launcher tells the kernel it does not need those pages now
//! (`MADV_DONTNEED`) on every mapping where that loses nothing: read-only,
//! backed by a file, and without a single page that is a private copy (the
//! part the loader relocated before making it read-only is such a copy, and
//! so is a debugger's breakpoint): `/proc/self/pagemap` says of each page
//! whether it is the file's own, and that mapping stays whole if one is not.
//! The pages stay in the page cache and come back on a minor fault when that
//! code runs again. The mappings are listed by `/proc/self/maps` and their
//! pages read from pagemap, not from `smaps`, which walks the page tables of
//! every mapping and formats a dozen counters for each: reading it was the
//! costliest step of the release.
//!
//! The pages that hold the code a signal runs on its way to gunicorn are kept (the
//! caller names them): faulting them back in would stand between an operator's HUP and
//! gunicorn each time.
//!
//! Two anonymous parts are given back too: the stack below the caller's
//! frame but for a margin (start-up's deep calls and buffers left it
//! resident; a later deeper call gets zeroed pages back), and the heap's
//! free pages (`malloc_trim`).

use std::ops::Range;

/// Releases what it can but the pages of `keep` (code addresses) and the page after each
/// (a function may run on past its page's end), which it makes resident; returns how many
/// bytes of mappings it advised.
pub fn release_clean_pages(keep: &[usize]) -> usize {
    let Some(maps) = crate::process::procfs::read("/proc/self/maps", 4 * 1024) else {
        return 0;
    };
    let page = page_size();
    // The anonymous parts first: the code that gives them back is then given back too.
    let mut released = release_unused_stack(&maps, page) + trim_heap();
    let mappings = unmodified(read_only_file_mappings(&maps), page);
    let kept = kept_pages(keep, page);
    // Resident first: touching a page maps its neighbours too, which go just below.
    for &p in &kept {
        if mappings.iter().any(|m| m.contains(&p)) {
            // SAFETY: `p` lies in a mapping that maps lists as readable and backed by a
            // file, and nothing here unmaps or protects it: reading a byte of it is
            // reading the binary.
            unsafe { std::ptr::read_volatile(p as *const u8) };
        }
    }
    for range in mappings.into_iter().flat_map(|m| without(m, &kept, page)) {
        let len = range.end - range.start;
        let Some(start) = std::ptr::NonNull::new(range.start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range lies in a mapping that is read-only, backed by a
        // file, and holds no private copy of a page (read from pagemap just
        // now; a read-only mapping cannot gain one, as nothing here writes or
        // changes protections): dropping its pages discards nothing, the next
        // access reads them back from the file, and no reference into it can
        // be invalidated.
        let advised = unsafe {
            nix::sys::mman::madvise(start, len, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        };
        if advised.is_ok() {
            released += len;
        }
    }
    released
}

/// What stays resident below the caller's frame: the frames of whatever this
/// call runs (madvise's wrapper is a few hundred bytes deep) and those of a
/// signal's path from the loop, which are about as deep as this one.
const STACK_KEPT: usize = 16 * 1024;

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

/// The page of each address and the page after it, sorted, once each.
pub fn kept_pages(keep: &[usize], page: usize) -> Vec<usize> {
    let mut pages: Vec<usize> = keep
        .iter()
        .flat_map(|&a| {
            let p = a / page * page;
            [p, p.saturating_add(page)]
        })
        .collect();
    pages.sort_unstable();
    pages.dedup();
    pages
}

/// `range` without the pages that start at `kept` (sorted), in pieces.
pub fn without(range: Range<usize>, kept: &[usize], page: usize) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut from = range.start;
    for &p in kept.iter().filter(|&&p| range.contains(&p)) {
        if p > from {
            pieces.push(from..p);
        }
        from = from.max(p + page);
    }
    if from < range.end {
        pieces.push(from..range.end);
    }
    pieces
}

/// Gives back the stack pages below the current frame and its margin. Never inlined: its
/// own frame must lie below every live one (inlined into a caller, "the current frame"
/// would be a local somewhere in the caller's frame, with the rest of that frame below it:
/// a release build that did so zeroed live stack and crashed).
#[inline(never)]
fn release_unused_stack(maps: &[u8], page: usize) -> usize {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let Some(range) = unused_stack(maps, sp, STACK_KEPT, page) else {
        return 0;
    };
    let Some(start) = std::ptr::NonNull::new(range.start as *mut std::ffi::c_void) else {
        return 0;
    };
    // SAFETY: the range lies in the main thread's stack mapping and ends at
    // least STACK_KEPT bytes below the current frame: nothing live is there
    // (the stack grows down, and no frame below this one exists while it
    // runs but madvise's own, inside the margin). Its pages read back as
    // zeroes when a later call grows the stack into them, as fresh stack does.
    let advised = unsafe {
        nix::sys::mman::madvise(
            start,
            range.end - range.start,
            nix::sys::mman::MmapAdvise::MADV_DONTNEED,
        )
    };
    advised.map_or(0, |()| range.end - range.start)
}

/// Gives the heap's free pages back; returns 1 if any were, as malloc_trim does.
fn trim_heap() -> usize {
    // SAFETY: malloc_trim only returns memory that malloc holds free; no
    // allocation is moved or freed, and nothing else allocates meanwhile (one
    // thread).
    usize::from(unsafe { nix::libc::malloc_trim(0) } == 1)
}

/// The part of the `[stack]` mapping of a `/proc/PID/maps` text that lies
/// below `sp - kept`, in whole pages of `page` bytes; none if that is empty or
/// `sp` is not in the stack.
pub fn unused_stack(maps: &[u8], sp: usize, kept: usize, page: usize) -> Option<Range<usize>> {
    let header = maps
        .split(|&b| b == b'\n')
        .find(|line| line.ends_with(b"[stack]"))?;
    let Range { start, end } = address_range(header.split(|&b| b == b' ').next()?)?;
    if !(start..end).contains(&sp) {
        return None;
    }
    let top = sp.checked_sub(kept)? / page * page;
    (top > start).then_some(start..top)
}

/// The mappings of a `/proc/PID/maps` text that are read-only and backed by a
/// file. Lines are `start-end perms offset dev inode path`.
pub fn read_only_file_mappings(maps: &[u8]) -> Vec<Range<usize>> {
    maps.split(|&b| b == b'\n')
        .filter_map(|line| mapping_header(line).flatten())
        .collect()
}

/// The `mappings` of this process none of whose pages is a private copy, by
/// `/proc/self/pagemap`; none at all when it cannot be read.
fn unmodified(mappings: Vec<Range<usize>>, page: usize) -> Vec<Range<usize>> {
    let Ok(pagemap) = std::fs::File::open("/proc/self/pagemap") else {
        return Vec::new();
    };
    mappings
        .into_iter()
        .filter(|m| unmodified_mapping(&pagemap, m, page))
        .collect()
}

/// Whether no page of `mapping` is a private copy (false if pagemap cannot say). Read
/// 512 entries at a time into a buffer on the stack, within the margin the release
/// keeps: one on the heap would grow the heap just after it was trimmed.
fn unmodified_mapping(pagemap: &std::fs::File, mapping: &Range<usize>, page: usize) -> bool {
    use std::os::unix::fs::FileExt;
    let mut entries = [0u8; 4096];
    let (mut from, end) = (
        (mapping.start / page * 8) as u64,
        (mapping.end / page * 8) as u64,
    );
    while from < end {
        let len = usize::try_from(end - from).map_or(entries.len(), |l| l.min(entries.len()));
        let chunk = &mut entries[..len];
        if pagemap.read_exact_at(chunk, from).is_err() || holds_a_copy(chunk) {
            return false;
        }
        from += len as u64;
    }
    true
}

/// Whether a run of pagemap entries (64 bits each, native order) holds a page
/// that is not the file's own: present without bit 61 ("file page or shared
/// anonymous"), which is a private copy, or swapped out, which only a copy can be.
pub fn holds_a_copy(entries: &[u8]) -> bool {
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE: u64 = 1 << 61;
    entries.chunks_exact(8).any(|e| {
        let e = u64::from_ne_bytes(e.try_into().unwrap_or_default());
        e & SWAPPED != 0 || (e & PRESENT != 0 && e & FILE == 0)
    })
}

/// `Some(None)` for a mapping that does not qualify, `Some(Some(range))` for
/// one that may, `None` for a line that is not a header.
fn mapping_header(line: &[u8]) -> Option<Option<Range<usize>>> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let Range { start, end } = address_range(fields.next()?)?;
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

/// A mapping header's first field, `start-end` in hex.
fn address_range(field: &[u8]) -> Option<Range<usize>> {
    let dash = field.iter().position(|&b| b == b'-')?;
    let hex = |d: &[u8]| usize::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok();
    Some(hex(&field[..dash])?..hex(&field[dash + 1..])?)
}

#[cfg(test)]
mod tests;
