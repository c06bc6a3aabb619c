//! libpq keyword/value connection strings (`host=10.0.0.1 user=replicator ...`), as found
//! in `primary_conninfo`.
//!
//! The agent reuses the standby's own `primary_conninfo` to reach the current primary (for
//! pg_rewind), so it must read it exactly as libpq does — quoted values, backslash escapes
//! — and must be able to hand it on **without the password**: a command line is visible to
//! every user of the node (`ps`) and ends up in logs, so the password travels in the
//! child's environment (`PGPASSWORD`) instead.

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
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c.is_whitespace() {
                    break;
                }
                key.push(c);
                chars.next();
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(format!("missing \"=\" after \"{key}\" in the connection string"));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
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
                    if c.is_whitespace() {
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

#[cfg(test)]
mod tests {
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
}
