use super::*;

const SMAPS: &str = "\
55d0c0000000-55d0c0010000 r--p 00000000 08:01 1234                       /usr/bin/gunicorn-launcher
Size:                 64 kB
Anonymous:             0 kB
55d0c0010000-55d0c0020000 r-xp 00010000 08:01 1234                       /usr/bin/gunicorn-launcher
Size:                 64 kB
Anonymous:             0 kB
55d0c0020000-55d0c0024000 r--p 00020000 08:01 1234                       /usr/bin/gunicorn-launcher
Size:                 16 kB
Anonymous:            16 kB
55d0c0024000-55d0c0025000 rw-p 00024000 08:01 1234                       /usr/bin/gunicorn-launcher
Anonymous:             0 kB
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
Anonymous:           132 kB
7f0000000000-7f0000001000 r--s 00000000 08:01 99                         /var/cache/x (deleted)
Anonymous:             0 kB
7f0000002000-7f0000003000 ---p 00000000 08:01 99                         /var/cache/x
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
";

#[test]
fn only_unmodified_read_only_file_mappings_qualify() {
    assert_eq!(
        clean_file_mappings(SMAPS.as_bytes()),
        vec![
            0x55d0c0000000..0x55d0c0010000,
            0x55d0c0010000..0x55d0c0020000,
            0x7f0000000000..0x7f0000001000,
        ]
    );
    assert!(clean_file_mappings(b"garbage\nAnonymous: 0 kB\n").is_empty());
    // A header without its Anonymous line never qualifies.
    assert!(clean_file_mappings(&SMAPS.as_bytes()[..100]).is_empty());
}

#[test]
fn releasing_keeps_the_process_working() {
    let smaps = std::fs::read("/proc/self/smaps").unwrap();
    assert!(!clean_file_mappings(&smaps).is_empty());
    assert!(release_clean_pages() > 0);
    // The code runs on, read back from the file.
    let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
    assert_eq!(v.join(",").len(), 289);
}
