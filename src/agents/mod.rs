//! The agents, one module each, and what runs and documents each: [`entry`].
//!
//! Which agents there are, and what kind, is [`crate::registry`]'s list; here each name
//! meets its code. The entries are split in two because the executables are:
//! `paceline-core` asks [`core()`] only, which names no agent that calls EC2, so the AWS SDK
//! is never linked into it (the linker keeps only what is named); `paceline` asks
//! [`entry`], every agent. The tests below hold the list and the entries to each other.

pub mod aws_vpc_move_ip;
pub mod awseip;
pub mod awsvip;
pub mod fence_aws;
pub mod ipaddr2;
pub mod pgsql_state;
pub mod pgsqlms;

use crate::fence::FenceSpec;
use crate::ocf::AgentSpec;
use crate::registry::Kind;

/// What an agent says about itself: meta-data, man page, parameter table.
#[derive(Debug, Clone, Copy)]
pub enum Doc {
    Resource(&'static AgentSpec),
    Fence(&'static FenceSpec),
}

impl Doc {
    pub fn name(&self) -> &'static str {
        match self {
            Doc::Resource(s) => s.name,
            Doc::Fence(s) => s.name,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Doc::Resource(_) => Kind::Resource,
            Doc::Fence(_) => Kind::Fence,
        }
    }

    /// Its man page, in roff (the section is [`crate::registry::Agent::man_page`]'s).
    pub fn manpage(&self) -> String {
        match self {
            Doc::Resource(s) => s.manpage(),
            Doc::Fence(s) => s.manpage(),
        }
    }

    /// The parameter table of its `docs/<agent>.md`, in Markdown.
    pub fn markdown_table(&self) -> String {
        match self {
            Doc::Resource(s) => s.markdown_table(),
            Doc::Fence(s) => s.markdown_table(),
        }
    }
}

/// An agent's code: what runs it, and what documents it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Runs the action its command line and environment say, and exits with its code.
    pub main: fn() -> !,
    pub doc: Doc,
}

/// The agents `paceline-core` carries: none calls EC2.
pub fn core(name: &str) -> Option<Entry> {
    Some(match name {
        "IPaddr2" => Entry { main: ipaddr2::main, doc: Doc::Resource(&ipaddr2::SPEC) },
        "pgsqlms" => Entry { main: pgsqlms::main, doc: Doc::Resource(&pgsqlms::SPEC) },
        "pgsql-state" => Entry { main: pgsql_state::main, doc: Doc::Resource(&pgsql_state::SPEC) },
        _ => return None,
    })
}

/// Every agent: [`core()`]'s and those that call EC2. Naming this links the AWS SDK.
pub fn entry(name: &str) -> Option<Entry> {
    core(name).or_else(|| {
        Some(match name {
            "awsvip" => Entry { main: awsvip::main, doc: Doc::Resource(&awsvip::SPEC) },
            "awseip" => Entry { main: awseip::main, doc: Doc::Resource(&awseip::SPEC) },
            "aws-vpc-move-ip" => Entry { main: aws_vpc_move_ip::main, doc: Doc::Resource(&aws_vpc_move_ip::SPEC) },
            "fence_paceline_aws" => Entry { main: fence_aws::main, doc: Doc::Fence(&fence_aws::SPEC) },
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::AGENTS;

    /// Each agent of the list has an entry that documents it under its name and kind, in
    /// `paceline-core` exactly when it does not call EC2. (An arm without a row would be
    /// unreachable: both executables look a name up in the list first.)
    #[test]
    fn the_list_and_the_entries_agree() {
        for a in AGENTS {
            let e = entry(a.name).unwrap_or_else(|| panic!("{} has no entry", a.name));
            assert_eq!((e.doc.name(), e.doc.kind()), (a.name, a.kind));
            assert_eq!(core(a.name).is_some(), !a.calls_ec2, "{}: in paceline-core iff it does not call EC2", a.name);
        }
        assert!(entry("paceline").is_none() && entry("fence_aws").is_none() && core("awsvip").is_none());
    }

    /// Every resource agent's man page: every parameter and action on it, and no line a
    /// roff reader would take for a request by accident.
    #[test]
    fn every_parameter_and_action_is_on_the_page() {
        use crate::ocf::manpage::escape;
        for spec in AGENTS.iter().filter_map(|a| match entry(a.name)?.doc {
            Doc::Resource(s) => Some(s),
            Doc::Fence(_) => None,
        }) {
            let m = spec.manpage();
            assert!(m.starts_with(&format!(".TH {} 7 ", escape(&format!("OCF_PACELINE_{}", spec.name.to_uppercase())))), "{m}");
            for p in spec.all_params() {
                assert!(m.contains(&format!(".TP\n.B {}\n", escape(p.name))), "{}: {}", spec.name, p.name);
            }
            for a in spec.actions {
                assert!(m.contains(&format!(".TP\n.B {}\n", escape(a.name))), "{}: {}", spec.name, a.name);
            }
            // No line a roff reader would take for a request by accident.
            assert!(
                m.lines().all(|l| !l.starts_with('.')
                    || l.starts_with(".TH")
                    || l.starts_with(".SH")
                    || l.starts_with(".TP")
                    || l.starts_with(".B")
                    || l.starts_with(".P")
                    || l.starts_with(".br")),
                "{m}"
            );
        }
    }
}
