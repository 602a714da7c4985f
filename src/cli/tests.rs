use super::*;
use proptest::prelude::*;

proptest! {
    /// Whatever `check` accepts can work: an absolute visible-ASCII
    /// path, a timeout above zero, host names that are names; the rest
    /// is a usage error (exit 2), never a probe that cannot succeed.
    #[test]
    fn check_accepts_only_values_that_can_work(
        path in "[/a-z %\t?]{0,8}",
        timeout in proptest::sample::select(vec!["0s", "0", "1ms", "2s", "soon", "", "1h"]),
        name in "[a-z.:/ _-]{0,10}",
    ) {
        let parsed = Cli::try_parse_from([
            "gunicorn-launcher", "check", "--path", &path, "--timeout", timeout, "--host-name", &name,
        ]);
        match parsed {
            Ok(Cli { command: Cmd::Check(a), .. }) => {
                let path = a.path.expect("--path was given");
                prop_assert!(path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert!(!a.timeout.expect("--timeout was given").is_zero());
                for n in &a.host_names {
                    prop_assert!(!n.is_empty() && !n.contains([':', '/', ' ']));
                }
            }
            Ok(_) => prop_assert!(false, "not a check"),
            Err(e) => prop_assert_eq!(e.exit_code(), 2),
        }
    }
}
