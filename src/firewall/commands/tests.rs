use super::*;
use std::time::Duration;

#[test]
fn outputs_come_back_in_order_with_their_complaints() {
    let sh = PathBuf::from("/bin/sh");
    let commands = [
        (
            sh.clone(),
            vec![
                "-c".to_string(),
                "printf 'a%.0s' $(seq 100000); echo oops >&2".to_string(),
            ],
        ),
        (
            sh.clone(),
            vec![
                "-c".to_string(),
                "echo '  ' >&2; echo 'nft: Operation not permitted' >&2; exit 1".to_string(),
            ],
        ),
        (PathBuf::from("/nonexistent/nft"), Vec::new()),
    ];
    let out = Commands::start(&commands, Instant::now() + Duration::from_secs(30)).wait();
    assert_eq!(out[0].stdout.len(), 100_000);
    assert_eq!(out[0].complaint(), "oops");
    assert_eq!(out[1].complaint(), "nft: Operation not permitted");
    assert!(
        out[2]
            .complaint()
            .starts_with("cannot run /nonexistent/nft"),
        "{}",
        out[2].complaint()
    );
}

#[test]
fn a_command_past_its_deadline_is_killed_and_said_so() {
    let commands = [(PathBuf::from("/bin/sleep"), vec!["30".to_string()])];
    let started = Instant::now();
    let out = Commands::start(&commands, Instant::now() + Duration::from_millis(100)).wait();
    assert_eq!(out[0].complaint(), "sleep did not answer in time");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the deadline was not kept"
    );
}
