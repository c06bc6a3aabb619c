//! Reading a fence agent's options: `name=value` lines on stdin, or the command line.
//!
//! Pacemaker's fencer runs a fence agent without arguments and writes its options on stdin,
//! one `name=value` per line (`action=off`, `nodename=node2`, `plug=i-0abc`, then every
//! device parameter that is not a `pcmk_*` one). People and scripts use the command line
//! instead, with fence-agents' long and short options. Both arrive here and leave as the
//! same [`Input`]: values under their canonical names (`port` becomes `plug`), checked
//! against their kind, so the rest of the agent never knows where a value came from.
//!
//! Tolerance follows fence-agents where it is harmless (comments, blank lines, quotes,
//! `-`/`_`, unknown stdin names warned and skipped, since Pacemaker passes every device
//! parameter), and is strict where a silent mistake would hurt: an unknown command-line
//! option, a missing option value or a malformed number is an error, not a default.
//! A secret value is never part of an error or warning text.

use std::collections::BTreeMap;

use super::options::{FenceOpt, OptKind, OptSupport, SILENT};
use crate::ocf::params::parse_bool;

/// The options of one invocation, checked and under their canonical names.
#[derive(Debug, Clone, Default)]
pub struct Input {
    values: BTreeMap<&'static str, String>,
    /// `-v` count on the command line, or 1 for `verbose=1` on stdin.
    pub verbose: u32,
    /// Whether the options came from stdin (Pacemaker) rather than the command line.
    pub from_stdin: bool,
    /// What was skipped or is ignored, for the log (never containing a secret).
    pub warnings: Vec<String>,
    /// The node name Pacemaker passed (`nodename=`), for log messages only.
    pub nodename: Option<String>,
}

/// A rejected input: always exit code 1 for a fence agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, InputError> {
    Err(InputError(msg.into()))
}

/// Find an option by its stdin name (`-` and `_` alike).
fn by_name<'a>(opts: &[&'a FenceOpt], name: &str) -> Option<&'a FenceOpt> {
    let n = name.replace('-', "_");
    opts.iter().copied().find(|o| o.name == n).or_else(|| opts.iter().copied().find(|o| o.long.replace('-', "_") == n && o.alias_of.is_none()))
}

impl Input {
    fn set(&mut self, opt: &FenceOpt, value: &str) -> Result<(), InputError> {
        opt.check(value).map_err(InputError)?;
        if opt.support == OptSupport::Ignored {
            self.warnings.push(format!("option '{}' is accepted for compatibility and ignored", opt.name));
        }
        let stored = match opt.kind {
            // Normalised, so later reads need not re-parse the many spellings.
            OptKind::Boolean => if parse_bool(value) == Some(true) { "1" } else { "0" }.to_owned(),
            _ => value.trim().to_owned(),
        };
        if opt.canonical() == "verbose" {
            self.verbose = u32::from(stored == "1");
        }
        self.values.insert(opt.canonical(), stored);
        Ok(())
    }

    /// Parse Pacemaker's stdin format.
    pub fn from_stdin(opts: &[&FenceOpt], text: &str) -> Result<Input, InputError> {
        let mut input = Input { from_stdin: true, ..Input::default() };
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = match line.split_once('=') {
                Some((n, v)) => (n.trim(), unquote(v.trim())),
                None => (line, ""),
            };
            if SILENT.contains(&name) {
                if name == "nodename" && !value.is_empty() {
                    input.nodename = Some(value.to_owned());
                }
                continue;
            }
            let Some(opt) = by_name(opts, name) else {
                // The name only: a value may be a secret meant for another agent.
                input.warnings.push(format!("ignoring unknown option '{name}' (stdin line {})", n + 1));
                continue;
            };
            if !line.contains('=') {
                return err(format!("option '{name}' has no value (stdin line {}: expected name=value)", n + 1));
            }
            input.set(opt, value)?;
        }
        Ok(input)
    }

    /// Parse a command line the way GNU getopt does: `-o off`, `-ooff`, `-vq`, `--action off`,
    /// `--action=off`, unique prefixes of long options, `--` ending the options.
    pub fn from_argv(opts: &[&FenceOpt], args: &[String]) -> Result<Input, InputError> {
        let mut input = Input::default();
        let mut verbose = 0;
        let mut it = args.iter();
        let mut positional = Vec::new();
        while let Some(arg) = it.next() {
            if arg == "--" {
                positional.extend(it.by_ref().cloned());
                break;
            }
            if let Some(long) = arg.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let opt = find_long(opts, name)?;
                if opt.takes_value() {
                    let value = match inline {
                        Some(v) => v.to_owned(),
                        None => it.next().cloned().ok_or_else(|| InputError(format!("option --{} requires an argument", opt.long)))?,
                    };
                    input.set(opt, &value)?;
                } else {
                    if inline.is_some() {
                        return err(format!("option --{} must not have an argument", opt.long));
                    }
                    input.set(opt, "1")?;
                    if opt.name == "verbose" {
                        verbose += 1;
                    }
                }
            } else if arg.len() > 1 && arg.starts_with('-') {
                let cluster: Vec<char> = arg[1..].chars().collect();
                let mut i = 0;
                while i < cluster.len() {
                    let c = cluster[i];
                    let opt = opts
                        .iter()
                        .copied()
                        .filter(|o| o.short == Some(c))
                        .min_by_key(|o| o.alias_of.is_some())
                        .ok_or_else(|| InputError(format!("option -{c} not recognized")))?;
                    if opt.takes_value() {
                        let rest: String = cluster[i + 1..].iter().collect();
                        let value =
                            if !rest.is_empty() { rest } else { it.next().cloned().ok_or_else(|| InputError(format!("option -{c} requires an argument")))? };
                        input.set(opt, &value)?;
                        break;
                    }
                    input.set(opt, "1")?;
                    if opt.name == "verbose" {
                        verbose += 1;
                    }
                    i += 1;
                }
            } else {
                positional.push(arg.clone());
            }
        }
        if !positional.is_empty() {
            input.warnings.push(format!("unused arguments on the command line: {}", positional.len()));
        }
        if verbose > 0 {
            input.verbose = verbose;
        }
        Ok(input)
    }

    /// Whether the option was given (as opposed to its default applying).
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The raw value, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Set a value after parsing (tests, and the action given as the first positional).
    pub fn insert(&mut self, name: &'static str, value: &str) {
        self.values.insert(name, value.to_owned());
    }

    /// The names given, for a debug line (values of secret options are not part of it).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.values.keys().copied()
    }
}

