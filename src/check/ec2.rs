//! The EC2 part of `paceline check`: may this node's AWS identity make the calls its AWS
//! resources and fence devices will make?
//!
//! A missing IAM permission shows up at the worst moment — the first failover, or the first
//! fencing — as OCF_ERR_PERM on the node that had to take over. EC2 answers the question
//! ahead of time without doing anything: a request with `DryRun` set fails with
//! `DryRunOperation` when it would have been allowed and `UnauthorizedOperation` when not.
//! For aws-vpc-move-ip, CreateRoute or ReplaceRoute (whichever start would make) on each
//! table. The read-only calls the agents make (Describe*) are simply made. Two calls cannot be
//! asked: EC2 offers no DryRun for AssignPrivateIpAddresses and UnassignPrivateIpAddresses
//! (awsvip's start and stop), and a real request would move the address; for awsvip only
//! its DescribeNetworkInterfaces is checked. Each call is asked as
//! the agent would ask it — its region, profile, endpoint and keys from the CIB, this
//! node's instance and interface — so a finding names the resource, the call and what
//! would fail. What cannot be asked (no metadata service, no answer) is a warning: the
//! check could not tell, which is not the same as "denied".

use std::time::Duration;

use aws_sdk_ec2::types::Filter;

use crate::aws::{self, AwsError, AwsParams, Deadline, Session};
use crate::findings::{Finding, Severity};
use crate::ocf::OcfRc;
use crate::pacemaker::cib::{agent_type, Primitive};

/// What EC2 said to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allowed,
    /// UnauthorizedOperation, or no credentials at all.
    Denied(String),
    /// No verdict: the request failed for another reason (unreachable, throttled, ...).
    Unknown(String),
}

/// One request asked on behalf of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub resource: String,
    /// The EC2 action (`AssignPrivateIpAddresses`), or `credentials` for the session.
    pub call: String,
    /// What needs it, in words: "start", "fencing (off)".
    pub purpose: &'static str,
    pub answer: Answer,
}

/// The resources whose agents call EC2: ours (and heartbeat's of the same name), and
/// fence-agents' fence_aws.
pub fn relevant(p: &Primitive) -> bool {
    let t = agent_type(&p.agent);
    t == "fence_aws" || crate::registry::get(t).is_some_and(|a| a.calls_ec2)
}

/// The findings from what EC2 answered: a denied call is critical (the action will fail
/// with OCF_ERR_PERM), an unanswered one a warning.
pub fn judge(asked: &[Asked]) -> Vec<Finding> {
    asked
        .iter()
        .filter_map(|a| match &a.answer {
            Answer::Allowed => None,
            Answer::Denied(why) if a.call == "credentials" => Some(Finding {
                severity: Severity::Critical,
                what: format!("{}: no AWS credentials on this node ({why}): its {} would fail", a.resource, a.purpose),
                hint: "attach an instance profile (IAM role) to this instance, or set profile / access_key".into(),
            }),
            Answer::Denied(why) => Some(Finding {
                severity: Severity::Critical,
                what: format!("{}: this node may not call ec2:{} ({why}): its {} would fail", a.resource, a.call, a.purpose),
                hint: format!("allow ec2:{} in this instance's IAM policy (docs/iam/ has the policy of each topology)", a.call),
            }),
            Answer::Unknown(why) => Some(Finding {
                severity: Severity::Warning,
                what: format!("{}: could not check ec2:{} ({why})", a.resource, a.call),
                hint: "run paceline check again on an EC2 instance that reaches its EC2 endpoint".into(),
            }),
        })
        .collect()
}

/// How a DryRun request's failure reads: `DryRunOperation` is the "yes".
fn dry_answer<T>(r: Result<T, AwsError>) -> Answer {
    match r {
        Ok(_) => Answer::Allowed,
        Err(e) if e.code() == Some("DryRunOperation") => Answer::Allowed,
        Err(e) => real_answer::<()>(Err(e)),
    }
}

