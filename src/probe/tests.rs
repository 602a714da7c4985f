use super::http::build_request;
use super::*;
use proptest::prelude::*;
use std::io::{self, BufRead, Write};
use std::net::TcpListener;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

const QUICK: Duration = Duration::from_millis(300);
const GENEROUS: Duration = Duration::from_secs(5);
/// Time allowed beyond a timeout before a probe counts as overrunning it: generous
/// (scheduling on a busy 2-core machine), yet far below GENEROUS, so a probe that waits
/// out the longer timeout instead of the one it was given still fails.
const SLACK: Duration = Duration::from_millis(2000);

#[test]
fn outcomes_read_plainly() {
    assert_eq!(Outcome::Status(200).to_string(), "HTTP 200");
    assert_eq!(Outcome::Refused.to_string(), "connection refused");
    assert_eq!(Outcome::Timeout.to_string(), "timed out");
    assert_eq!(
        Outcome::Error("connection reset".into()).to_string(),
        "connection reset"
    );
    let result = ProbeResult {
        addr: "127.0.0.1:8001".parse().unwrap(),
        host: "127.0.0.1:8001".into(),
        outcome: Outcome::Status(400),
    };
    assert!(result.reachable());
    assert_eq!(
        result.to_string(),
        "127.0.0.1:8001 (Host 127.0.0.1:8001): HTTP 400"
    );
    for outcome in [
        Outcome::Refused,
        Outcome::Timeout,
        Outcome::Error("x".into()),
    ] {
        assert!(
            !ProbeResult {
                addr: result.addr,
                host: result.host.clone(),
                outcome
            }
            .reachable()
        );
    }
}

#[test]
fn paths_that_would_break_the_request_are_refused() {
    let addr: SocketAddr = "127.0.0.1:8001".parse().unwrap();
    for path in ["/a b", "/x\r\nX-Evil: 1", "/\t", "/é", "/\0"] {
        assert!(
            build_request(&Request::to(addr).host, path).is_err(),
            "{path:?}"
        );
        let outcome = probe(addr, path, QUICK).outcome;
        assert!(
            matches!(&outcome, Outcome::Error(m) if m.contains("invalid probe path")),
            "{outcome:?}"
        );
    }
    assert!(build_request(&Request::to(addr).host, "/search?q=a%20b&x=1#frag").is_ok());
}

// --------------------------------------------------------- real sockets

/// Serves one connection on `bind` with `handler`, in a detached thread.
fn serve_one(bind: &str, handler: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            handler(stream);
        }
    });
    addr
}

/// The request head (up to the blank line), as the server received it.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    let mut reader = io::BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        match reader.read_until(b'\n', &mut head) {
            Ok(0) | Err(_) => break,
            Ok(_) if head[before..] == *b"\r\n" => break,
            Ok(_) if head.len() > 8192 => break,
            Ok(_) => {}
        }
    }
    head
}

/// A server that reads the request, hands it to the test, and answers `response`.
fn answering(bind: &str, response: &'static [u8]) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let addr = serve_one(bind, move |mut stream| {
        let head = read_head(&mut stream);
        let _ = tx.send(head);
        let _ = stream.write_all(response);
    });
    (addr, rx)
}

/// A server that accepts and then says nothing until the returned sender is dropped.
fn silent() -> (SocketAddr, mpsc::Sender<()>) {
    let (hold, held) = mpsc::channel::<()>();
    let addr = serve_one("127.0.0.1:0", move |stream| {
        let _ = held.recv();
        drop(stream);
    });
    (addr, hold)
}

/// A free port: bound, then released, so connecting to it is refused.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn received(rx: &mpsc::Receiver<Vec<u8>>) -> String {
    String::from_utf8(rx.recv_timeout(GENEROUS).unwrap()).unwrap()
}

