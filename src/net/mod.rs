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

use crate::ocf::OcfError;

/// Changing an interface's addresses needs root: OCF_ERR_PERM for `action` otherwise
/// (shared by the agents that add addresses: IPaddr2, aws-vpc-move-ip).
pub fn require_root(action: &str) -> Result<(), OcfError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(OcfError::perm(format!("{action} must run as root (it changes the interface's addresses)")))
    }
}

pub use netlink::{AddrSpec, Broadcast, IfAddr, Link, Netlink};
