use super::*;

const MAPS: &str = "\
55d0c0000000-55d0c0010000 r--p 00000000 08:01 1234                       /usr/bin/gunicorn-launcher
55d0c0010000-55d0c0020000 r-xp 00010000 08:01 1234                       /usr/bin/gunicorn-launcher
55d0c0020000-55d0c0024000 r--p 00020000 08:01 1234                       /usr/bin/gunicorn-launcher
55d0c0024000-55d0c0025000 rw-p 00024000 08:01 1234                       /usr/bin/gunicorn-launcher
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 r--s 00000000 08:01 99                         /var/cache/x (deleted)
7f0000002000-7f0000003000 ---p 00000000 08:01 99                         /var/cache/x
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
";

#[test]
fn only_read_only_file_mappings_qualify() {
    assert_eq!(
        read_only_file_mappings(MAPS.as_bytes()),
        vec![
            0x55d0c0000000..0x55d0c0010000,
            0x55d0c0010000..0x55d0c0020000,
            0x55d0c0020000..0x55d0c0024000,
            0x7f0000000000..0x7f0000001000,
        ]
    );
    assert!(read_only_file_mappings(b"garbage\nr--p 0 0 1 /x\n").is_empty());
}

/// Pagemap entries as the kernel writes them, for the pages of one mapping.
fn entries(pages: &[u64]) -> Vec<u8> {
    pages.iter().flat_map(|e| e.to_ne_bytes()).collect()
}

#[test]
fn a_present_page_that_is_not_the_files_or_a_swapped_one_is_a_copy() {
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE: u64 = 1 << 61;
    // The file's own pages, with any frame number, and pages not mapped at all.
    assert!(!holds_a_copy(&entries(&[
        PRESENT | FILE | 0x1234,
        0,
        PRESENT | FILE
    ])));
    assert!(!holds_a_copy(&[]));
    // One copy among them is enough.
    assert!(holds_a_copy(&entries(&[PRESENT | FILE, PRESENT | 0x99, 0])));
    assert!(holds_a_copy(&entries(&[0, SWAPPED])));
    // Bit 61 alone on a page not present says nothing of a copy.
    assert!(!holds_a_copy(&entries(&[FILE])));
}

#[test]
fn the_part_of_this_binary_the_loader_relocated_is_found_to_be_a_copy() {
    let maps = std::fs::read("/proc/self/maps").unwrap();
    let page = page_size();
    let all = read_only_file_mappings(&maps);
    let clean = unmodified(all.clone(), page);
    assert!(!clean.is_empty());
    // The relocated part (PT_GNU_RELRO) is written at start and then made read-only.
    assert!(
        clean.len() < all.len(),
        "no read-only mapping holds a copy: {all:x?}"
    );
}

/// Held by the tests that give this process's pages back, and by those that map and unmap
/// files of their own: a release with nothing kept, running on another thread, would take
/// the pages another test asked to keep, and a mapping gone between its count and its
/// release would be counted and not released.
static RELEASING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn releasing_keeps_the_process_working() {
    let _alone = RELEASING.lock().unwrap_or_else(|e| e.into_inner());
    let maps = std::fs::read("/proc/self/maps").unwrap();
    let clean: usize = unmodified(read_only_file_mappings(&maps), page_size())
        .iter()
        .map(|m| m.end - m.start)
        .sum();
    assert!(clean > 0);
    // Every clean mapping is advised, whole (nothing is kept here).
    let released = release_clean_pages(&[]);
    assert!(released >= clean, "{released} bytes released of {clean}");
    // The code runs on, read back from the file, and so do the relocated tables (vtables,
    // function pointers) that formatting and dropping go through.
    let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
    assert_eq!(v.join(",").len(), 289);
    let shown: Vec<Box<dyn std::fmt::Display>> = vec![Box::new(1u8), Box::new("two")];
    assert_eq!(
        shown.iter().map(|d| d.to_string()).collect::<String>(),
        "1two"
    );
}

const WITH_STACK: &str = "\
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7ffd10000000-7ffd10021000 rw-p 00000000 00:00 0                          [stack]
7ffd20000000-7ffd20002000 r-xp 00000000 00:00 0                          [vdso]
";

#[test]
fn the_stack_below_the_frame_and_its_margin_is_unused() {
    let sp = 0x7ffd1001f123;
    assert_eq!(
        unused_stack(WITH_STACK.as_bytes(), sp, 0x4000, 4096),
        Some(0x7ffd10000000..0x7ffd1001b000)
    );
    // The margin is whole pages below the frame, rounded down, never into it.
    let r = unused_stack(WITH_STACK.as_bytes(), sp, 1, 4096).unwrap();
    assert_eq!(r.end, 0x7ffd1001f000);
    assert!(r.end < sp);
}

#[test]
fn nothing_is_unused_when_the_frame_is_not_on_the_stack_or_near_its_bottom() {
    let maps = WITH_STACK.as_bytes();
    // A frame on a thread's stack (not the main one), or below or above the mapping.
    assert_eq!(unused_stack(maps, 0x55d0c1000800, 0x4000, 4096), None);
    assert_eq!(unused_stack(maps, 0x7ffd10021000, 0x4000, 4096), None);
    assert_eq!(unused_stack(maps, 0x7ffd0fffffff, 0x4000, 4096), None);
    // The margin reaches the mapping's start: nothing to give back.
    assert_eq!(unused_stack(maps, 0x7ffd10004000, 0x4000, 4096), None);
    assert_eq!(unused_stack(maps, 0x7ffd10002000, 0x4000, 4096), None);
    // No stack line at all.
    assert_eq!(
        unused_stack(MAPS.as_bytes(), 0x7ffd1001f123, 0x4000, 4096),
        None
    );
}

