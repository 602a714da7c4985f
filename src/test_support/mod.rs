//! What the unit tests share, compiled only for them: a private network ([`network`]),
//! a shell that forks ([`processes`]), listening sockets ([`sockets`]) and unit trees
//! ([`units`]).

pub mod network;
pub mod processes;
pub mod sockets;
pub mod units;
