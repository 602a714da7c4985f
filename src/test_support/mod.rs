//! What the unit tests share, compiled only for them: a private network ([`network`]),
//! listening sockets ([`sockets`]) and unit trees ([`units`]).

pub mod network;
pub mod sockets;
pub mod units;
