//! The HTTP of a probe: the request a browser would send to an address (a
//! `GET` with the `Host` the browser would name) and the reading of the
//! status line that answers it. `GET` rather than `HEAD`: gunicorn >= 27 logs
//! a warning for every HEAD answered by an app that writes a body, and only
//! the status line is read, so the body costs nothing.

use std::net::SocketAddr;

/// The most bytes read while waiting for the end of the status line. Real
/// status lines are about 20 bytes; the bound stops a server that streams
/// bytes without a newline from holding the probe or its memory.
pub const MAX_STATUS_LINE: usize = 1024;

/// How many bytes of a bad answer go into an error message: enough to
/// recognise the protocol (`SSH-2.0-...`, a TLS alert), short enough for a log line.
const PREVIEW_BYTES: usize = 48;

/// One probe to make: the address to connect to, and the `Host` header to
/// send, as a browser would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub addr: SocketAddr,
    pub host: String,
}

impl Request {
    /// What a browser pointed at the address itself sends
    /// (`http://198.18.0.1:8001/`).
    pub fn to(addr: SocketAddr) -> Request {
        Request {
            addr,
            host: host_header(&address_host(addr.ip()), addr.port()),
        }
    }

    /// What a browser sends for `http://NAME:PORT/`, delivered to `addr`
    /// (where the name resolves for the clients).
    pub fn named(addr: SocketAddr, name: &str) -> Request {
        Request {
            addr,
            host: host_header(name, addr.port()),
        }
    }

    /// The Host names the address itself, not a configured name.
    pub fn is_address(&self) -> bool {
        self.host == Request::to(self.addr).host
    }
}

/// An IP address as a URL's host: IPv6 in brackets, without the `%scope`
/// (a zone id means nothing to the server, and a raw `%` is not valid there).
fn address_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `host:port`, or `host` alone on port 80, as browsers write it.
fn host_header(host: &str, port: u16) -> String {
    if port == 80 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

/// The request bytes, or why `path` or `host` cannot be sent: a space or a
/// control character would end the request line early or inject a header.
pub(super) fn build_request(host: &str, path: &str) -> Result<Vec<u8>, String> {
    let path = if path.is_empty() { "/" } else { path };
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "invalid probe path {path:?}: only visible ASCII is allowed (percent-encode the rest)"
        ));
    }
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "invalid Host {host:?}: only visible ASCII is allowed"
        ));
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gunicorn-launcher\r\nConnection: close\r\n\r\n"
    )
    .into_bytes())
}

/// The first bytes of an answer, escaped so that binary junk stays one
/// printable line.
pub(super) fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(PREVIEW_BYTES)];
    let ellipsis = if bytes.len() > PREVIEW_BYTES {
        "..."
    } else {
        ""
    };
    format!("{}{ellipsis}", shown.escape_ascii())
}

/// What the bytes received so far say about the status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLine {
    /// A complete status line (terminated by CRLF or a bare LF); the code.
    Status(u16),
    /// Everything so far fits a status line; its end has not arrived.
    Incomplete,
    /// These bytes cannot begin an HTTP status line.
    NotHttp,
}

/// Parses the start of an HTTP response: `HTTP/<digit>.<digit> <3 digits>`,
/// then an optional `SP reason-phrase`, then CRLF or a bare LF (RFC 9112
/// allows both for a tolerant recipient). Status codes 100–999 (RFC 9110's
/// three digits, the first not 0). Any major version counts: an odd but
/// answering HTTP server is still proof that the port is reachable.
///
/// Total on any input and decided on a prefix: garbage is rejected by its
/// first wrong byte, without waiting for a newline that may never come.
pub fn parse_status_line(buf: &[u8]) -> StatusLine {
    // 'D' is any digit, 'N' a digit 1-9; every other byte must match exactly.
    const SHAPE: &[u8; 12] = b"HTTP/D.D NDD";
    let mut code: u16 = 0;
    for (i, &b) in buf.iter().enumerate() {
        let fits = match SHAPE.get(i) {
            Some(b'D') => b.is_ascii_digit(),
            Some(b'N') => matches!(b, b'1'..=b'9'),
            Some(&expected) => b == expected,
            None => match b {
                b'\n' => return StatusLine::Status(code),
                b'\r' => {
                    return match buf.get(i + 1) {
                        None => StatusLine::Incomplete,
                        Some(b'\n') => StatusLine::Status(code),
                        Some(_) => StatusLine::NotHttp,
                    };
                }
                // Right after the code only the separator may follow, so
                // "HTTP/1.1 2000" is not taken for a 200.
                b' ' => true,
                _ if i == SHAPE.len() => false,
                // reason-phrase = *( HTAB / SP / VCHAR / obs-text )
                b'\t' | b'!'..=b'~' | 0x80..=0xff => true,
                _ => false,
            },
        };
        if !fits {
            return StatusLine::NotHttp;
        }
        if (9..12).contains(&i) {
            code = code * 10 + u16::from(b - b'0');
        }
    }
    StatusLine::Incomplete
}

#[cfg(test)]
mod tests;