/// How a real (read-only) request's outcome reads.
fn real_answer<T>(r: Result<T, AwsError>) -> Answer {
    match r {
        Ok(_) => Answer::Allowed,
        Err(e) if e.code() == Some("UnauthorizedOperation") || e.rc == OcfRc::ErrPerm => Answer::Denied(e.code().unwrap_or("denied").to_owned()),
        Err(e) => Answer::Unknown(e.reason),
    }
}

/// Where and as whom the agent of `p` would talk to EC2, from its CIB parameters.
fn params_of(p: &Primitive) -> AwsParams {
    AwsParams::read(|n| p.params.get(n).map(String::as_str))
}

/// Ask EC2, for every relevant resource of `prims`, the calls its agent will make.
pub fn ask(prims: &[Primitive]) -> Vec<Asked> {
    let mut out = Vec::new();
    for p in prims.iter().filter(|p| relevant(p)) {
        match aws::block_on(ask_for(p)) {
            Ok(mut a) => out.append(&mut a),
            Err(e) => out.push(Asked { resource: p.id.clone(), call: "session".into(), purpose: "actions", answer: Answer::Unknown(e.reason) }),
        }
    }
    out
}

async fn ask_for(p: &Primitive) -> Vec<Asked> {
    let deadline = Deadline::after(Duration::from_secs(15));
    let kind = agent_type(&p.agent);
    let fence = kind.starts_with("fence_");
    let asked = |call: &str, purpose: &'static str, answer: Answer| Asked { resource: p.id.clone(), call: call.to_owned(), purpose, answer };
    let s = match Session::open(&params_of(p), &deadline).await {
        Ok(s) => s,
        Err(e) if e.rc == OcfRc::ErrPerm => return vec![asked("credentials", if fence { "fencing" } else { "start" }, Answer::Denied(e.reason))],
        Err(e) => return vec![asked("session", "actions", Answer::Unknown(e.reason))],
    };
    let c = s.ec2.client();
    let me = s.instance_id.clone();
    let mut out = Vec::new();
    match kind {
        "awsvip" => {
            // EC2 has no DryRun for AssignPrivateIpAddresses and UnassignPrivateIpAddresses,
            // and a real request would move the address: only the read is asked.
            let f = Filter::builder().name("attachment.instance-id").values(&me).build();
            let r = s.ec2.call("DescribeNetworkInterfaces", c.describe_network_interfaces().filters(f).send()).await;
            out.push(asked("DescribeNetworkInterfaces", "monitor", real_answer(r)));
        }
        "awseip" => {
            let mut req = c.describe_addresses();
            if let Some(a) = p.params.get("allocation_id").filter(|v| !v.trim().is_empty()) {
                req = req.allocation_ids(a.trim());
            } else if let Some(ip) = p.params.get("elastic_ip").filter(|v| !v.trim().is_empty()) {
                req = req.public_ips(ip.trim());
            }
            let r = s.ec2.call("DescribeAddresses", req.send()).await;
            let addr = r.as_ref().ok().and_then(|o| o.addresses().first().cloned());
            out.push(asked("DescribeAddresses", "monitor", real_answer(r)));
            if let Some(alloc) = addr.as_ref().and_then(|a| a.allocation_id()) {
                let r = s
                    .ec2
                    .call("AssociateAddress", c.associate_address().allocation_id(alloc).instance_id(&me).allow_reassociation(true).dry_run(true).send())
                    .await;
                out.push(asked("AssociateAddress", "start", dry_answer(r)));
            }
            if let Some(assoc) = addr.as_ref().and_then(|a| a.association_id()) {
                let r = s.ec2.call("DisassociateAddress", c.disassociate_address().association_id(assoc).dry_run(true).send()).await;
                out.push(asked("DisassociateAddress", "stop", dry_answer(r)));
            }
        }
        "aws-vpc-move-ip" => {
            let tables: Vec<String> =
                p.params.get("routing_table").map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()).unwrap_or_default();
            let ip = p.params.get("ip").filter(|v| !v.trim().is_empty()).or_else(|| p.params.get("address")).map(|v| v.trim()).unwrap_or_default();
            let cidr = format!("{ip}/32");
            let r = s.ec2.call("DescribeRouteTables", c.describe_route_tables().set_route_table_ids(Some(tables.clone())).send()).await;
            let found = r.as_ref().map(|o| o.route_tables().to_vec()).unwrap_or_default();
            out.push(asked("DescribeRouteTables", "monitor", real_answer(r)));
            // The routes point at an interface of this instance: its primary one will do.
            let eni = s.imds.primary_eni().await;
            for t in tables.iter().filter(|_| eni.is_ok()) {
                let eni = eni.as_deref().unwrap_or_default();
                let has = found
                    .iter()
                    .find(|rt| rt.route_table_id() == Some(t.as_str()))
                    .is_some_and(|rt| rt.routes().iter().any(|r| r.destination_cidr_block() == Some(cidr.as_str())));
                if has {
                    let r = s
                        .ec2
                        .call("ReplaceRoute", c.replace_route().route_table_id(t).destination_cidr_block(&cidr).network_interface_id(eni).dry_run(true).send())
                        .await;
                    out.push(asked("ReplaceRoute", "start", dry_answer(r)));
                } else {
                    let r = s
                        .ec2
                        .call("CreateRoute", c.create_route().route_table_id(t).destination_cidr_block(&cidr).network_interface_id(eni).dry_run(true).send())
                        .await;
                    out.push(asked("CreateRoute", "start", dry_answer(r)));
                }
            }
            if let Err(e) = eni {
                out.push(asked("ReplaceRoute", "start", Answer::Unknown(format!("this instance's interface: {}", e.reason))));
            }
        }
        _ => {
            // A fence device: asked for this node's own instance, as the survivor would ask
            // for its peer's.
            let r = s.ec2.call("DescribeInstances", c.describe_instances().instance_ids(&me).send()).await;
            out.push(asked("DescribeInstances", "fencing (status)", real_answer(r)));
            let r = s.ec2.call("StopInstances", c.stop_instances().instance_ids(&me).force(true).dry_run(true).send()).await;
            out.push(asked("StopInstances", "fencing (off)", dry_answer(r)));
            let r = s.ec2.call("StartInstances", c.start_instances().instance_ids(&me).dry_run(true).send()).await;
            out.push(asked("StartInstances", "fencing (on)", dry_answer(r)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(call: &str, answer: Answer) -> Asked {
        Asked { resource: "pgsql-ip".into(), call: call.into(), purpose: "start", answer }
    }

    #[test]
    fn denied_is_critical_unknown_a_warning_allowed_nothing() {
        let f = judge(&[
            a("DescribeNetworkInterfaces", Answer::Allowed),
            a("AssignPrivateIpAddresses", Answer::Denied("UnauthorizedOperation".into())),
            a("UnassignPrivateIpAddresses", Answer::Unknown("EC2 did not answer".into())),
            a("credentials", Answer::Denied("no credentials".into())),
        ]);
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(f[0].what.contains("ec2:AssignPrivateIpAddresses") && f[0].what.contains("start would fail"), "{f:?}");
        assert!(f[0].hint.contains("allow ec2:AssignPrivateIpAddresses"), "{f:?}");
        assert_eq!(f[1].severity, Severity::Warning);
        assert!(f[2].what.contains("no AWS credentials"), "{f:?}");
    }

    #[test]
    fn dry_run_reads() {
        let e = |code: &str, rc| Err::<(), _>(AwsError::new(rc, Some(code.into()), format!("EC2 X failed: {code}")));
        assert_eq!(dry_answer(e("DryRunOperation", OcfRc::ErrGeneric)), Answer::Allowed);
        assert_eq!(dry_answer(e("UnauthorizedOperation", OcfRc::ErrPerm)), Answer::Denied("UnauthorizedOperation".into()));
        assert!(matches!(dry_answer(e("RequestLimitExceeded", OcfRc::ErrGeneric)), Answer::Unknown(_)));
        assert_eq!(real_answer(e("UnauthorizedOperation", OcfRc::ErrPerm)), Answer::Denied("UnauthorizedOperation".into()));
    }
}
