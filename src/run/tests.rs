use super::*;

/// Words whose estimated exec size (each word, its NUL and its pointer, plus the
/// launcher's own margin) comes to exactly `total` bytes.
fn argv_of_size(total: usize) -> Vec<String> {
    let pointer = std::mem::size_of::<usize>();
    let cost = |len: usize| len + 1 + pointer;
    let mut left = total - 128;
    let mut argv = Vec::new();
    while left > cost(100_000) + cost(0) {
        argv.push("a".repeat(100_000));
        left -= cost(100_000);
    }
    argv.push("b".repeat(left - cost(0)));
    argv
}

#[test]
fn a_command_of_exactly_arg_max_is_accepted_and_one_byte_more_refused() {
    let limit = nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX)
        .unwrap()
        .expect("ARG_MAX has a value under the test runner's stack limit") as usize;
    assert!(
        limit < 1 << 30,
        "ARG_MAX is {limit}: run the tests under a finite stack limit (ulimit -s)"
    );
    let env = ChildEnv::of(Vec::new(), Vec::new());
    assert!(fits_exec(&argv_of_size(limit), 2, &env).is_ok());
    let e = fits_exec(&argv_of_size(limit + 1), 2, &env).unwrap_err();
    assert_eq!(e.code, 2);
    assert!(
        e.message
            .starts_with(&format!("the gunicorn command and its environment take {} bytes; the kernel refuses more than {limit} (ARG_MAX", limit + 1)),
        "{}",
        e.message
    );
}
