//! libpq keyword/value connection strings (`host=10.0.0.1 user=replicator ...`), as found
//! in `primary_conninfo`.
//!
//! The agent reuses the standby's own `primary_conninfo` to reach the current primary (for
//! pg_rewind), so it must read it exactly as libpq does — quoted values, backslash escapes
//! — and must be able to hand it on **without the password**: a command line is visible to
//! every user of the node (`ps`) and ends up in logs, so the password travels in the
//! child's environment (`PGPASSWORD`) instead.

/// What separates keywords and values: libpq's `isspace` in the C locale, ASCII only. A
/// Unicode space (U+00A0, U+2003…) is part of a value for libpq, so it is here too.
fn libpq_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// A parsed connection string: keywords in their order, later duplicates overriding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    pairs: Vec<(String, String)>,
}

impl ConnInfo {
    /// Parse the keyword/value form. URIs (`postgresql://...`) are not supported here.
    pub fn parse(text: &str) -> Result<ConnInfo, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            while chars.peek().is_some_and(|&c| libpq_space(c)) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || libpq_space(c) {
                    break;
                }
                key.push(c);
                chars.next();
            }
            while chars.peek().is_some_and(|&c| libpq_space(c)) {
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(format!("missing \"=\" after \"{key}\" in the connection string"));
            }
            while chars.peek().is_some_and(|&c| libpq_space(c)) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'\'') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated quoted value for \"{key}\"")),
                        Some('\'') => break,
                        Some('\\') => value.push(chars.next().ok_or_else(|| format!("dangling backslash in the value of \"{key}\""))?),
                        Some(c) => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if libpq_space(c) {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        value.push(chars.next().ok_or_else(|| format!("dangling backslash in the value of \"{key}\""))?);
                    } else {
                        value.push(c);
                    }
                }
            }
            if key.is_empty() {
                return Err("empty keyword in the connection string".into());
            }
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
        }
        Ok(ConnInfo { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Set (or replace) a keyword.
    pub fn set(&mut self, key: &str, value: &str) {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    /// Remove a keyword, returning its value.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The servers it names by address, as libpq tries them: `hostaddr` wins over `host`,
    /// a comma-separated list names several, `port` gives one port for all or one per
    /// server (5432 by default). A server named by a host name or a socket directory is
    /// left out: finding it would take a DNS lookup, which nothing bounds.
    pub fn literal_addresses(&self) -> Vec<std::net::SocketAddr> {
        let hosts: Vec<&str> =
            self.get("hostaddr").filter(|v| !v.trim().is_empty()).or_else(|| self.get("host")).unwrap_or("").split(',').map(str::trim).collect();
        let ports: Vec<&str> = self.get("port").unwrap_or("").split(',').map(str::trim).collect();
        hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let ip: std::net::IpAddr = h.parse().ok()?;
                let p = if ports.len() == hosts.len() { ports[i] } else { ports[0] };
                let port = if p.is_empty() { 5432 } else { p.parse().ok()? };
                Some(std::net::SocketAddr::new(ip, port))
            })
            .collect()
    }
}

/// Renders the string back, every value quoted (so libpq reads exactly what was parsed).
impl std::fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))?;
        }
        Ok(())
    }
}

