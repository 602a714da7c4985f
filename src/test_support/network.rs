//! For unit tests: a network of the test's own, so that a test that needs
//! IPv6, a second interface or a quiet port runs everywhere or fails saying
//! why, and never passes without testing.
//!
//! `unshare(CLONE_NEWNET)` moves only the calling thread, and libtest runs
//! each test on a thread of its own: the test, and every process it starts,
//! then sees a fresh namespace. Code under test that reads the network from
//! `/proc` reads `/proc/thread-self/net` for that reason.

use std::process::Command;
use std::time::{Duration, Instant};

/// The IPv4 address [`private_network_with_ipv6`] puts on its second interface.
pub const SECOND_IPV4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 200, 0, 1);

/// Fails the test, with the reason, unless it runs as root.
pub fn require_root(why: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "THIS TEST NEEDS ROOT ({why}): run the test suite as root, as CI does"
    );
}

/// Moves the calling test into a private network namespace with loopback
/// (`127.0.0.1`, `::1`) and a veth pair `gl0`/`gl1` that is up, `gl0` with
/// [`SECOND_IPV4`], both with a usable IPv6 link-local address. Fails the
/// test if any of that cannot be.
pub fn private_network_with_ipv6() {
    require_root("a private network namespace");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("cannot make a private network namespace: {e}"));
    // /proc/sys/net is the opener's namespace, this thread's. No duplicate
    // address detection: link-local addresses are usable as soon as the link is.
    let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "0");
    let _ = std::fs::write("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "0");
    let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/accept_dad", "0");
    for args in [
        "link set lo up",
        "link add gl0 type veth peer name gl1",
        "addr add 10.200.0.1/24 dev gl0",
        "link set gl0 up",
        "link set gl1 up",
    ] {
        ip(args);
    }
    // The kernel adds link-local addresses when the veth's carrier comes up,
    // a moment after `ip link set up` returns, and every new address starts
    // tentative (flag 0x40) until its (here skipped) detection has run.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let inet6 = std::fs::read_to_string("/proc/thread-self/net/if_inet6").unwrap_or_default();
        let has = |pred: &dyn Fn(&str) -> bool| inet6.lines().any(pred);
        let loopback = has(&|l| l.starts_with("00000000000000000000000000000001"));
        let link_local = |dev: &'static str| {
            move |l: &str| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                let settled = fields
                    .get(4)
                    .and_then(|f| u32::from_str_radix(f, 16).ok())
                    .is_some_and(|flags| flags & 0x40 == 0);
                l.starts_with("fe80") && fields.get(5) == Some(&dev) && settled
            }
        };
        if loopback && has(&link_local("gl0")) && has(&link_local("gl1")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no ::1 or no usable link-local IPv6 in a fresh network namespace after 10 s: is IPv6 \
             disabled in this kernel (ipv6.disable=1)? The IPv6 tests cannot run here.\n{inet6}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ip(args: &str) {
    let status = Command::new("ip")
        .args(args.split(' '))
        .status()
        .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2): {e}"));
    assert!(status.success(), "`ip {args}` failed: {status}");
}
