//! A bounded HTTP load from another network namespace: a few threads, each connecting,
//! sending one `GET /` and reading the status line, in a loop, counting what every
//! request came to. Each thread enters the client's namespace itself (`setns` moves only
//! the calling thread), so the test process needs no helper program.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the requests came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// An HTTP status line came back.
    pub answered: u64,
    /// The connection was refused: nothing listened (ERR_CONNECTION_REFUSED).
    pub refused: u64,
    /// Accepted, then reset or closed before a status line (a request in flight in a
    /// process that died).
    pub reset: u64,
    /// No answer within the timeout.
    pub timed_out: u64,
}

#[derive(Default)]
struct Live {
    answered: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    timed_out: AtomicU64,
}

impl Live {
    fn counts(&self) -> Counts {
        Counts {
            answered: self.answered.load(Ordering::SeqCst),
            refused: self.refused.load(Ordering::SeqCst),
            reset: self.reset.load(Ordering::SeqCst),
            timed_out: self.timed_out.load(Ordering::SeqCst),
        }
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    live: Arc<Live>,
    threads: Vec<JoinHandle<()>>,
}

/// How long one request may take: a client waiting in the held socket's backlog while a
/// gunicorn restarts is answered within a few seconds.
const PATIENCE: Duration = Duration::from_secs(15);

impl Load {
    /// `threads` clients in network namespace `netns`, asking `addr` until stopped.
    pub fn start(netns: &str, addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Live::default());
        let threads = (0..threads)
            .map(|_| {
                let (stop, live) = (stop.clone(), live.clone());
                let path = format!("/run/netns/{netns}");
                std::thread::spawn(move || {
                    let ns = std::fs::File::open(&path).expect("the client's namespace");
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .expect("setns into the client's namespace");
                    while !stop.load(Ordering::SeqCst) {
                        let counter = match request(addr) {
                            Outcome::Answered => &live.answered,
                            Outcome::Refused => &live.refused,
                            Outcome::Reset => &live.reset,
                            Outcome::TimedOut => &live.timed_out,
                        };
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        Load {
            stop,
            live,
            threads,
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.live.counts()
    }

    /// Waits until `more` further requests were answered (the load flows), or fails.
    pub fn wait_answered(&self, more: u64, within: Duration) {
        let start = self.counts().answered;
        let deadline = Instant::now() + within;
        while self.counts().answered < start + more {
            assert!(
                Instant::now() < deadline,
                "fewer than {more} answers within {within:?}: {:?}",
                self.counts()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops every client (each finishes its request) and returns the totals.
    pub fn stop(self) -> Counts {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("a load thread panicked");
        }
        self.live.counts()
    }
}

enum Outcome {
    Answered,
    Refused,
    Reset,
    TimedOut,
}

fn request(addr: SocketAddr) -> Outcome {
    use std::io::ErrorKind::*;
    let mut stream = match TcpStream::connect_timeout(&addr, PATIENCE) {
        Ok(s) => s,
        Err(e) if e.kind() == ConnectionRefused => return Outcome::Refused,
        Err(e) if matches!(e.kind(), TimedOut | WouldBlock) => return Outcome::TimedOut,
        Err(_) => return Outcome::Reset,
    };
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let _ = stream.set_write_timeout(Some(PATIENCE));
    let ask = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(ask.as_bytes()).is_err() {
        return Outcome::Reset;
    }
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) => return Outcome::Reset,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), TimedOut | WouldBlock) => return Outcome::TimedOut,
            Err(_) => return Outcome::Reset,
        }
    }
    if head.starts_with(b"HTTP/1.") {
        Outcome::Answered
    } else {
        Outcome::Reset
    }
}