#[test]
fn answers_200_with_the_request_we_mean() {
    let (addr, rx) = answering(
        "127.0.0.1:0",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let result = probe(addr, "/health?x=1", GENEROUS);
    assert_eq!(result.outcome, Outcome::Status(200));
    assert!(result.reachable());
    assert_eq!(result.addr, addr);
    let head = received(&rx);
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("GET /health?x=1 HTTP/1.1"));
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert!(
        headers.contains(&format!("Host: {addr}").as_str()),
        "{head}"
    );
    assert!(headers.contains(&"Connection: close"), "{head}");
    assert!(headers.contains(&"User-Agent: gunicorn-launcher"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
}

#[test]
fn a_400_counts_as_reachable() {
    let (addr, rx) = answering(
        "127.0.0.1:0",
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<h1>Bad Request (400)</h1>",
    );
    let result = probe(addr, "/", GENEROUS);
    assert_eq!(result.outcome, Outcome::Status(400));
    assert!(result.reachable());
    assert!(received(&rx).starts_with("GET / HTTP/1.1\r\n"));
}

#[test]
fn a_server_that_closes_at_once_is_an_error() {
    let addr = serve_one("127.0.0.1:0", drop);
    let result = probe(addr, "/", GENEROUS);
    assert!(matches!(result.outcome, Outcome::Error(_)), "{result}");
    assert!(!result.reachable());
}

#[test]
fn a_server_that_closes_after_reading_says_closed() {
    let addr = serve_one("127.0.0.1:0", |mut stream| {
        read_head(&mut stream);
    });
    let outcome = probe(addr, "/", GENEROUS).outcome;
    assert_eq!(
        outcome,
        Outcome::Error("connection closed before any response".into())
    );
}

#[test]
fn a_reset_says_reset() {
    let addr = serve_one("127.0.0.1:0", |mut stream| {
        read_head(&mut stream);
        // SO_LINGER 0 makes close() send RST instead of FIN.
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &linger).unwrap();
    });
    let outcome = probe(addr, "/", GENEROUS).outcome;
    assert_eq!(outcome, Outcome::Error("connection reset".into()));
}

#[test]
fn garbage_is_not_http() {
    let (addr, _rx) = answering("127.0.0.1:0", b"SSH-2.0-OpenSSH_9.6\r\n");
    let outcome = probe(addr, "/", GENEROUS).outcome;
    assert_eq!(
        outcome,
        Outcome::Error("not HTTP: SSH-2.0-OpenSSH_9.6\\r\\n".into())
    );

    let (addr, _rx) = answering("127.0.0.1:0", b"\x15\x03\x01\x00\x02\x02\x46");
    let outcome = probe(addr, "/", GENEROUS).outcome;
    assert_eq!(
        outcome,
        Outcome::Error("not HTTP: \\x15\\x03\\x01\\x00\\x02\\x02F".into())
    );
}

#[test]
fn garbage_without_newline_is_rejected_without_waiting() {
    let (addr, hold) = silent_after(b"<html>");
    let started = Instant::now();
    let outcome = probe(addr, "/", GENEROUS).outcome;
    assert_eq!(outcome, Outcome::Error("not HTTP: <html>".into()));
    assert!(started.elapsed() < GENEROUS / 2);
    drop(hold);
}

/// Sends `bytes`, then holds the connection open until the sender is dropped.
fn silent_after(bytes: &'static [u8]) -> (SocketAddr, mpsc::Sender<()>) {
    let (hold, held) = mpsc::channel::<()>();
    let addr = serve_one("127.0.0.1:0", move |mut stream| {
        let _ = stream.write_all(bytes);
        let _ = held.recv();
    });
    (addr, hold)
}

#[test]
fn a_silent_server_times_out_on_time() {
    let (addr, hold) = silent();
    let started = Instant::now();
    let result = probe(addr, "/", QUICK);
    let took = started.elapsed();
    assert_eq!(result.outcome, Outcome::Timeout);
    assert!(!result.reachable());
    assert!(took >= QUICK && took < QUICK + SLACK, "{took:?}");
    drop(hold);
}

#[test]
fn a_trickling_server_cannot_stretch_the_deadline() {
    let addr = serve_one("127.0.0.1:0", |mut stream| {
        stream.set_nodelay(true).unwrap();
        let started = Instant::now();
        for &b in b"HTTP/1.1 200 ".iter().chain([b'a'; 500].iter()) {
            if stream.write_all(&[b]).is_err() || started.elapsed() > GENEROUS {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    let started = Instant::now();
    let outcome = probe(addr, "/", QUICK).outcome;
    let took = started.elapsed();
    assert_eq!(outcome, Outcome::Timeout);
    assert!(took < QUICK + SLACK, "{took:?}");
}

#[test]
fn an_endless_status_line_is_cut_off() {
    let (hold, held) = mpsc::channel::<()>();
    let addr = serve_one("127.0.0.1:0", move |mut stream| {
        let mut line = b"HTTP/1.1 200 ".to_vec();
        line.resize(64 * 1024, b'a');
        let _ = stream.write_all(&line);
        let _ = held.recv();
    });
    let outcome = probe(addr, "/", GENEROUS).outcome;
    let Outcome::Error(message) = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        message.starts_with("no end of status line in the first 1024 bytes: HTTP/1.1 200 aaa"),
        "{message}"
    );
    drop(hold);
}

#[test]
fn a_status_line_split_across_writes_still_parses() {
    let addr = serve_one("127.0.0.1:0", |mut stream| {
        read_head(&mut stream);
        stream.set_nodelay(true).unwrap();
        for part in [&b"HT"[..], b"TP/1.1 2", b"04 No", b" Content\r", b"\n\r\n"] {
            stream.write_all(part).unwrap();
            thread::sleep(Duration::from_millis(30));
        }
    });
    assert_eq!(probe(addr, "/", GENEROUS).outcome, Outcome::Status(204));
}

#[test]
fn a_closed_port_is_refused() {
    let result = probe(closed_port(), "/", GENEROUS);
    assert_eq!(result.outcome, Outcome::Refused);
    assert!(!result.reachable());
}

#[test]
fn a_full_backlog_times_out_in_connect() {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, socket,
    };
    // Backlog 0 admits one unaccepted connection; Linux then drops further
    // SYNs, so the probe's connect hangs like one to a firewalled host.
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )
    .unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let local: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
    let addr = SocketAddr::V4(local.into());
    let _filler = TcpStream::connect_timeout(&addr, GENEROUS).unwrap();
    let started = Instant::now();
    let outcome = probe(addr, "/", QUICK).outcome;
    let took = started.elapsed();
    assert_eq!(outcome, Outcome::Timeout);
    assert!(took < QUICK + SLACK, "{took:?}");
}

#[test]
fn a_zero_timeout_times_out_at_once() {
    let (addr, _rx) = answering("127.0.0.1:0", b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(probe(addr, "/", Duration::ZERO).outcome, Outcome::Timeout);
    assert!(
        probe_all(&[Request::to(addr), Request::to(addr)], "/", Duration::ZERO)
            .iter()
            .all(|r| r.outcome == Outcome::Timeout)
    );
}

#[test]
fn link_local_without_scope_says_so() {
    let addr: SocketAddr = "[fe80::1]:8001".parse().unwrap();
    assert_eq!(
        probe(addr, "/", QUICK).outcome,
        Outcome::Error("link-local address without a scope id".into())
    );
}

#[test]
fn a_huge_timeout_does_not_overflow() {
    let (addr, _rx) = answering("127.0.0.1:0", b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(
        probe(addr, "/", Duration::MAX).outcome,
        Outcome::Status(200)
    );
}

#[test]
fn probes_ipv6_loopback() {
    crate::test_support::network::private_network_with_ipv6();
    let (addr, rx) = answering("[::1]:0", b"HTTP/1.0 200 OK\r\n\r\n");
    assert_eq!(probe(addr, "/v6", GENEROUS).outcome, Outcome::Status(200));
    let head = received(&rx);
    assert!(head.starts_with("GET /v6 HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nHost: [::1]:{}\r\n", addr.port())),
        "{head}"
    );
}

#[test]
fn probe_all_keeps_order_and_runs_concurrently() {
    let (ok, _rx) = answering("127.0.0.1:0", b"HTTP/1.1 200 OK\r\n\r\n");
    let (bad_host, _rx2) = answering("127.0.0.1:0", b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let (quiet1, hold1) = silent();
    let (quiet2, hold2) = silent();
    let refused = closed_port();
    let addrs = [quiet1, ok, refused, quiet2, bad_host];
    let started = Instant::now();
    let results = probe_all(&addrs.map(Request::to), "/", QUICK);
    let took = started.elapsed();
    let got: Vec<(SocketAddr, Outcome)> =
        results.into_iter().map(|r| (r.addr, r.outcome)).collect();
    assert_eq!(
        got,
        vec![
            (quiet1, Outcome::Timeout),
            (ok, Outcome::Status(200)),
            (refused, Outcome::Refused),
            (quiet2, Outcome::Timeout),
            (bad_host, Outcome::Status(400)),
        ]
    );
    // Two silent servers one after the other would take 2 × QUICK.
    assert!(took < QUICK + SLACK, "{took:?}");
    drop((hold1, hold2));
}

/// A host with many addresses: probes wait for a free slot, never more are open at
/// once than allowed, and every one is answered, each within its own timeout.
#[test]
fn probes_past_the_slots_wait_their_turn_and_all_answer() {
    use crate::pollset::Pollable;
    let every = serve_all("127.0.0.1:0");
    let requests: Vec<Request> = (0..40).map(|_| Request::to(every)).collect();
    let mut probes = Probes::start_in(&requests, "/", GENEROUS, 3);
    let mut most = 0;
    while !probes.done() {
        most = most.max(probes.poll_fds().len());
        poll_once(&mut probes);
    }
    assert_eq!(most, 3, "three slots, and all of them used");
    let results = probes.results();
    assert_eq!(results.len(), 40);
    assert!(
        results.iter().all(|r| r.outcome == Outcome::Status(400)),
        "{results:?}"
    );
}

#[test]
fn probe_all_of_nothing_is_nothing() {
    assert!(probe_all(&[], "/", QUICK).is_empty());
}

/// Serves every connection on `bind` with a 400, as Django does for an unknown Host.
fn serve_all(bind: &str) -> SocketAddr {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                read_head(&mut stream);
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            });
        }
    });
    addr
}

