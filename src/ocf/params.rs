//! Parameter tables: one definition per parameter, many uses.
//!
//! Each agent declares its parameters once, as a `&'static [Param]`. That single table
//! produces the `<parameters>` of the meta-data (what `pcs resource describe` shows and what
//! `pcs resource create` checks names against), the parsing and type-checking of
//! `OCF_RESKEY_*` into [`Params`], and the parameter tables of the documentation. An agent
//! therefore cannot advertise a parameter it does not read, or read one it does not
//! advertise; a unit test per agent checks that its typed configuration only asks for
//! names of its own table.
//!
//! Compatibility with the agents we replace is part of the table too: a parameter of the
//! heartbeat agent that paceline does not implement is still declared, with a [`Support`]
//! level saying whether setting it is harmless (warned and ignored) or would silently change
//! what the user gets (then any non-default value is refused with `OCF_ERR_CONFIGURED`).

use std::collections::BTreeMap;

use super::{OcfEnv, OcfError};
use crate::ocf_warn;

/// The OCF content type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    String,
    Integer,
    Boolean,
}

impl ParamKind {
    pub fn ocf_name(self) -> &'static str {
        match self {
            ParamKind::String => "string",
            ParamKind::Integer => "integer",
            ParamKind::Boolean => "boolean",
        }
    }
}

/// How far paceline honours a parameter it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Implemented.
    Full,
    /// Accepted for compatibility; a value is logged as a warning and has no effect.
    Ignored,
    /// Only the default value is accepted; anything else is `OCF_ERR_CONFIGURED`.
    DefaultOnly,
}

/// One parameter of an agent.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: Option<&'static str>,
    pub required: bool,
    pub unique: bool,
    pub reloadable: bool,
    pub support: Support,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

impl Param {
    /// A plain, optional, implemented parameter; refine it with the builder methods.
    pub const fn new(name: &'static str, kind: ParamKind, shortdesc: &'static str, longdesc: &'static str) -> Self {
        Param { name, kind, default: None, required: false, unique: false, reloadable: false, support: Support::Full, shortdesc, longdesc }
    }
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub const fn reloadable(mut self) -> Self {
        self.reloadable = true;
        self
    }
    pub const fn support(mut self, support: Support) -> Self {
        self.support = support;
        self
    }
}

/// Parse an OCF boolean the way the OCF shell functions do (`ocf_is_true`).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" | "y" => Some(true),
        "0" | "no" | "false" | "off" | "n" => Some(false),
        _ => None,
    }
}

fn parse_int(value: &str) -> Option<i64> {
    value.trim().parse().ok()
}

/// The parameters of one invocation, checked against the agent's table.
#[derive(Debug, Clone)]
pub struct Params {
    tables: &'static [&'static [Param]],
    values: BTreeMap<&'static str, String>,
}

impl Params {
    /// Read `OCF_RESKEY_*` against `table`: required parameters present, integers and
    /// booleans well-formed, unsupported values refused. Unknown names are warned about
    /// (Pacemaker passes only what the CIB holds, so they are typos or leftovers).
    pub fn parse(tables: &'static [&'static [Param]], env: &OcfEnv) -> Result<Params, OcfError> {
        let mut values = BTreeMap::new();
        let all = || tables.iter().flat_map(|t| t.iter());
        for p in all() {
            let Some(raw) = env.reskey(p.name) else {
                if p.required {
                    return Err(OcfError::configured(format!("parameter '{}' is required", p.name)));
                }
                continue;
            };
            let ok = match p.kind {
                ParamKind::String => true,
                ParamKind::Integer => parse_int(raw).is_some(),
                ParamKind::Boolean => parse_bool(raw).is_some(),
            };
            if !ok {
                return Err(OcfError::configured(format!(
                    "parameter '{}' must be {}, got '{}'",
                    p.name,
                    match p.kind {
                        ParamKind::Integer => "an integer",
                        _ => "a boolean (true/false)",
                    },
                    raw
                )));
            }
            match p.support {
                Support::Full => {}
                Support::Ignored => ocf_warn!("parameter '{}' is accepted for compatibility and ignored", p.name),
                Support::DefaultOnly => {
                    if !same_value(p, raw) {
                        return Err(OcfError::configured(format!(
                            "parameter '{}={}' is not supported by paceline (only the default{} is)",
                            p.name,
                            raw,
                            p.default.map(|d| format!(" '{d}'")).unwrap_or_default()
                        )));
                    }
                }
            }
            values.insert(p.name, raw.to_owned());
        }
        for (name, _) in env.reskeys() {
            // Pacemaker adds crm_feature_set (and other crm_* keys) to every action.
            if !name.starts_with("crm_") && !all().any(|p| p.name == name) {
                ocf_warn!("unknown parameter '{name}' ignored");
            }
        }
        Ok(Params { tables, values })
    }

    /// Like [`Params::str`] for a name the agent's tables may not declare: `None` then,
    /// whatever the environment holds (for readers shared by several agents).
    pub fn declared(&self, name: &str) -> Option<&str> {
        self.tables.iter().flat_map(|t| t.iter()).any(|p| p.name == name).then(|| self.str(name)).flatten()
    }

    fn param(&self, name: &str) -> Option<&'static Param> {
        let p = self.tables.iter().flat_map(|t| t.iter()).find(|p| p.name == name);
        debug_assert!(p.is_some(), "parameter '{name}' is not in the agent's table");
        p
    }

    /// Whether the user set the parameter (as opposed to its default applying).
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value, or the table's default.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).or_else(|| self.param(name).and_then(|p| p.default))
    }

    /// An integer parameter (checked by [`Params::parse`]), or its default.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.str(name).and_then(parse_int)
    }

    /// A boolean parameter (checked by [`Params::parse`]); unset without default is false.
    pub fn bool(&self, name: &str) -> bool {
        self.str(name).and_then(parse_bool).unwrap_or(false)
    }
}

