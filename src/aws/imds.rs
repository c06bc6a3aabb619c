//! The instance's own identity, from the instance metadata service (IMDSv2 only).
//!
//! Every agent needs to know which instance and which network interface "here" is. The
//! answer comes from IMDS, through aws-config's client, which does IMDSv2 properly: one
//! token `PUT` per process, cached for its TTL (refreshed shortly before it expires),
//! retries on 5xx. A token IMDS rejects before its TTL (401: IMDS restarted, instance
//! moved) would be retried as is by that client, so on a 401 we drop the client — and
//! its token — and ask once more with a fresh one. We add tight connect/read timeouts
//! (IMDS is link-local: it answers in milliseconds or not at all) and bound every request
//! by the action's deadline, so that an unreachable IMDS is a prompt answer, not a hung
//! agent. An IMDS that cannot be reached at all (no token, connection refused or no route:
//! not an EC2 instance, or IMDS disabled) is `OCF_ERR_INSTALLED` — this node cannot run
//! the agent, as heartbeat's agents say when their tools are missing — while an IMDS that
//! answers late or with an error is `OCF_ERR_GENERIC`, worth a retry.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::imds::client::error::ImdsError;

use super::Deadline;
use crate::ocf::OcfError;

/// A handle on IMDS for one action.
#[derive(Debug)]
pub struct Imds {
    client: Mutex<aws_config::imds::Client>,
    deadline: Deadline,
}

fn build(deadline: &Deadline) -> aws_config::imds::Client {
    let budget = deadline.remaining().max(Duration::from_millis(100));
    aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_secs(1).min(budget))
        .read_timeout(Duration::from_secs(2).min(budget))
        .operation_attempt_timeout(Duration::from_secs(3).min(budget))
        .operation_timeout(Duration::from_secs(10).min(budget))
        .max_attempts(3)
        .build()
}

impl Imds {
    /// A client bounded by `deadline`. Nothing is sent until the first request.
    pub fn new(deadline: &Deadline) -> Imds {
        Imds { client: Mutex::new(build(deadline)), deadline: *deadline }
    }

    /// The client, for the SDK's credential chain (instance role credentials).
    pub(crate) fn client(&self) -> aws_config::imds::Client {
        self.client.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `GET /latest/meta-data/<path>` (or an absolute `/latest/...` path), trimmed.
    pub async fn get(&self, path: &str) -> Result<String, OcfError> {
        let full = if path.starts_with('/') { path.to_owned() } else { format!("/latest/meta-data/{path}") };
        let mut answer = self.get_once(&full).await?;
        if matches!(&answer, Err(ImdsError::ErrorResponse(r)) if r.response().status().as_u16() == 401) {
            crate::ocf_debug!("instance metadata service rejected the session token (401): fetching a new one");
            *self.client.lock().unwrap_or_else(|e| e.into_inner()) = build(&self.deadline);
            answer = self.get_once(&full).await?;
        }
        match answer {
            Ok(v) => {
                let v: String = v.into();
                Ok(v.trim().to_owned())
            }
            Err(e @ (ImdsError::FailedToLoadToken(_) | ImdsError::IoError(_))) => {
                Err(OcfError::installed("no instance metadata service answers on this node (not an EC2 instance?)")
                    .context(format!("GET {full}: {}", describe(&e))))
            }
            Err(e) => Err(OcfError::generic(format!("instance metadata service: {}", describe(&e))).context(format!("GET {full}"))),
        }
    }

    async fn get_once(&self, full: &str) -> Result<Result<aws_config::imds::client::SensitiveString, ImdsError>, OcfError> {
        let client = self.client();
        tokio::time::timeout(self.deadline.remaining(), client.get(full.to_owned()))
            .await
            .map_err(|_| OcfError::generic("instance metadata service: no answer in the time left").context(format!("GET {full}")))
    }

    /// This instance's id.
    pub async fn instance_id(&self) -> Result<String, OcfError> {
        self.get("instance-id").await
    }

    /// This instance's region.
    pub async fn region(&self) -> Result<String, OcfError> {
        self.get("placement/region").await
    }

    /// The MAC address of the primary network interface (device 0).
    pub async fn mac(&self) -> Result<String, OcfError> {
        let v = self.get("mac").await?;
        mac_in(&v).map(str::to_owned).map_err(|e| OcfError::generic(format!("instance metadata service: mac: {e}")))
    }

    /// The MAC addresses of every attached network interface.
    pub async fn macs(&self) -> Result<Vec<String>, OcfError> {
        let list = self.get("network/interfaces/macs/").await?;
        macs_in(&list).map_err(|e| OcfError::generic(format!("instance metadata service: network/interfaces/macs/: {e}")))
    }

    /// The ENI id (`eni-...`) of the interface with this MAC.
    pub async fn interface_id(&self, mac: &str) -> Result<String, OcfError> {
        self.get(&format!("network/interfaces/macs/{mac}/interface-id")).await
    }

    /// The device index of the interface with this MAC (0 is the primary interface).
    pub async fn device_number(&self, mac: &str) -> Result<u32, OcfError> {
        let v = self.get(&format!("network/interfaces/macs/{mac}/device-number")).await?;
        device_number_in(&v).ok_or_else(|| OcfError::generic(format!("instance metadata service: device-number of {mac} is '{v}'")))
    }

    /// The private IPv4 addresses of the interface with this MAC (primary first).
    pub async fn local_ipv4s(&self, mac: &str) -> Result<Vec<Ipv4Addr>, OcfError> {
        let v = self.get(&format!("network/interfaces/macs/{mac}/local-ipv4s")).await?;
        local_ipv4s_in(&v).map_err(|e| OcfError::generic(format!("instance metadata service: local-ipv4s of {mac}: {e}")))
    }

    /// The ENI id of the primary network interface.
    pub async fn primary_eni(&self) -> Result<String, OcfError> {
        let mac = self.mac().await?;
        self.interface_id(&mac).await
    }
}

/// A MAC address as IMDS writes it (`0a:1b:2c:3d:4e:5f`); anything else is an error, so
/// that a mangled answer never becomes part of the next request's path.
fn mac_in(v: &str) -> Result<&str, String> {
    let ok = v.len() == 17 && v.split(':').all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(v)
    } else {
        Err(format!("'{v}' is not a MAC address"))
    }
}