#[test]
fn every_ipv4_target_of_this_host_answers_a_wildcard_listener() {
    let port = serve_all("0.0.0.0:0").port();
    let v4 = Families {
        ipv4: true,
        ipv6: false,
    };
    let addrs = targets(port, v4).unwrap().probe;
    for result in probe_all(&requests(&addrs), "/", GENEROUS) {
        assert_eq!(result.outcome, Outcome::Status(400), "{result}");
    }
}

#[test]
fn every_ipv6_target_of_this_host_answers_a_wildcard_listener() {
    crate::test_support::network::private_network_with_ipv6();
    let port = serve_all("[::]:0").port();
    let v6 = Families {
        ipv4: false,
        ipv6: true,
    };
    let found = targets(port, v6).unwrap();
    let addrs = found.probe;
    // ::1 and the link-local addresses of gl0 and gl1.
    assert_eq!(
        addrs.len(),
        3,
        "{addrs:?}; not probed: {:?}; {}",
        found.skipped,
        std::fs::read_to_string("/proc/thread-self/net/if_inet6").unwrap()
    );
    assert!(
        addrs[1..]
            .iter()
            .all(|a| matches!(a.ip(), std::net::IpAddr::V6(ip) if ip.is_unicast_link_local())),
        "{addrs:?}"
    );
    // Link-local addresses prove their scope ids work: without one, connect fails.
    for result in probe_all(&requests(&addrs), "/", GENEROUS) {
        assert_eq!(result.outcome, Outcome::Status(400), "{result}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever a server sends, over a real socket, the probe returns
    /// within its deadline and agrees with the parser.
    #[test]
    fn any_answer_is_survived(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let answer = bytes.clone();
        let addr = serve_one("127.0.0.1:0", move |mut stream| {
            read_head(&mut stream);
            let _ = stream.write_all(&answer);
        });
        let started = Instant::now();
        let outcome = probe(addr, "/", GENEROUS).outcome;
        prop_assert!(started.elapsed() < GENEROUS + SLACK);
        let seen = &bytes[..bytes.len().min(MAX_STATUS_LINE)];
        match parse_status_line(seen) {
            StatusLine::Status(code) => prop_assert_eq!(outcome, Outcome::Status(code)),
            _ => prop_assert!(matches!(outcome, Outcome::Error(_)), "{:?}", outcome),
        }
    }
}

fn requests(addrs: &[SocketAddr]) -> Vec<Request> {
    addrs.iter().map(|&a| Request::to(a)).collect()
}

/// The errors an operator meets read as short words; the rest keep the system's text and
/// name.
#[test]
fn probe_errors_read_as_short_words() {
    use nix::errno::Errno;
    assert_eq!(
        nonblocking::errno_outcome(Errno::ETIMEDOUT),
        Outcome::Timeout
    );
    assert_eq!(
        nonblocking::errno_outcome(Errno::ECONNREFUSED),
        Outcome::Refused
    );
    for (e, words) in [
        (Errno::ECONNRESET, "connection reset"),
        (Errno::ECONNABORTED, "connection aborted"),
        (
            Errno::EPIPE,
            "connection closed before the request was sent",
        ),
        (Errno::EHOSTUNREACH, "host unreachable"),
        (Errno::ENETUNREACH, "network unreachable"),
        (Errno::EADDRNOTAVAIL, "address not available"),
        (
            Errno::EACCES,
            "Permission denied (EACCES: Permission denied)",
        ),
    ] {
        assert_eq!(
            nonblocking::errno_outcome(e),
            Outcome::Error(words.into()),
            "{e}"
        );
    }
}

#[test]
fn open_descriptors_are_counted_one_for_one() {
    // Other tests open and close descriptors meanwhile: judge only counts that held still
    // around the opening, which they do once the busiest tests have ended.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = nonblocking::open_fds().expect("a count");
        let files: Vec<std::fs::File> = (0..5)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let with = nonblocking::open_fds().expect("a count");
        drop(files);
        let after = nonblocking::open_fds().expect("a count");
        if before == after && with == before + 5 {
            return;
        }
    }
    panic!("five more open files never showed as five more descriptors");
}

/// A probe of this host has as a rule connected by the time `connect` returns: its request
/// goes out then, and the first thing it waits for is the answer, not a writable socket.
/// (The kernel may finish a handshake later under load, so one start in twenty suffices.)
#[test]
fn a_probe_of_this_host_sends_as_it_connects() {
    use crate::pollset::Pollable;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent_at_once = (0..20).any(|_| {
        let probes = Probes::start(&[Request::to(addr)], "/", GENEROUS);
        let waits_for = probes
            .poll_fds()
            .iter()
            .map(|f| f.events())
            .collect::<Vec<_>>();
        let _ = listener.accept().unwrap();
        waits_for == [nix::poll::PollFlags::POLLIN]
    });
    assert!(
        sent_at_once,
        "every probe waited to be writable before it sent"
    );
}

/// A held probe connects and sends nothing until it is released; then its request goes.
#[test]
fn a_held_probe_sends_nothing_until_released() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut probes = Probes::start_held(Request::to(addr), "/", GENEROUS);
    let (mut stream, _) = listener.accept().unwrap();
    // The handshake may still be under way: wait until the probe is held.
    let deadline = Instant::now() + GENEROUS;
    while probes.held().is_none() {
        assert!(Instant::now() < deadline, "never held");
        poll_once(&mut probes);
    }
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let early = io::Read::read(&mut stream, &mut byte);
    assert_eq!(
        early.map_err(|e| e.kind()).unwrap_err(),
        io::ErrorKind::WouldBlock,
        "the held probe sent before it was released"
    );
    probes.release();
    stream.set_nonblocking(false).unwrap();
    assert!(read_head(&mut stream).starts_with(b"GET / HTTP/1.1\r\n"));
}

/// One round of what a caller's loop does: poll the probes' descriptors until one is ready
/// or the nearest deadline, then hand back what they said.
fn poll_once(probes: &mut Probes) {
    use crate::pollset::Pollable;
    let mut fds = probes.poll_fds();
    let _ = nix::poll::poll(&mut fds, crate::pollset::timeout(probes.deadline()));
    let ready: Vec<_> = fds
        .iter()
        .map(|f| f.revents().unwrap_or(nix::poll::PollFlags::empty()))
        .collect();
    drop(fds);
    probes.advance(&ready, Instant::now());
}
