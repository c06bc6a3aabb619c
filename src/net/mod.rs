//! The machine's network, as the IP agents need it: links, addresses, connected routes
//! ([`netlink`]), and the announcements that make neighbours learn where an address went
//! ([`announce`]).
//!
//! Everything is done in-process — rtnetlink for the kernel tables, raw sockets for the
//! announcements — so that a monitor costs a few system calls instead of dozens of forked
//! `ip`/`grep` processes, and so that answers come from structured kernel replies instead
//! of parsing text that changes with iproute2 versions.

pub mod announce;
pub mod netlink;

pub use netlink::{AddrSpec, Broadcast, IfAddr, Link, Netlink};
