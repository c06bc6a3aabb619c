//! What the AWS resource agents' unit tests share: an environment from `name=value` pairs,
//! the bad-input check (every case `OCF_ERR_CONFIGURED`), and the parameter table as the
//! metadata and the docs show it. One copy, so the three agents are held to the same
//! standard by the same code.

use std::fmt::Debug;

use crate::ocf::{AgentSpec, OcfEnv, OcfError, OcfRc};

/// An agent's environment: `name=value` pairs as `OCF_RESKEY_name`, names that start with
/// `OCF_` as they are.
pub fn env(pairs: &[(&str, &str)]) -> OcfEnv {
    OcfEnv::from_pairs(pairs.iter().map(|(k, v)| {
        let key = if k.starts_with("OCF_") { k.to_string() } else { format!("OCF_RESKEY_{k}") };
        (key, v.to_string())
    }))
}

/// Every case is refused, as a configuration error, by `read`.
pub fn assert_all_refused<T: Debug>(cases: &[&[(&str, &str)]], read: impl Fn(&OcfEnv) -> Result<T, OcfError>) {
    for case in cases {
        match read(&env(case)) {
            Err(e) => assert_eq!(e.rc, OcfRc::ErrConfigured, "{case:?}: {e}"),
            Ok(c) => panic!("{case:?} accepted: {c:?}"),
        }
    }
}

/// The metadata lists every parameter of `spec`, and the docs show its table as it is.
pub fn assert_documented(spec: &AgentSpec) {
    let xml = spec.metadata_xml();
    for p in spec.all_params() {
        assert!(xml.contains(&format!("<parameter name=\"{}\"", p.name)), "{}", p.name);
    }
    let name = spec.name;
    assert_eq!(crate::ocf::params::docs_block(name).unwrap(), spec.markdown_table(), "regenerate with `paceline params {name}`");
}
