//! Sets of client addresses, for rules that depend on where a connection comes from: which
//! sources a rule lets through is a set of ranges, written back as prefixes (`10.0.0.0/8`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 or IPv6: a set holds addresses of one family only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum V {
    Four,
    Six,
}

impl V {
    pub fn of(ip: IpAddr) -> V {
        match ip {
            IpAddr::V4(_) => V::Four,
            IpAddr::V6(_) => V::Six,
        }
    }

    pub fn max(self) -> u128 {
        match self {
            V::Four => u32::MAX as u128,
            V::Six => u128::MAX,
        }
    }

    fn bits(self) -> u32 {
        match self {
            V::Four => 32,
            V::Six => 128,
        }
    }

    fn ip(self, n: u128) -> IpAddr {
        match self {
            V::Four => IpAddr::V4(Ipv4Addr::from(n as u32)),
            V::Six => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }
}

/// An address as a number, and its family.
pub fn number(ip: IpAddr) -> (V, u128) {
    match ip {
        IpAddr::V4(a) => (V::Four, u32::from(a) as u128),
        IpAddr::V6(a) => (V::Six, u128::from(a)),
    }
}

/// A prefix, `addr/len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Addresses of one family as disjoint, sorted, inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sources {
    pub v: V,
    ranges: Vec<(u128, u128)>,
}

impl Sources {
    pub fn all(v: V) -> Sources {
        Sources {
            v,
            ranges: vec![(0, v.max())],
        }
    }

    pub fn none(v: V) -> Sources {
        Sources {
            v,
            ranges: Vec::new(),
        }
    }

    /// The addresses from `first` to `last`, both included; none if they are of another
    /// family than `v` or out of order.
    pub fn range(v: V, first: IpAddr, last: IpAddr) -> Sources {
        let ((v1, a), (v2, b)) = (number(first), number(last));
        if v1 != v || v2 != v || a > b {
            return Sources::none(v);
        }
        Sources {
            v,
            ranges: vec![(a, b)],
        }
    }

    pub fn prefix(v: V, addr: IpAddr, len: u8) -> Sources {
        let (va, n) = number(addr);
        if va != v || u32::from(len) > v.bits() {
            return Sources::none(v);
        }
        let host_bits = v.bits() - u32::from(len);
        let span = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let first = n & !span;
        Sources {
            v,
            ranges: vec![(first, first | span)],
        }
    }

    /// The addresses numbered `first` to `last` (both included).
    pub fn numbers(v: V, first: u128, last: u128) -> Sources {
        let ranges = if first <= last && last <= v.max() {
            vec![(first, last)]
        } else {
            Vec::new()
        };
        Sources { v, ranges }
    }

    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    pub fn contains_number(&self, n: u128) -> bool {
        // The ranges are sorted and disjoint: the one that could hold `n` is the last that
        // starts at or before it.
        let i = self.ranges.partition_point(|&(a, _)| a <= n);
        i > 0 && self.ranges[i - 1].1 >= n
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn is_all(&self) -> bool {
        self.ranges == [(0, self.v.max())]
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v, n) = number(ip);
        v == self.v && self.contains_number(n)
    }

    pub fn union(&self, other: &Sources) -> Sources {
        // Both lists are sorted: merged in one pass, then joined where they touch.
        let (mut i, mut j) = (0, 0);
        let mut all: Vec<(u128, u128)> = Vec::with_capacity(self.ranges.len() + other.ranges.len());
        while i < self.ranges.len() || j < other.ranges.len() {
            let take_self = j >= other.ranges.len()
                || (i < self.ranges.len() && self.ranges[i] <= other.ranges[j]);
            if take_self {
                all.push(self.ranges[i]);
                i += 1;
            } else {
                all.push(other.ranges[j]);
                j += 1;
            }
        }
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(all.len());
        for (a, b) in all {
            match out.last_mut() {
                Some((_, last)) if a <= last.saturating_add(1) => *last = (*last).max(b),
                _ => out.push((a, b)),
            }
        }
        Sources {
            v: self.v,
            ranges: out,
        }
    }

    pub fn complement(&self) -> Sources {
        let mut out = Vec::new();
        let mut next: Option<u128> = Some(0);
        for &(a, b) in &self.ranges {
            if let Some(n) = next
                && a > n
            {
                out.push((n, a - 1));
            }
            next = b.checked_add(1);
        }
        if let Some(n) = next
            && n <= self.v.max()
        {
            out.push((n, self.v.max()));
        }
        Sources {
            v: self.v,
            ranges: out,
        }
    }

    pub fn intersect(&self, other: &Sources) -> Sources {
        // One pass over both sorted lists: each overlap of two ranges is a range of the result.
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let ((a1, b1), (a2, b2)) = (self.ranges[i], other.ranges[j]);
            let (a, b) = (a1.max(a2), b1.min(b2));
            if a <= b {
                out.push((a, b));
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Sources {
            v: self.v,
            ranges: out,
        }
    }

    /// The addresses in `set` and those not, from this set. A set of a few ranges (one
    /// address, a prefix) is taken out where it falls, without a pass over every range.
    pub fn split(self, set: &Sources) -> (Sources, Sources) {
        if set.ranges.len() * 8 >= self.ranges.len() {
            return (self.intersect(set), self.minus(set));
        }
        let v = self.v;
        let mut outside = self.ranges;
        let mut inside = Vec::new();
        for &(a, b) in &set.ranges {
            let first = outside.partition_point(|&(_, hi)| hi < a);
            let end = outside.partition_point(|&(lo, _)| lo <= b);
            if first >= end {
                continue;
            }
            let mut rest = Vec::with_capacity(2);
            for &(x, y) in &outside[first..end] {
                inside.push((x.max(a), y.min(b)));
                if x < a {
                    rest.push((x, a - 1));
                }
                if y > b {
                    rest.push((b + 1, y));
                }
            }
            outside.splice(first..end, rest);
        }
        (
            Sources { v, ranges: inside },
            Sources { v, ranges: outside },
        )
    }

    pub fn minus(&self, other: &Sources) -> Sources {
        self.intersect(&other.complement())
    }

    /// How many addresses, saturating (an IPv6 set can hold 2^128).
    pub fn size(&self) -> u128 {
        self.ranges.iter().fold(0u128, |n, &(a, b)| {
            n.saturating_add((b - a).saturating_add(1))
        })
    }

    /// The fewest prefixes that cover exactly this set.
    pub fn prefixes(&self) -> Vec<Prefix> {
        let mut out = Vec::new();
        for &(mut a, b) in &self.ranges {
            loop {
                // The largest block that starts at `a` and does not pass `b`.
                let mut host_bits = if a == 0 {
                    self.v.bits()
                } else {
                    a.trailing_zeros().min(self.v.bits())
                };
                while host_bits > 0 {
                    let last = if host_bits >= 128 {
                        u128::MAX
                    } else {
                        a | ((1u128 << host_bits) - 1)
                    };
                    if last <= b {
                        break;
                    }
                    host_bits -= 1;
                }
                let len = (self.v.bits() - host_bits) as u8;
                out.push(Prefix {
                    addr: self.v.ip(a),
                    len,
                });
                let last = if host_bits >= 128 {
                    u128::MAX
                } else {
                    a | ((1u128 << host_bits) - 1)
                };
                if last >= b {
                    break;
                }
                a = last + 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
