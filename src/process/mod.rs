//! gunicorn's processes as the kernel shows them: the few `/proc` facts ([`procfs`](crate::process::procfs)), the
//! process tree ([`tree`](crate::process::tree)), which processes hold a socket ([`owners`](crate::process::owners)), and what workers die
//! of ([`workers`](crate::process::workers)).

pub mod owners;
pub mod procfs;
pub mod tree;
pub mod workers;
