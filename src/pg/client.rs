//! Talking to the local PostgreSQL in-process, as `system_user`, over its Unix socket
//! (and, for pg_rewind's precondition, to the primary its `primary_conninfo` names).
//!
//! The agent runs as root, but PostgreSQL's usual local authentication is `peer`: the
//! server asks the kernel who is on the other end of the socket. So the agent switches its
//! *effective* uid/gid to `system_user` just for the `connect()` — the kernel records the
//! credentials then — and switches back at once. No `psql`, no `su`, no fork.
//!
//! The switch is the calling thread's alone ([`super::identity`]).
//!
//! Every connect and query is bounded by its caller's timeout cut to what is left of the
//! running action ([`crate::ocf::deadline::bound`]): a server that accepts the connection
//! but never answers costs the action at most its own time, never more.
//!
//! Values go into SQL as bind parameters (`query_one_with`, `query_text_with`,
//! `execute_with`: `$1` in the text, the value apart), never pasted into the text: a value
//! then cannot change what the statement says, whatever quotes or backslashes it holds.
//! The one exception is a utility statement (`ALTER SYSTEM`), which PostgreSQL does not
//! plan and so cannot take parameters: [`quote_literal`] is the only way a value goes in
//! there.

use std::path::Path;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, NoTls};

use crate::ocf::OcfError;
use crate::pg::conninfo::ConnInfo;

pub use super::identity::Identity;

/// A connection to an instance, with the runtime that drives it.
pub struct Local {
    rt: Runtime,
    client: Client,
}

/// Why a connection failed, as far as the agent cares.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing listens on the socket (no server, or not yet).
    Refused(String),
    /// The server answered but will not take connections now (starting up, shutting down,
    /// in crash recovery, too many clients...).
    Rejected(String),
    /// Anything else (authentication, timeout, I/O).
    Other(String),
}

impl ConnectError {
    pub fn message(&self) -> &str {
        match self {
            ConnectError::Refused(m) | ConnectError::Rejected(m) | ConnectError::Other(m) => m,
        }
    }
}

/// What the server said (its message, not tokio-postgres's "db error"), or the client error.
fn said(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())
}

fn runtime() -> Result<Runtime, OcfError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| OcfError::generic(format!("cannot start the runtime: {e}")))
}

impl Local {
    /// Connect to `socket_dir`/.s.PGSQL.`port` as database user `user`, switching to `who`
    /// for the connect when given (root only).
    pub fn connect(socket_dir: &Path, port: u16, user: &str, who: Option<Identity>, timeout: Duration) -> Result<Local, ConnectError> {
        Self::connect_named(socket_dir, port, user, who, timeout, "paceline-pgsqlms")
    }

