use super::*;

#[test]
fn a_full_notify_queue_never_blocks() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let unread = UnixDatagram::bind(&path).unwrap();
    let systemd = Systemd::new(Some(path.as_os_str()), None);
    let (socket, _) = systemd.socket.as_ref().expect("a socket for a valid path");
    let flags = nix::fcntl::fcntl(socket.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert!(nix::fcntl::OFlag::from_bits_truncate(flags).contains(nix::fcntl::OFlag::O_NONBLOCK));
    // Far more than a datagram queue holds (net.unix.max_dgram_qlen, 512 by
    // default): a blocking send would hang here forever.
    const SENT: usize = 10_000;
    for _ in 0..SENT {
        systemd.status("x");
    }
    unread.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let mut received = 0;
    while unread.recv(&mut buf).is_ok() {
        assert_eq!(&buf[..9], b"STATUS=x\n");
        received += 1;
    }
    assert!(received > 0, "nothing arrived");
    assert!(
        received < SENT,
        "all {SENT} arrived: the queue never filled"
    );
}

#[test]
fn notify_socket_values_as_sd_daemon_reads_them() {
    assert!(notify_address(std::ffi::OsStr::new("/run/systemd/notify")).is_some());
    assert!(notify_address(std::ffi::OsStr::new("@abstract")).is_some());
    assert!(notify_address(std::ffi::OsStr::new("relative")).is_none());
}

#[test]
fn a_status_text_cannot_add_a_field() {
    let m = Systemd::ready_message("held by pid 7 (x\nREADY=1\nSTATUS=fake)");
    let text = String::from_utf8(m.0).unwrap();
    assert_eq!(
        text,
        "READY=1\nSTATUS=held by pid 7 (x\\nREADY=1\\nSTATUS=fake)\n"
    );
    assert_eq!(text.lines().filter(|l| *l == "READY=1").count(), 1);
}

#[test]
fn a_long_status_is_cut_so_that_systemd_takes_the_datagram() {
    let long = "HTTP 200 from 10.0.0.1, ".repeat(500);
    let m = Systemd::ready_message(&long);
    let text = String::from_utf8(m.0).unwrap();
    assert!(text.len() < 4096, "{}", text.len());
    assert!(text.starts_with("READY=1\nSTATUS=HTTP 200 from 10.0.0.1, "));
    assert!(
        text.ends_with(" … (the whole text is in the log)\n"),
        "{text}"
    );
    let short = Systemd::ready_message("verified");
    assert_eq!(short.0, b"READY=1\nSTATUS=verified\n");
    // Cut at a character's edge, never inside one.
    let wide = "é".repeat(MAX_STATUS);
    assert!(String::from_utf8(Systemd::ready_message(&wide).0).is_ok());
}

#[test]
fn ready_is_found_among_other_lines() {
    assert!(says_ready(b"STATUS=x\nREADY=1\n"));
    assert!(says_ready(b"READY=1"));
    assert!(!says_ready(b"READY=0\nSTATUS=READY=1"));
}

#[test]
fn the_child_socket_receives_what_is_sent_to_its_address() {
    let s = ChildSocket::bind().unwrap();
    let name = s.address.strip_prefix('@').unwrap();
    let tx = UnixDatagram::unbound().unwrap();
    tx.send_to_addr(
        b"STATUS=booting\n",
        &SocketAddr::from_abstract_name(name.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(!s.drain_ready());
    tx.send_to_addr(
        b"READY=1\n",
        &SocketAddr::from_abstract_name(name.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(s.drain_ready());
    assert!(!s.drain_ready());
}
