use super::*;
use proptest::prelude::*;
use std::net::SocketAddrV6;

// ---------------------------------------------------------------- parser

#[test]
fn parses_common_status_lines() {
    let cases: &[(&[u8], u16)] = &[
        (b"HTTP/1.1 200 OK\r\n", 200),
        (b"HTTP/1.0 200 OK\r\n", 200),
        (b"HTTP/1.1 400 Bad Request\r\n", 400),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404),
        (b"HTTP/1.1 500 Internal Server Error\r\n", 500),
        (b"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n", 301),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 100),
        (b"HTTP/1.1 204\r\n", 204),
        (b"HTTP/1.1 204 \r\n", 204),
        (b"HTTP/1.1 200 OK\n", 200),
        (b"HTTP/1.1 200\n", 200),
        (b"HTTP/1.1 999 Whatever\r\n", 999),
        (b"HTTP/2.0 200 OK\r\n", 200),
        (b"HTTP/1.1 200 \xc3\xa9t\xc3\xa9\tfine\r\n", 200),
        (b"HTTP/1.1 200 OK  with  spaces \r\n", 200),
        (
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n",
            503,
        ),
    ];
    for (input, code) in cases {
        assert_eq!(
            parse_status_line(input),
            StatusLine::Status(*code),
            "{}",
            input.escape_ascii()
        );
    }
}

#[test]
fn incomplete_until_the_line_ends() {
    let cases: &[&[u8]] = &[
        b"",
        b"H",
        b"HTTP",
        b"HTTP/",
        b"HTTP/1",
        b"HTTP/1.1",
        b"HTTP/1.1 ",
        b"HTTP/1.1 2",
        b"HTTP/1.1 200",
        b"HTTP/1.1 200 ",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK\r",
        b"HTTP/1.1 200\r",
    ];
    for input in cases {
        assert_eq!(
            parse_status_line(input),
            StatusLine::Incomplete,
            "{}",
            input.escape_ascii()
        );
    }
}

#[test]
fn rejects_what_is_not_a_status_line() {
    let cases: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b" HTTP/1.1 200 OK\r\n",
        b"\r\nHTTP/1.1 200 OK\r\n",
        b"http/1.1 200 OK\r\n",
        b"HTTPS/1.1 200 OK\r\n",
        b"HTTP/1.1  200 OK\r\n",
        b"HTTP/1.1 200OK\r\n",
        b"HTTP/1.1 2000 OK\r\n",
        b"HTTP/1.1 20 OK\r\n",
        b"HTTP/1.1 20\r\n",
        b"HTTP/1.1 099 Low\r\n",
        b"HTTP/1.1 000\r\n",
        b"HTTP/11 200 OK\r\n",
        b"HTTP/1.10 200 OK\r\n",
        b"HTTP/a.b 200 OK\r\n",
        b"HTTP/1.1 2x0 OK\r\n",
        b"HTTP/1.1\t200 OK\r\n",
        b"HTTP/1.1 200 O\rK\r\n",
        b"HTTP/1.1 200 O\x00K\r\n",
        b"HTTP/1.1 200 O\x7fK\r\n",
        b"HTTP/1.1 200\rX",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x15\x03\x01\x00\x02\x02\x46",
        b"<html>",
        b"\x00",
        b"GET / HTTP/1.1\r\n",
        b"ICY 200 OK\r\n",
        b"RTSP/1.0 200 OK\r\n",
    ];
    for input in cases {
        assert_eq!(
            parse_status_line(input),
            StatusLine::NotHttp,
            "{}",
            input.escape_ascii()
        );
    }
}

#[test]
fn garbage_is_rejected_by_its_first_wrong_byte() {
    assert_eq!(parse_status_line(b"S"), StatusLine::NotHttp);
    assert_eq!(parse_status_line(b"HTTP/1.1 0"), StatusLine::NotHttp);
    assert_eq!(parse_status_line(b"HTTP/1.1 200X"), StatusLine::NotHttp);
}