/// The list of `network/interfaces/macs/`: one `MAC/` a line.
fn macs_in(list: &str) -> Result<Vec<String>, String> {
    list.lines().map(|l| l.trim().trim_end_matches('/')).filter(|l| !l.is_empty()).map(|l| mac_in(l).map(str::to_owned)).collect()
}

/// A device number: decimal digits only.
fn device_number_in(v: &str) -> Option<u32> {
    v.bytes().all(|b| b.is_ascii_digit()).then(|| v.parse().ok()).flatten()
}

/// The addresses of `local-ipv4s`, one a line: a line that is not an IPv4 address is an
/// error (it was skipped, so a mangled answer read as fewer addresses).
fn local_ipv4s_in(v: &str) -> Result<Vec<Ipv4Addr>, String> {
    v.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| l.parse().map_err(|_| format!("'{l}' is not an IPv4 address"))).collect()
}

/// One line about an IMDS failure, without the SDK's debug dumps.
fn describe(e: &ImdsError) -> String {
    match e {
        ImdsError::ErrorResponse(r) => match r.response().status().as_u16() {
            404 => "not found (404)".into(),
            403 => "access denied (403): IMDS disabled for this instance?".into(),
            s => format!("HTTP status {s}"),
        },
        ImdsError::FailedToLoadToken(_) => format!("cannot get an IMDSv2 token: {}", super::error::chain(e)),
        ImdsError::IoError(_) => format!("unreachable: {}", super::error::chain(e)),
        _ => super::error::chain(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn answers_as_imds_writes_them() {
        assert_eq!(macs_in("0a:1b:2c:3d:4e:5f/\n02:00:00:00:00:01/\n").unwrap(), vec!["0a:1b:2c:3d:4e:5f", "02:00:00:00:00:01"]);
        assert_eq!(local_ipv4s_in("10.0.0.5\n10.0.0.6").unwrap(), vec![Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)]);
        assert_eq!(device_number_in("1"), Some(1));
        // Found by `answers_are_what_they_say_or_errors`: a garbage line was skipped.
        assert!(local_ipv4s_in("10.0.0.5\n<html>").is_err());
        for bad in ["", "+1", "1 ", "x"] {
            assert_eq!(device_number_in(bad), None, "{bad}");
        }
        for bad in ["../../placement", "0a:1b:2c:3d:4e", "0a:1b:2c:3d:4e:5g", "0a-1b-2c-3d-4e-5f"] {
            assert!(mac_in(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Any answer: an error or exactly what it says, never a panic.
        #[test]
        fn answers_are_what_they_say_or_errors(text in prop_oneof![any::<String>(), "([0-9a-f]{2}:){5}[0-9a-f]{2}/?(\n|\n\n)?", "([0-9.]{1,15}\n?){0,3}"]) {
            if let Ok(macs) = macs_in(&text) {
                let lines: Vec<&str> = text.lines().map(|l| l.trim().trim_end_matches('/')).filter(|l| !l.is_empty()).collect();
                prop_assert_eq!(macs, lines);
            }
            if let Ok(ips) = local_ipv4s_in(&text) {
                let lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
                prop_assert_eq!(ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(), lines);
            }
            if let Some(n) = device_number_in(&text) {
                prop_assert_eq!(n.to_string().parse::<u32>(), text.parse::<u32>());
                prop_assert!(!text.starts_with('+'));
            }
        }

        /// Every MAC and address list written out reads back.
        #[test]
        fn lists_read_back(macs in prop::collection::vec(any::<[u8; 6]>(), 1..4), ips in prop::collection::vec(any::<[u8; 4]>(), 0..4)) {
            let written: Vec<String> = macs.iter().map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")).collect();
            let list: String = written.iter().map(|m| format!("{m}/\n")).collect();
            prop_assert_eq!(macs_in(&list), Ok(written));
            let ips: Vec<Ipv4Addr> = ips.into_iter().map(Ipv4Addr::from).collect();
            let text = ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join("\n");
            prop_assert_eq!(local_ipv4s_in(&text), Ok(ips));
        }
    }
}