#[test]
fn kept_pages_are_each_addresss_page_and_the_next_once_each() {
    assert_eq!(
        kept_pages(&[0x5123, 0x5fff, 0x6000, 0x9001], 0x1000),
        vec![0x5000, 0x6000, 0x7000, 0x9000, 0xa000]
    );
    assert!(kept_pages(&[], 0x1000).is_empty());
}

#[test]
fn a_range_without_its_kept_pages_is_the_rest_in_pieces() {
    let page = 0x1000;
    assert_eq!(
        without(
            0x1000..0x9000,
            &[0x0, 0x1000, 0x4000, 0x5000, 0x8000, 0x9000],
            page
        ),
        vec![0x2000..0x4000, 0x6000..0x8000]
    );
    assert_eq!(
        without(0x1000..0x3000, &[0x5000], page),
        vec![0x1000..0x3000]
    );
    assert!(without(0x1000..0x2000, &[0x1000], page).is_empty());
}

proptest::proptest! {
    /// Every page of the range is in exactly one of: a piece, the kept pages.
    #[test]
    fn pieces_and_kept_pages_tile_the_range(
        start in 0usize..64, len in 1usize..64, keep in proptest::collection::vec(0usize..160, 0..12)
    ) {
        let page = 0x1000;
        let range = start * page..(start + len) * page;
        let kept = kept_pages(&keep.iter().map(|k| k * page / 2).collect::<Vec<_>>(), page);
        let pieces = without(range.clone(), &kept, page);
        for p in range.clone().step_by(page) {
            let in_pieces = pieces.iter().filter(|r| r.contains(&p)).count();
            let is_kept = kept.contains(&p);
            proptest::prop_assert_eq!(in_pieces + usize::from(is_kept), 1, "page {:#x}", p);
        }
        for r in &pieces {
            proptest::prop_assert!(r.start < r.end && range.start <= r.start && r.end <= range.end);
        }
    }
}

/// Whether the page holding `addr` is mapped in this process now (`/proc/self/pagemap`'s
/// "present" bit).
fn present(addr: usize) -> bool {
    use std::os::unix::fs::FileExt;
    let mut entry = [0u8; 8];
    let file = std::fs::File::open("/proc/self/pagemap").unwrap();
    file.read_exact_at(&mut entry, (addr / 4096 * 8) as u64)
        .unwrap();
    u64::from_le_bytes(entry) >> 63 == 1
}

#[test]
fn the_pages_it_is_asked_to_keep_stay_mapped() {
    // Code that nothing here runs, far from what reading pagemap runs (which faults its
    // own pages back in, with their neighbours).
    let kept = nix::libc::getpwnam as *const () as usize;
    let _alone = RELEASING.lock().unwrap_or_else(|e| e.into_inner());
    assert!(release_clean_pages(&[kept]) > 0);
    let (kept_present, next_present) = (present(kept), present(kept / 4096 * 4096 + 4096));
    assert!(kept_present && next_present);
}

/// A read-only private mapping of a file of `pages` pages, the page `copied` (if any) made
/// a private copy by a write; unmapped when dropped.
struct Mapped {
    at: std::ptr::NonNull<std::ffi::c_void>,
    len: usize,
}

impl Mapped {
    fn new(pages: usize, copied: Option<usize>) -> Mapped {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap, mprotect};
        let page = page_size();
        let file = tempfile::tempfile().unwrap();
        file.set_len((pages * page) as u64).unwrap();
        let len = std::num::NonZeroUsize::new(pages * page).unwrap();
        // SAFETY: a fresh private mapping of a file only this test has; nothing else
        // refers to its memory.
        let at = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_PRIVATE,
                &file,
                0,
            )
        }
        .unwrap();
        for n in 0..pages {
            // SAFETY: inside the mapping just made, readable.
            unsafe { std::ptr::read_volatile((at.as_ptr() as *const u8).add(n * page)) };
        }
        if let Some(n) = copied {
            // SAFETY: the page lies inside the mapping; it is made writable for the one
            // write that makes it a private copy, then read-only again.
            unsafe {
                let p = at.byte_add(n * page);
                mprotect(p, page, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE).unwrap();
                std::ptr::write_volatile(p.as_ptr() as *mut u8, 1);
                mprotect(p, page, ProtFlags::PROT_READ).unwrap();
            }
        }
        Mapped { at, len: len.get() }
    }

    fn range(&self) -> Range<usize> {
        let start = self.at.as_ptr() as usize;
        start..start + self.len
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, which nothing refers to any more.
        let _ = unsafe { nix::sys::mman::munmap(self.at, self.len) };
    }
}

/// pagemap is read a chunk at a time: a copy is found wherever it lies, the last entry
/// of a chunk and the first of the next included.
#[test]
fn a_copy_is_found_in_any_chunk_of_a_long_mapping() {
    let _alone = RELEASING.lock().unwrap_or_else(|e| e.into_inner());
    let page = page_size();
    let clean = Mapped::new(1100, None);
    assert_eq!(unmodified(vec![clean.range()], page), vec![clean.range()]);
    // What follows a range is not read as its own: here the page after it is a copy.
    let longer = Mapped::new(1101, Some(1100));
    let first = longer.range().start..longer.range().end - page;
    assert_eq!(unmodified(vec![first.clone()], page), vec![first]);
    for copied in [0, 511, 512, 1023, 1024, 1099] {
        let mapped = Mapped::new(1100, Some(copied));
        assert!(
            unmodified(vec![mapped.range()], page).is_empty(),
            "the copy of page {copied} was not found"
        );
    }
}
