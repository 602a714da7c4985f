//! Giving back the pages that start-up and verification touched, once the
//! launcher has nothing left to do but wait.
//!
//! Most of a waiting launcher's resident memory is code and constant data
//! it read once (each page fault maps up to 16 neighbouring pages of an
//! already cached file, so most of the binary ends up resident). Once it is
//! serving, the launcher tells the kernel it does not need those pages now
//! (`MADV_DONTNEED`) on every mapping where that loses nothing: read-only,
//! backed by a file, and not the part of a loaded object that the loader
//! relocated in memory before making it read-only (its `PT_GNU_RELRO`
//! segment, named by the program headers `dl_iterate_phdr` lists). That part
//! is a modified copy, which the file cannot give back, and it stays. On
//! x86-64 it is the only read-only part a loader writes: the linker refuses
//! text relocations in a position-independent executable. The pages stay in
//! the page cache and come back on a minor fault when that code runs again.
//! The mappings are read from `/proc/self/maps`, not `smaps`: smaps walks
//! every mapping's page tables to count its pages, which cost more than all
//! the rest of the release.
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
    let mappings = clean_file_mappings(&maps, &relocated());
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
        // SAFETY: the range is a whole mapping, read-only and backed by a
        // file, and no loader's relocated part (the only read-only memory
        // written after it was mapped; nothing here changes protections):
        // dropping its pages discards nothing, the next access reads them
        // back from the file, and no reference into it can be invalidated.
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

/// The mappings of a `/proc/PID/maps` text that are read-only, backed by a
/// file, and touch none of the `relocated` ranges. Lines are
/// `start-end perms offset dev inode path`.
pub fn clean_file_mappings(maps: &[u8], relocated: &[Range<usize>]) -> Vec<Range<usize>> {
    maps.split(|&b| b == b'\n')
        .filter_map(|line| mapping_header(line).flatten())
        .filter(|m| !relocated.iter().any(|r| r.start < m.end && m.start < r.end))
        .collect()
}

/// The address range of each loaded object's `PT_GNU_RELRO` segment: written by the loader
/// after it was mapped (relocations), then made read-only.
pub fn relocated() -> Vec<Range<usize>> {
    use nix::libc::{PT_GNU_RELRO, c_int, c_void, dl_iterate_phdr, dl_phdr_info, size_t};
    unsafe extern "C" fn each(info: *mut dl_phdr_info, _: size_t, found: *mut c_void) -> c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for this call and the `found` that
        // `relocated` gave it, a `Vec` nothing else borrows meanwhile; `dlpi_phdr` points to
        // `dlpi_phnum` program headers of a loaded object, which stay mapped while it runs.
        let (info, found) = unsafe { (&*info, &mut *found.cast::<Vec<Range<usize>>>()) };
        let headers = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) }
        };
        for h in headers.iter().filter(|h| h.p_type == PT_GNU_RELRO) {
            let start = (info.dlpi_addr as usize).wrapping_add(h.p_vaddr as usize);
            found.push(start..start.saturating_add(h.p_memsz as usize));
        }
        0
    }
    let mut found: Vec<Range<usize>> = Vec::new();
    // SAFETY: `each` has the callback's type, reads only what its comment says, and returns
    // 0 so that every object is visited; `found` outlives the call.
    unsafe { dl_iterate_phdr(Some(each), (&raw mut found).cast()) };
    found
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