/// The password `~/.pgpass` (password-file format `text`) gives a connection to `host`,
/// `port`, `dbname` as `user`, as libpq reads it: `host:port:database:username:password`
/// lines, `*` matching anything, `\:` and `\\` escapes, `#` comments, the first match
/// winning; a Unix-socket connection matches the host `localhost`.
pub fn pgpass_lookup(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    let host = if host.starts_with('/') { "localhost" } else { host };
    text.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()).find_map(|line| {
        // Split on unescaped colons, unescaping as we go.
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => fields.last_mut()?.push(chars.next().unwrap_or('\\')),
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut()?.push(c),
            }
        }
        let [h, p, d, u, pw]: [String; 5] = fields.try_into().ok()?;
        let hit = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        (hit(&h, host) && hit(&p, port) && hit(&d, dbname) && hit(&u, user)).then_some(pw)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn pgpass_lines_as_libpq_reads_them() {
        use super::pgpass_lookup;
        let text = "# comment\n10.0.0.9:5432:*:replicator:other\n*:*:*:replicator:se\\:cr\\\\et\nlocalhost:5433:postgres:postgres:sock\n";
        assert_eq!(pgpass_lookup(text, "192.0.2.100", "5432", "postgres", "replicator").as_deref(), Some("se:cr\\et"));
        assert_eq!(pgpass_lookup(text, "10.0.0.9", "5432", "postgres", "replicator").as_deref(), Some("other"));
        assert_eq!(pgpass_lookup(text, "/run/postgresql", "5433", "postgres", "postgres").as_deref(), Some("sock"));
        assert_eq!(pgpass_lookup(text, "192.0.2.100", "5432", "postgres", "someone"), None);
        assert_eq!(pgpass_lookup("a:b\n", "a", "b", "c", "d"), None);
    }

    use super::*;

    #[test]
    fn parses_what_libpq_parses() {
        let c = ConnInfo::parse("host=192.0.2.100 port = 5432 user=replicator application_name='node 1' password='it\\'s' connect_timeout=2").unwrap();
        assert_eq!(c.get("host"), Some("192.0.2.100"));
        assert_eq!(c.get("port"), Some("5432"));
        assert_eq!(c.get("application_name"), Some("node 1"));
        assert_eq!(c.get("password"), Some("it's"));
        assert_eq!(ConnInfo::parse("  ").unwrap(), ConnInfo::default());
        assert_eq!(ConnInfo::parse("user=a user=b").unwrap().get("user"), Some("b"));
    }

    #[test]
    fn rejects_malformed_strings() {
        for bad in ["host", "host=1 port", "user='open", "=x", "a=b\\"] {
            assert!(ConnInfo::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_without_the_password_once_taken() {
        let mut c = ConnInfo::parse("host=h password=s3cret user=u").unwrap();
        assert_eq!(c.take("password").as_deref(), Some("s3cret"));
        c.set("dbname", "postgres");
        c.set("user", "o'brien");
        let s = c.to_string();
        assert_eq!(s, "host='h' dbname='postgres' user='o\\'brien'");
        assert!(!s.contains("s3cret"));
        assert_eq!(ConnInfo::parse(&s).unwrap(), c);
    }

    #[test]
    fn only_ascii_spaces_separate_as_in_libpq() {
        // Found by `an_unquoted_value_is_read_whole`: U+00A0 ended the value, so this read
        // as host=h user=postgres where libpq reads one host, "h\u{a0}user=postgres".
        let c = ConnInfo::parse("host=h\u{a0}user=postgres").unwrap();
        assert_eq!((c.get("host"), c.get("user")), (Some("h\u{a0}user=postgres"), None));
        assert_eq!(ConnInfo::parse("a=1\x0Bb=2").unwrap().get("b"), Some("2"));
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary text: an error or a connection string, never a panic.
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                let _ = ConnInfo::parse(&text);
            }

            /// Whatever parses renders back to a string that parses to the same pairs.
            #[test]
            fn what_parses_renders_back_the_same(text in prop_oneof![any::<String>(), "([a-z\\\\' =]{1,6}(=| = )('[^']{0,6}'|[^ ']{0,6}) ?){0,4}"]) {
                if let Ok(c) = ConnInfo::parse(&text) {
                    prop_assert_eq!(ConnInfo::parse(&c.to_string()), Ok(c));
                }
            }

            /// Any keywords and values set render to a string that parses back to them.
            #[test]
            fn any_values_round_trip(pairs in prop::collection::vec(("[a-z_]{1,10}", any::<String>()), 0..6)) {
                let mut c = ConnInfo::default();
                for (k, v) in &pairs {
                    c.set(k, v);
                }
                let back = ConnInfo::parse(&c.to_string());
                prop_assert_eq!(&back, &Ok(c.clone()));
                for (k, _) in &pairs {
                    let last = pairs.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
                    prop_assert_eq!(back.as_ref().unwrap().get(k), last);
                }
            }

            /// An unquoted value runs to the next ASCII space, as libpq reads it, whatever
            /// else it holds (Unicode spaces, `=`, quotes inside).
            #[test]
            fn an_unquoted_value_is_read_whole(v in "[^'\\\\ \t\n\r\x0B\x0C][^\\\\ \t\n\r\x0B\x0C]{0,12}") {
                let c = ConnInfo::parse(&format!("host={v} port=5432"));
                prop_assert_eq!(c.as_ref().ok().and_then(|c| c.get("host")), Some(v.as_str()));
                prop_assert_eq!(c.as_ref().ok().and_then(|c| c.get("port")), Some("5432"));
            }
        }
    }
}