    /// [`Local::connect`], with the `application_name` the session shows in
    /// `pg_stat_activity`.
    pub fn connect_named(
        socket_dir: &Path,
        port: u16,
        user: &str,
        who: Option<Identity>,
        timeout: Duration,
        application_name: &str,
    ) -> Result<Local, ConnectError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(socket_dir).port(port).user(user).dbname("postgres").application_name(application_name).connect_timeout(timeout);
        Self::connect_with(&cfg, who, timeout)
    }

    /// Connect to the server a libpq connection string names (`primary_conninfo`, say, with
    /// its `user` set), with the password given apart (it is kept off command lines). `who` is used for a socket
    /// host (peer authentication). Without TLS here, an `sslmode` that requires it is refused
    /// rather than silently downgraded.
    pub fn connect_conninfo(
        info: &ConnInfo,
        password: Option<&str>,
        who: Option<Identity>,
        timeout: Duration,
        application_name: &str,
    ) -> Result<Local, ConnectError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.dbname("postgres").application_name(application_name).connect_timeout(timeout);
        // hostaddr, when given, is where libpq connects (host then only names the server).
        for host in info.get("hostaddr").or(info.get("host")).unwrap_or("/var/run/postgresql").split(',') {
            if host.starts_with('/') {
                cfg.host_path(host);
            } else {
                cfg.host(host);
            }
        }
        for port in info.get("port").unwrap_or("5432").split(',') {
            cfg.port(port.trim().parse().map_err(|_| ConnectError::Other(format!("port '{port}' is not a port number")))?);
        }
        cfg.user(info.get("user").ok_or_else(|| ConnectError::Other("the connection string names no user".into()))?);
        if let Some(db) = info.get("dbname") {
            cfg.dbname(db);
        }
        // No password in the connection string: the account's ~/.pgpass, as libpq (the
        // standby's walreceiver, pg_rewind) finds it.
        let from_file = match (password, who) {
            (None, Some(who)) => pgpass_password(info, who),
            _ => None,
        };
        if let Some(p) = password.or(from_file.as_deref()) {
            cfg.password(p);
        }
        match info.get("sslmode").unwrap_or("prefer") {
            "disable" | "allow" | "prefer" => {}
            other => return Err(ConnectError::Other(format!("sslmode={other} needs TLS, which this check does not speak"))),
        }
        Self::connect_with(&cfg, who, timeout)
    }

    fn connect_with(cfg: &tokio_postgres::Config, who: Option<Identity>, timeout: Duration) -> Result<Local, ConnectError> {
        let timeout = crate::ocf::deadline::bound(timeout);
        let rt = runtime().map_err(|e| ConnectError::Other(e.reason))?;
        let result = super::identity::try_as_user(who, || rt.block_on(async { tokio::time::timeout(timeout, cfg.connect(NoTls)).await }))
            .map_err(|_| ConnectError::Other("cannot switch to system_user's identity to connect".into()))?;
        let (client, connection) = match result {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                let text = e.to_string();
                let code = e.code().map(|c| c.code().to_owned());
                return Err(match code.as_deref() {
                    // cannot_connect_now (starting up / shutting down / recovery), too_many_connections
                    Some("57P03") | Some("53300") => ConnectError::Rejected(said(&e)),
                    Some(_) => ConnectError::Other(said(&e)),
                    None if text.contains("No such file")
                        || text.contains("Connection refused")
                        || text.contains("os error 2")
                        || text.contains("os error 111") =>
                    {
                        ConnectError::Refused(text)
                    }
                    None => ConnectError::Other(text),
                });
            }
            Err(_) => return Err(ConnectError::Other(format!("the server did not answer the connection within {} ms", timeout.as_millis()))),
        };
        rt.spawn(connection);
        Ok(Local { rt, client })
    }

    /// One row, one column.
    pub fn query_one<T: for<'a> FromSql<'a>>(&self, sql: &str, timeout: Duration) -> Result<T, OcfError> {
        self.query_one_with(sql, &[], timeout)
    }

    /// [`Local::query_one`] with bind parameters: `$1`, `$2`… in `sql` stand for `params`.
    pub fn query_one_with<T: for<'a> FromSql<'a>>(&self, sql: &str, params: &[&(dyn ToSql + Sync)], timeout: Duration) -> Result<T, OcfError> {
        let row = self.bounded(sql, timeout, self.client.query_one(sql, params))?;
        row.try_get(0).map_err(|e| OcfError::generic(format!("{sql}: {e}")))
    }

    /// Every row of a query whose columns are all text (cast them with `::text`).
    pub fn query_text(&self, sql: &str, timeout: Duration) -> Result<Vec<Vec<Option<String>>>, OcfError> {
        self.query_text_with(sql, &[], timeout)
    }

    /// [`Local::query_text`] with bind parameters: `$1`, `$2`… in `sql` stand for `params`.
    pub fn query_text_with(&self, sql: &str, params: &[&(dyn ToSql + Sync)], timeout: Duration) -> Result<Vec<Vec<Option<String>>>, OcfError> {
        let rows = self.bounded(sql, timeout, self.client.query(sql, params))?;
        rows.iter().map(|r| (0..r.len()).map(|i| r.try_get::<_, Option<String>>(i).map_err(|e| OcfError::generic(format!("{sql}: {e}")))).collect()).collect()
    }

    /// A statement without result rows (CHECKPOINT, SET...), sent as a simple query (it
    /// may hold several statements; it takes no parameters).
    pub fn execute(&self, sql: &str, timeout: Duration) -> Result<(), OcfError> {
        self.bounded(sql, timeout, self.client.batch_execute(sql)).map(|_| ())
    }

    /// One statement without result rows, with bind parameters: `$1`, `$2`… in `sql` stand
    /// for `params`. How many rows it touched.
    pub fn execute_with(&self, sql: &str, params: &[&(dyn ToSql + Sync)], timeout: Duration) -> Result<u64, OcfError> {
        self.bounded(sql, timeout, self.client.execute(sql, params))
    }

    /// `statement` (the exchange of `sql`) within `timeout` cut to the action's deadline.
    fn bounded<T>(&self, sql: &str, timeout: Duration, statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T, OcfError> {
        let timeout = crate::ocf::deadline::bound(timeout);
        self.rt.block_on(async {
            match tokio::time::timeout(timeout, statement).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(OcfError::generic(format!("{sql}: {}", said(&e)))),
                Err(_) => Err(OcfError::generic(format!("{sql}: no answer within {} ms", timeout.as_millis()))),
            }
        })
    }

    /// `pg_is_in_recovery()`: true on a standby.
    pub fn in_recovery(&self, timeout: Duration) -> Result<bool, OcfError> {
        self.query_one("SELECT pg_is_in_recovery()", timeout)
    }
}

