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

/// Variables (`Vnnnn=...`) whose estimated exec size, as [`argv_of_size`]'s words, comes to
/// exactly `total` bytes.
fn env_of_size(total: usize) -> ChildEnv {
    let pointer = std::mem::size_of::<usize>();
    let cost = |len: usize| len + 1 + pointer;
    let var = |i: usize, len: usize| (format!("V{i:04}").into(), "v".repeat(len - 6).into());
    let mut left = total - 128;
    let mut vars = Vec::new();
    while left > cost(100_000) + cost(10) {
        vars.push(var(vars.len(), 100_000));
        left -= cost(100_000);
    }
    vars.push(var(vars.len(), left - cost(0)));
    ChildEnv::of(vars, Vec::new())
}

#[test]
fn an_environment_of_exactly_arg_max_is_accepted_and_one_byte_more_refused() {
    let limit = nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX)
        .unwrap()
        .expect("ARG_MAX has a value under the test runner's stack limit") as usize;
    assert!(
        limit < 1 << 30,
        "ARG_MAX is {limit}: run the tests under a finite stack limit"
    );
    assert!(fits_exec(&[], 2, &env_of_size(limit)).is_ok());
    let e = fits_exec(&[], 2, &env_of_size(limit + 1)).unwrap_err();
    assert!(
        e.message.starts_with(&format!(
            "the gunicorn command and its environment take {} bytes",
            limit + 1
        )),
        "{}",
        e.message
    );
}

/// One variable is measured as execve takes it, `NAME=value` in bytes, whatever its encoding.
#[test]
fn a_variable_of_exactly_the_kernels_limit_is_accepted_and_one_byte_more_refused() {
    use std::os::unix::ffi::OsStringExt;
    // Not UTF-8: a lossy conversion would count each byte 0xff as three.
    let var = |len: usize| {
        let value = std::ffi::OsString::from_vec(vec![0xff; len - 2]);
        ChildEnv::of(vec![("K".into(), value)], Vec::new())
    };
    assert!(fits_exec(&[], 2, &var(MAX_ARG_STRLEN - 1)).is_ok());
    let e = fits_exec(&[], 2, &var(MAX_ARG_STRLEN)).unwrap_err();
    assert_eq!(e.code, exit::CONFIG);
    assert!(
        e.message.starts_with(&format!(
            "the environment variable K is {MAX_ARG_STRLEN} bytes long"
        )),
        "{}",
        e.message
    );
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
