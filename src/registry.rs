//! The one list of the agents paceline ships: each agent's name, its kind, whether it calls
//! EC2 (which decides the executable it is a link to), and the parameter that names the
//! address it moves, if it moves one.
//!
//! Everything that must know every agent reads [`AGENTS`]: installing and packaging
//! ([`crate::install`], `paceline agents` for tests/package.sh), the man pages and
//! `paceline params`, the help of `install`, `uninstall` and `man`, docs/paceline.md's table
//! of agents, both executables' dispatch by `argv[0]`, `paceline status` and `check` (which
//! resources hold an address), and the tests' agent links. Adding an agent is one row here
//! and one arm in [`crate::agents`] (its entry function and documentation); `cargo test
//! --lib` fails until both agree, and until the README, the package's description and
//! docs/paceline.md name it.
//!
//! A leaf: plain data, no code of any agent. What runs an agent is in [`crate::agents`],
//! split so that `paceline-core` names only the agents without the AWS SDK (the SDK is
//! linked only where an agent's entry function is).

use std::ffi::OsStr;
use std::path::Path;

/// What kind of agent it is, which decides where it goes and how it is documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OCF resource agent: `/usr/lib/ocf/resource.d/paceline/<name>`, page `ocf_paceline_<name>(7)`.
    Resource,
    /// Fence agent: `/usr/sbin/<name>`, page `<name>(8)`.
    Fence,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Resource => "resource",
            Kind::Fence => "fence",
        }
    }
}

/// One of the two executables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binary {
    pub name: &'static str,
    /// Its directory, relative to the root.
    pub dir: &'static str,
}

/// The operator's tool, and the agents that call EC2: the AWS SDK is linked here only.
pub const PACELINE: Binary = Binary { name: "paceline", dir: "usr/sbin" };
/// The agents that do not call EC2: no AWS SDK, so they start fast (src/install.rs).
pub const CORE: Binary = Binary { name: "paceline-core", dir: "usr/lib/paceline" };
pub const BINARIES: [Binary; 2] = [PACELINE, CORE];

/// An agent paceline ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    /// Its name: the link's, `argv[0]`'s last component, the meta-data's and the CIB's type.
    pub name: &'static str,
    pub kind: Kind,
    /// It calls EC2, so it is a link to `paceline`, which links the AWS SDK.
    pub calls_ec2: bool,
    /// The parameter that names the address it moves (heartbeat's agent of the same name
    /// has the same one), for `paceline status` and `check`.
    pub address: Option<&'static str>,
}

impl Agent {
    /// The executable it is a link to.
    pub fn binary(&self) -> Binary {
        if self.calls_ec2 {
            PACELINE
        } else {
            CORE
        }
    }

    /// Its man page: section and name.
    pub fn man_page(&self) -> (&'static str, String) {
        match self.kind {
            Kind::Resource => ("7", format!("ocf_paceline_{}", self.name)),
            Kind::Fence => ("8", self.name.to_owned()),
        }
    }
}

/// Every agent paceline ships.
pub const AGENTS: &[Agent] = &[
    Agent { name: "IPaddr2", kind: Kind::Resource, calls_ec2: false, address: Some("ip") },
    Agent { name: "pgsqlms", kind: Kind::Resource, calls_ec2: false, address: None },
    Agent { name: "pgsql-state", kind: Kind::Resource, calls_ec2: false, address: None },
    Agent { name: "awsvip", kind: Kind::Resource, calls_ec2: true, address: Some("secondary_private_ip") },
    Agent { name: "awseip", kind: Kind::Resource, calls_ec2: true, address: Some("elastic_ip") },
    Agent { name: "aws-vpc-move-ip", kind: Kind::Resource, calls_ec2: true, address: Some("ip") },
    Agent { name: "fence_paceline_aws", kind: Kind::Fence, calls_ec2: true, address: None },
];

/// The agent called `name`.
pub fn get(name: &str) -> Option<&'static Agent> {
    AGENTS.iter().find(|a| a.name == name)
}

/// The agent that `argv0` (a path, as `argv[0]` is when Pacemaker runs an agent) names.
pub fn named(argv0: &OsStr) -> Option<&'static Agent> {
    let name = Path::new(argv0).file_name()?;
    AGENTS.iter().find(|a| name == a.name)
}

/// The names of the agents of `binary`, for messages: "a, b and c".
pub fn names_in(binary: Binary) -> String {
    let names: Vec<&str> = AGENTS.iter().filter(|a| a.binary() == binary).map(|a| a.name).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_by_argv0() {
        for (i, a) in AGENTS.iter().enumerate() {
            assert!(AGENTS[..i].iter().all(|b| b.name != a.name), "{} twice", a.name);
            assert_eq!(named(OsStr::new(&format!("/usr/lib/ocf/resource.d/paceline/{}", a.name))), Some(a));
            assert_eq!(get(a.name), Some(a));
        }
        assert_eq!(named("fence_paceline_aws".as_ref()).map(|a| a.kind), Some(Kind::Fence));
        assert!(named("/usr/sbin/paceline".as_ref()).is_none() && named("".as_ref()).is_none() && get("paceline-core").is_none());
        assert_eq!(names_in(CORE), "IPaddr2, pgsqlms and pgsql-state");
        assert_eq!(get("awsvip").unwrap().binary(), PACELINE);
        assert_eq!(get("fence_paceline_aws").unwrap().man_page(), ("8", "fence_paceline_aws".to_owned()));
        assert_eq!(get("pgsqlms").unwrap().man_page(), ("7", "ocf_paceline_pgsqlms".to_owned()));
    }
}
