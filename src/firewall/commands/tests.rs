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

/// A pipe whose writer is still open but silent: drain takes what there is and returns at
/// once (it would block), keeping the pipe for later.
#[test]
fn drain_returns_when_a_silent_pipe_would_block() {
    let (reader, writer) = std::io::pipe().unwrap();
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&reader),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let (sent, returned) = std::sync::mpsc::channel();
    let mut w = writer;
    std::io::Write::write_all(&mut w, b"part").unwrap();
    std::thread::spawn(move || {
        let mut pipe = Some(reader);
        let mut into = Vec::new();
        drain(&mut pipe, &mut into);
        let _ = sent.send((into, pipe.is_some()));
    });
    // Generous: it returns in microseconds, and spins for ever if it mistakes
    // "would block" for an interruption.
    let (into, kept) = returned
        .recv_timeout(Duration::from_secs(20))
        .expect("drain did not return on a silent pipe");
    assert_eq!(into, b"part");
    assert!(kept, "the pipe is kept until its end");
    drop(w);
}

/// A tool that closes its output and complains afterwards: the complaint is still read,
/// the tool waited for until both its pipes are closed.
#[test]
fn a_complaint_after_the_output_closed_is_still_read() {
    let commands = [(
        PathBuf::from("/bin/sh"),
        vec![
            "-c".to_string(),
            "echo ruleset; exec 1>&-; sleep 0.2; echo 'late complaint' >&2".to_string(),
        ],
    )];
    let out = Commands::start(&commands, Instant::now() + Duration::from_secs(30)).wait();
    assert_eq!(out[0].stdout, b"ruleset\n");
    assert_eq!(out[0].complaint(), "late complaint");
}

/// A reader that gives `data` once, then fails with `then`.
struct Failing {
    data: Option<Vec<u8>>,
    then: std::io::ErrorKind,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.data.take() {
            Some(d) => {
                buf[..d.len()].copy_from_slice(&d);
                Ok(d.len())
            }
            None => Err(self.then.into()),
        }
    }
}

#[test]
fn a_pipe_is_kept_while_it_would_block_and_closed_at_its_end_or_an_error() {
    for (then, kept) in [
        (std::io::ErrorKind::WouldBlock, true),
        (std::io::ErrorKind::BrokenPipe, false),
        (std::io::ErrorKind::Other, false),
    ] {
        let mut pipe = Some(Failing {
            data: Some(b"table inet t".to_vec()),
            then,
        });
        let mut into = b"[".to_vec();
        drain(&mut pipe, &mut into);
        assert_eq!(into, b"[table inet t", "{then:?}");
        assert_eq!(pipe.is_some(), kept, "{then:?}");
    }
    let mut ended = Some(&b"end"[..]);
    let mut into = Vec::new();
    drain(&mut ended, &mut into);
    assert_eq!((into.as_slice(), ended.is_none()), (&b"end"[..], true));
}