/// A long option by exact name, by its stdin name, or by an unambiguous prefix.
fn find_long<'a>(opts: &[&'a FenceOpt], name: &str) -> Result<&'a FenceOpt, InputError> {
    let primary = || opts.iter().copied().filter(|o| o.alias_of.is_none());
    if let Some(o) = primary().find(|o| o.long == name).or_else(|| primary().find(|o| o.name == name)) {
        return Ok(o);
    }
    let mut matches: Vec<&FenceOpt> = primary().filter(|o| !name.is_empty() && o.long.starts_with(name)).collect();
    matches.dedup_by_key(|o| o.long);
    match matches.as_slice() {
        [one] => Ok(one),
        [] => err(format!("option --{name} not recognized")),
        many => err(format!("option --{name} is ambiguous ({})", many.iter().map(|o| format!("--{}", o.long)).collect::<Vec<_>>().join(", "))),
    }
}

/// Strip one pair of surrounding quotes.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fence::options::{OptKind, COMMON};
    use proptest::prelude::*;

    static SECRET: FenceOpt = FenceOpt::new("secret_key", "secret-key", OptKind::Integer, "[key]", "s", "s").secret();

    fn opts() -> Vec<&'static FenceOpt> {
        std::iter::once(&SECRET).chain(COMMON.iter()).collect()
    }

    /// Everything the input says back: its warnings, or its error.
    fn said(r: &Result<Input, InputError>) -> String {
        match r {
            Ok(i) => i.warnings.join("\n"),
            Err(e) => e.0.clone(),
        }
    }

    proptest! {
        /// Arbitrary stdin: an error or options, never a panic; every value kept passes
        /// its option's check.
        #[test]
        fn any_stdin_never_panics(text in any::<String>()) {
            let opts = opts();
            if let Ok(input) = Input::from_stdin(&opts, &text) {
                for name in input.names() {
                    let opt = opts.iter().find(|o| o.canonical() == name).unwrap();
                    prop_assert!(opt.check(input.values[name].as_str()).is_ok(), "{name}");
                }
            }
        }

        /// Arbitrary command lines, with real options among them: never a panic.
        #[test]
        fn any_argv_never_panics(args in prop::collection::vec(prop_oneof!["-[a-zA-Z]{0,3}.{0,3}", "--[a-z-]{0,10}(=.{0,4})?", ".{0,6}", Just("--".to_owned())], 0..8)) {
            let _ = Input::from_argv(&opts(), &args);
        }

        /// A string option's value on stdin reads back as written (one pair of quotes
        /// removed, blanks around trimmed).
        #[test]
        fn a_stdin_value_reads_back(v in "[^\\s'\"]([^\\r\\n]{0,20}[^\\s'\"])?", quote in prop::sample::select(&["", "'", "\""][..])) {
            let input = Input::from_stdin(&opts(), &format!("# Pacemaker\naction=off\n  plug = {quote}{v}{quote}  \nnodename=n2\n")).unwrap();
            prop_assert_eq!(input.get("plug"), Some(v.as_str()));
            prop_assert_eq!(input.get("action"), Some("off"));
            prop_assert_eq!(input.nodename.as_deref(), Some("n2"));
        }

        /// A number of seconds is accepted exactly when it is one (no default for a typo),
        /// on stdin and on the command line alike.
        #[test]
        fn seconds_are_checked(v in prop_oneof!["[0-9]{1,6}(\\.[0-9]{1,3})?", "-?[0-9.]{1,4}|inf|NaN|[0-9]e[0-9]|.{0,4}"]) {
            let ok = super::super::options::parse_seconds(&v).is_some();
            let stdin = Input::from_stdin(&opts(), &format!("delay={v}"));
            let argv = Input::from_argv(&opts(), &[format!("--delay={v}")]);
            prop_assert_eq!(stdin.is_ok(), ok);
            prop_assert_eq!(argv.is_ok(), ok);
            if let Ok(input) = stdin {
                let got = input.get("delay").map(str::to_owned);
                prop_assert_eq!(got.as_deref(), Some(v.trim()));
            }
        }

        /// A secret is never part of an error or a warning, whatever its value and
        /// whatever name it came under.
        #[test]
        fn secrets_are_never_echoed(v in "[a-zA-Z][a-zA-Z0-9]{7,15}", name in prop::sample::select(&["secret_key", "secret-key", "unknown_secret"][..])) {
            let stdin = Input::from_stdin(&opts(), &format!("{name}={v}\n"));
            prop_assert!(!said(&stdin).contains(&v), "{}", said(&stdin));
            let argv = Input::from_argv(&opts(), &[format!("--secret-key={v}")]);
            prop_assert!(!said(&argv).contains(&v), "{}", said(&argv));
        }
    }
}