fn status_line() -> impl Strategy<Value = (Vec<u8>, u16)> {
    (
        0u8..10,
        0u8..10,
        100u16..1000,
        proptest::option::of("[ -~\t]{0,40}"),
        prop_oneof![Just("\r\n"), Just("\n")],
    )
        .prop_map(|(major, minor, code, reason, end)| {
            let reason = reason.map(|r| format!(" {r}")).unwrap_or_default();
            let line = format!("HTTP/{major}.{minor} {code}{reason}{end}");
            (line.into_bytes(), code)
        })
}

proptest! {
    #[test]
    fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let StatusLine::Status(code) = parse_status_line(&bytes) {
            prop_assert!(bytes.starts_with(b"HTTP/"));
            prop_assert!(bytes.contains(&b'\n'));
            prop_assert!((100..1000).contains(&code));
        }
    }

    #[test]
    fn valid_lines_parse_and_their_prefixes_wait(
        (line, code) in status_line(),
        rest in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let end = line.len() - if line.ends_with(b"\r\n") { 2 } else { 1 };
        for cut in 0..=end {
            prop_assert_eq!(parse_status_line(&line[..cut]), StatusLine::Incomplete);
        }
        prop_assert_eq!(parse_status_line(&line), StatusLine::Status(code));
        // Whatever follows (headers, body, junk) does not change the verdict.
        let mut longer = line.clone();
        longer.extend_from_slice(&rest);
        prop_assert_eq!(parse_status_line(&longer), StatusLine::Status(code));
    }

    #[test]
    fn a_verdict_never_changes_with_more_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        more in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let first = parse_status_line(&bytes);
        if first != StatusLine::Incomplete {
            let mut longer = bytes.clone();
            longer.extend_from_slice(&more);
            prop_assert_eq!(parse_status_line(&longer), first);
        }
    }
}

// --------------------------------------------------------------- request

#[test]
fn request_for_ipv4() {
    let addr: SocketAddr = "192.0.2.7:8001".parse().unwrap();
    let request = build_request(&Request::to(addr).host, "/health").unwrap();
    assert_eq!(
        request,
        b"GET /health HTTP/1.1\r\nHost: 192.0.2.7:8001\r\n\
              User-Agent: gunicorn-launcher\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn request_for_ipv6_brackets_the_host_without_scope() {
    let addr = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 8001, 0, 2));
    let request = String::from_utf8(build_request(&Request::to(addr).host, "/").unwrap()).unwrap();
    assert!(
        request.contains("\r\nHost: [fe80::1]:8001\r\n"),
        "{request}"
    );
    // Port 80 is left out, as browsers leave it out.
    let addr: SocketAddr = "[::1]:80".parse().unwrap();
    let request = String::from_utf8(build_request(&Request::to(addr).host, "").unwrap()).unwrap();
    assert!(
        request.starts_with("GET / HTTP/1.1\r\nHost: [::1]\r\n"),
        "{request}"
    );
}

#[test]
fn named_requests_carry_the_name_and_the_port() {
    let addr: SocketAddr = "198.18.0.1:8001".parse().unwrap();
    let named = Request::named(addr, "solvit.example.com");
    assert_eq!(named.host, "solvit.example.com:8001");
    assert!(!named.is_address());
    assert!(Request::to(addr).is_address());
    assert_eq!(
        Request::named("198.18.0.1:80".parse().unwrap(), "a.b").host,
        "a.b"
    );
    for host in ["", "a b", "x\r\nX-Evil: 1", "é"] {
        assert!(build_request(host, "/").is_err(), "{host:?}");
    }
}

#[test]
fn preview_escapes_and_shortens() {
    assert_eq!(preview(b"SSH-2.0\r\n"), "SSH-2.0\\r\\n");
    assert_eq!(preview(b"\x00\xff"), "\\x00\\xff");
    let long = vec![b'a'; 100];
    assert_eq!(preview(&long), format!("{}...", "a".repeat(PREVIEW_BYTES)));
}