/// `value` as an SQL string literal, for the one kind of statement that cannot take a bind
/// parameter: a utility statement such as `ALTER SYSTEM SET name = '…'` (PostgreSQL plans
/// no parameters for those, so `$1` is a syntax error there). Everywhere else a value goes
/// as a parameter ([`Local::query_one_with`] and the others).
///
/// Written as libpq's `PQescapeLiteral` writes it: every `'` doubled; when the value holds
/// a backslash, the `E'…'` form with every backslash doubled too — so the literal means
/// the value whether `standard_conforming_strings` is on (backslashes literal in `'…'`)
/// or off (backslashes escapes). A NUL cannot be in a PostgreSQL string: an error
/// (`OCF_ERR_CONFIGURED`, the values written come from the configuration).
pub fn quote_literal(value: &str) -> Result<String, OcfError> {
    if value.contains('\0') {
        return Err(OcfError::configured("a value for PostgreSQL holds a NUL character, which no PostgreSQL string can hold"));
    }
    let doubled = value.replace('\'', "''");
    Ok(if value.contains('\\') { format!("E'{}'", doubled.replace('\\', "\\\\")) } else { format!("'{doubled}'") })
}

/// The password `who`'s `~/.pgpass` holds for `info` (its first host and port, its dbname or
/// `postgres`, its user), read as `who` (the file is the account's: a link planted there
/// gets root nothing), ignored when group or others may read it, as libpq ignores it.
fn pgpass_password(info: &ConnInfo, who: Identity) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let (_, home) = crate::pg::identity::account(who)?;
    let path = Path::new(&home).join(".pgpass");
    let text = crate::pg::identity::as_user(Some(who), || {
        let f = std::fs::File::open(&path)?;
        if f.metadata()?.permissions().mode() & 0o077 != 0 {
            return Err(std::io::Error::other("group or others may read it"));
        }
        std::io::read_to_string(f)
    })
    .ok()?;
    let first = |v: &str| v.split(',').next().unwrap_or(v).trim().to_owned();
    let host = first(info.get("host").or(info.get("hostaddr")).unwrap_or("/var/run/postgresql"));
    let port = first(info.get("port").unwrap_or("5432"));
    crate::pg::conninfo::pgpass_lookup(&text, &host, &port, info.get("dbname").unwrap_or("postgres"), info.get("user")?)
}

#[cfg(test)]
mod tests {
    use super::quote_literal;
    use crate::ocf::OcfRc;
    use proptest::prelude::*;

    /// What PostgreSQL reads from a literal `quote_literal` writes: `'…'` (standard
    /// conforming) or `E'…'` (escapes); None when the text is not one whole literal — a
    /// quote that ends it early and lets what follows be SQL.
    fn unquote(lit: &str) -> Option<String> {
        let (escapes, body) = match lit.strip_prefix("E'") {
            Some(b) => (true, b),
            None => (false, lit.strip_prefix('\'')?),
        };
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => match chars.next() {
                    Some('\'') => out.push('\''),
                    None => return Some(out),
                    Some(_) => return None, // the literal ended before the text did
                },
                '\\' if escapes => out.push(chars.next()?),
                '\\' => return None, // a lone backslash means something else with standard_conforming_strings off
                c => out.push(c),
            }
        }
        None // never closed
    }

    #[test]
    fn hostile_values_stay_one_literal() {
        let long = "x'\\".repeat(100_000);
        for v in ["", "plain", "it's", "'", "''", "'; DROP TABLE t; --", "a\\b", "\\", "\\'", "'\\", "E'x'", "\"node\"", "é ☃ \u{202e}", "\n\r\t", &long] {
            let lit = quote_literal(v).unwrap();
            assert_eq!(unquote(&lit).as_deref(), Some(v), "{lit}");
        }
        assert_eq!(quote_literal(r#"ANY 1 ("n'1")"#).unwrap(), r#"'ANY 1 ("n''1")'"#);
        assert_eq!(quote_literal(r"a\'b").unwrap(), r"E'a\\''b'");
    }

    #[test]
    fn a_nul_is_refused() {
        for v in ["\0", "a\0b", "'\0'"] {
            assert_eq!(quote_literal(v).unwrap_err().rc, OcfRc::ErrConfigured);
        }
    }

    proptest! {
        #[test]
        fn any_value_reads_back(v in "[^\\x00]{0,64}|['\\\\\"; -]{0,64}") {
            prop_assert_eq!(unquote(&quote_literal(&v).unwrap()), Some(v));
        }
    }
}