/// Whether `raw` means the same as the parameter's default (booleans compare by meaning).
fn same_value(p: &Param, raw: &str) -> bool {
    match (p.kind, p.default) {
        (ParamKind::Boolean, d) => parse_bool(raw) == Some(d.and_then(parse_bool).unwrap_or(false)),
        (ParamKind::Integer, Some(d)) => parse_int(raw) == parse_int(d),
        (_, Some(d)) => raw.trim() == d,
        (_, None) => false,
    }
}

/// A Markdown table of the parameters, for the documentation.
pub fn markdown_table(table: &[Param]) -> String {
    let mut out = String::from("| name | type | default | required | unique | reloadable | support | description |\n|---|---|---|---|---|---|---|---|\n");
    for p in table {
        let yes = |b: bool| if b { "yes" } else { "" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            p.name,
            p.kind.ocf_name(),
            p.default.map(|d| format!("`{d}`")).unwrap_or_default(),
            yes(p.required),
            yes(p.unique),
            yes(p.reloadable),
            match p.support {
                Support::Full => "yes",
                Support::Ignored => "ignored (warning)",
                Support::DefaultOnly => "default only",
            },
            p.shortdesc
        ));
    }
    out
}

/// The parameter block of `docs/<agent>.md` (between `<!-- params:<agent> -->` and
/// `<!-- /params -->`), for the tests that keep the docs generated from the table. Tests
/// only: it reads the source tree, which no installed binary may rely on.
#[cfg(test)]
pub fn docs_block(agent: &str) -> Result<String, String> {
    let path = format!("{}/docs/{agent}.md", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let open = format!("<!-- params:{agent} -->\n");
    let start = doc.find(&open).ok_or("no start marker")? + open.len();
    let end = doc[start..].find("<!-- /params -->").ok_or("no end marker")? + start;
    Ok(doc[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLES: &[&[Param]] = &[TABLE];
    static TABLE: &[Param] = &[
        Param::new("ip", ParamKind::String, "IP", "The address.").required().unique(),
        Param::new("count", ParamKind::Integer, "count", "A count.").default("5"),
        Param::new("flag", ParamKind::Boolean, "flag", "A flag.").default("false"),
        Param::new("legacy", ParamKind::String, "legacy", "Ignored.").support(Support::Ignored),
        Param::new("exotic", ParamKind::Boolean, "exotic", "Default only.").default("false").support(Support::DefaultOnly),
    ];

    fn env(pairs: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_pairs(pairs.iter().map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())))
    }

    #[test]
    fn defaults_apply() {
        let p = Params::parse(TABLES, &env(&[("ip", "192.0.2.1")])).unwrap();
        assert_eq!(p.str("ip"), Some("192.0.2.1"));
        assert_eq!(p.int("count"), Some(5));
        assert!(!p.bool("flag"));
        assert!(!p.is_set("count"));
        assert_eq!(p.str("legacy"), None);
    }

    #[test]
    fn required_missing_is_configured_error() {
        let e = Params::parse(TABLES, &env(&[])).unwrap_err();
        assert_eq!(e.rc, super::super::OcfRc::ErrConfigured);
        assert!(e.reason.contains("'ip' is required"), "{}", e.reason);
        // an empty value is the same as unset
        let e = Params::parse(TABLES, &env(&[("ip", "")])).unwrap_err();
        assert!(e.reason.contains("'ip' is required"));
    }

    #[test]
    fn types_are_checked() {
        let e = Params::parse(TABLES, &env(&[("ip", "x"), ("count", "five")])).unwrap_err();
        assert!(e.reason.contains("'count' must be an integer"), "{}", e.reason);
        let e = Params::parse(TABLES, &env(&[("ip", "x"), ("flag", "maybe")])).unwrap_err();
        assert!(e.reason.contains("'flag' must be a boolean"), "{}", e.reason);
        let p = Params::parse(TABLES, &env(&[("ip", "x"), ("flag", "Yes"), ("count", " 7 ")])).unwrap();
        assert!(p.bool("flag"));
        assert_eq!(p.int("count"), Some(7));
    }

    #[test]
    fn support_levels() {
        assert!(Params::parse(TABLES, &env(&[("ip", "x"), ("legacy", "anything")])).is_ok());
        assert!(Params::parse(TABLES, &env(&[("ip", "x"), ("exotic", "no")])).is_ok());
        let e = Params::parse(TABLES, &env(&[("ip", "x"), ("exotic", "true")])).unwrap_err();
        assert_eq!(e.rc, super::super::OcfRc::ErrConfigured);
        assert!(e.reason.contains("not supported"), "{}", e.reason);
    }

    #[test]
    fn booleans_like_ocf_is_true() {
        for t in ["1", "yes", "TRUE", "on", "y"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "no", "False", "off", "n"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("2"), None);
    }

    #[test]
    fn markdown_lists_every_parameter() {
        let md = markdown_table(TABLE);
        for p in TABLE {
            assert!(md.contains(&format!("`{}`", p.name)));
        }
    }
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any values for the table's parameters (and unknown ones): an error or
            /// parameters, never a panic; what is accepted reads as it was written.
            #[test]
            fn any_values_are_refused_or_read_as_written(
                count in prop_oneof!["[+-]?[0-9]{1,19}", " ?[0-9]{1,4} ?", ".{0,6}"],
                flag in prop_oneof!["(?i)(1|yes|true|on|y|0|no|false|off|n)", ".{0,6}"],
                exotic in prop_oneof!["(?i)(0|no|false|off|n|1|yes)", ".{0,4}"],
                other in ".{0,8}",
            ) {
                let e = env(&[("ip", "192.0.2.1"), ("count", &count), ("flag", &flag), ("exotic", &exotic), ("legacy", &other), ("typo", &other)]);
                let c = count.trim().parse::<i64>().ok();
                let f = parse_bool(&flag);
                let x = parse_bool(&exotic);
                match Params::parse(TABLES, &e) {
                    Ok(p) => {
                        prop_assert_eq!(p.int("count"), if count.is_empty() { Some(5) } else { c });
                        prop_assert!(c.is_some() || count.is_empty());
                        prop_assert!(f.is_some() || flag.is_empty());
                        prop_assert_eq!(p.bool("flag"), f.unwrap_or(false));
                        prop_assert!(exotic.is_empty() || x == Some(false), "exotic={exotic:?} accepted");
                    }
                    Err(err) => {
                        prop_assert_eq!(err.rc, super::super::super::OcfRc::ErrConfigured);
                        prop_assert!((!count.is_empty() && c.is_none()) || (!flag.is_empty() && f.is_none()) || (!exotic.is_empty() && x != Some(false)), "{}", err.reason);
                    }
                }
            }

            /// The OCF booleans: the ten spellings in any case, blanks around; nothing else.
            #[test]
            fn booleans_are_the_ten_spellings(v in ".{0,6}") {
                let t = v.trim().to_ascii_lowercase();
                let expected = match t.as_str() {
                    "1" | "yes" | "true" | "on" | "y" => Some(true),
                    "0" | "no" | "false" | "off" | "n" => Some(false),
                    _ => None,
                };
                prop_assert_eq!(parse_bool(&v), expected);
            }
        }
    }
}
