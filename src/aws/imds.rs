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
        self.get("mac").await
    }

    /// The MAC addresses of every attached network interface.
    pub async fn macs(&self) -> Result<Vec<String>, OcfError> {
        let list = self.get("network/interfaces/macs/").await?;
        Ok(list.lines().map(|l| l.trim().trim_end_matches('/').to_owned()).filter(|l| !l.is_empty()).collect())
    }

    /// The ENI id (`eni-...`) of the interface with this MAC.
    pub async fn interface_id(&self, mac: &str) -> Result<String, OcfError> {
        self.get(&format!("network/interfaces/macs/{mac}/interface-id")).await
    }

    /// The device index of the interface with this MAC (0 is the primary interface).
    pub async fn device_number(&self, mac: &str) -> Result<u32, OcfError> {
        let v = self.get(&format!("network/interfaces/macs/{mac}/device-number")).await?;
        v.parse().map_err(|_| OcfError::generic(format!("instance metadata service: device-number of {mac} is '{v}'")))
    }

    /// The private IPv4 addresses of the interface with this MAC (primary first).
    pub async fn local_ipv4s(&self, mac: &str) -> Result<Vec<Ipv4Addr>, OcfError> {
        let v = self.get(&format!("network/interfaces/macs/{mac}/local-ipv4s")).await?;
        Ok(v.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// The ENI id of the primary network interface.
    pub async fn primary_eni(&self) -> Result<String, OcfError> {
        let mac = self.mac().await?;
        self.interface_id(&mac).await
    }
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
