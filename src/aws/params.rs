//! The parameters every AWS agent has, and a type for secrets.
//!
//! The parameter definitions are shared ([`COMMON`]) so that `region`, `profile`,
//! `endpoint_url` and `instance_id` — and heartbeat's leftovers — mean the same thing, with
//! the same text, in every agent's meta-data and documentation. Syntax is checked here, before any network traffic, so that a typo is
//! `OCF_ERR_CONFIGURED` on every node rather than a timeout on some.

use std::fmt;

use crate::ocf::{OcfError, Param, ParamKind, Params, Support};

pub const REGION: Param = Param::new("region", ParamKind::String, "AWS region",
    "The AWS region of the instance (e.g. eu-west-1). When unset: AWS_REGION or AWS_DEFAULT_REGION, then the region of the profile, then the instance metadata service.");
pub const PROFILE: Param = Param::new("profile", ParamKind::String, "AWS credentials profile",
    "A profile of the AWS shared configuration files (~/.aws/config, ~/.aws/credentials of the user running the agent, normally root) to take credentials and region from. When unset, the SDK's default chain is used: environment, AWS_PROFILE or the default profile, web identity, container, then the instance role from the metadata service.");
pub const ENDPOINT_URL: Param = Param::new("endpoint_url", ParamKind::String, "EC2 endpoint URL",
    "The EC2 API endpoint to use instead of the regional one, e.g. a VPC interface endpoint (https://vpce-...ec2.eu-west-1.vpce.amazonaws.com). When unset, AWS_ENDPOINT_URL_EC2 or AWS_ENDPOINT_URL, else the standard regional endpoint.");
pub const INSTANCE_ID: Param = Param::new(
    "instance_id",
    ParamKind::String,
    "EC2 instance id",
    "The id of this node's instance (i-0123456789abcdef0). When unset, it is read from the instance metadata service (IMDSv2).",
);

/// What every AWS resource agent (awsvip, awseip, aws-vpc-move-ip) takes beside its own
/// parameters, defined once: where and as whom to talk to EC2, then the parameters of
/// heartbeat's agents that mean nothing here — accepted (a migrated configuration keeps
/// them), warned about and ignored. An agent's spec lists it after its own table.
pub static COMMON: &[Param] = &[
    REGION,
    PROFILE,
    ENDPOINT_URL,
    INSTANCE_ID,
    Param::new(
        "api_delay",
        ParamKind::Integer,
        "Delay after API calls",
        "Heartbeat sleeps this many seconds after each change; paceline polls EC2 until the change is visible instead.",
    )
    .default("3")
    .support(Support::Ignored),
    Param::new("awscli", ParamKind::String, "Path to the AWS CLI", "Heartbeat runs the AWS CLI; paceline calls the EC2 API itself.")
        .default("/usr/bin/aws")
        .support(Support::Ignored),
    Param::new(
        "auth_type",
        ParamKind::String,
        "Authentication type",
        "Heartbeat's choice between profile keys and the instance role; paceline uses the AWS SDK's credential chain (see profile), which covers both.",
    )
    .support(Support::Ignored),
    Param::new(
        "curl_retries",
        ParamKind::Integer,
        "IMDS retries",
        "Heartbeat's retries of curl to the metadata service; paceline's IMDS client retries on its own within the action's timeout.",
    )
    .support(Support::Ignored),
    Param::new("curl_sleep", ParamKind::Integer, "Pause between IMDS retries", "Heartbeat's pause between curl retries; see curl_retries.")
        .support(Support::Ignored),
    Param::new(
        "awscli_timeout",
        ParamKind::Integer,
        "AWS CLI timeout",
        "Heartbeat's connect timeout for the AWS CLI; paceline derives every timeout from the action's timeout.",
    )
    .support(Support::Ignored),
];

/// A string that must never be printed: `Debug` and `Display` show `****`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value, for the one place that needs it (building credentials).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Where and as whom to talk to EC2. Every field is optional: unset means "discover".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsParams {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub instance_id: Option<String>,
    /// Explicit credentials (the fence agent's access_key/secret_key); both or neither.
    pub access_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// An IAM role to assume (STS AssumeRole) with those credentials for the EC2 calls
    /// (aws-vpc-move-ip's routing_table_role).
    pub assume_role: Option<String>,
}

impl AwsParams {
    /// Where and as whom, from any name -> value lookup: an agent's parsed parameters
    /// ([`AwsParams::from_params`]), a fence request's options, a resource's parameters in
    /// the CIB (`paceline check`). One reading for all three, so that they cannot drift;
    /// a name the source does not have is simply unset. Not checked: see [`AwsParams::validate`].
    pub fn read<'a>(get: impl Fn(&str) -> Option<&'a str>) -> AwsParams {
        let get = |name: &str| get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        AwsParams {
            region: get("region"),
            profile: get("profile"),
            endpoint_url: get("endpoint_url"),
            instance_id: get("instance_id"),
            access_key: get("access_key").map(Secret::new),
            secret_key: get("secret_key").map(Secret::new),
            assume_role: get("routing_table_role"),
        }
    }

    /// Read the parameters an agent's table declares (of `region`, `profile`,
    /// `endpoint_url`, `instance_id`, `routing_table_role`, ...) and check them.
    pub fn from_params(p: &Params) -> Result<AwsParams, OcfError> {
        let a = AwsParams::read(|name| p.declared(name));
        a.validate()?;
        Ok(a)
    }

    /// Syntax checks, no network: `OCF_ERR_CONFIGURED` with the offending parameter named.
    pub fn validate(&self) -> Result<(), OcfError> {
        if let Some(r) = &self.region {
            if !valid_region(r) {
                return Err(OcfError::configured(format!("region '{r}' is not an AWS region name (like eu-west-1)")));
            }
        }
        if let Some(p) = &self.profile {
            if p.chars().any(|c| c.is_whitespace() || c == '[' || c == ']') {
                return Err(OcfError::configured(format!("profile '{p}' is not a valid profile name")));
            }
        }
        if let Some(u) = &self.endpoint_url {
            check_endpoint_url(u)?;
        }
        if let Some(i) = &self.instance_id {
            if !valid_instance_id(i) {
                return Err(OcfError::configured(format!("instance_id '{i}' is not an EC2 instance id (i-0123456789abcdef0)")));
            }
        }
        if let Some(role) = &self.assume_role {
            if !(role.starts_with("arn:") && role.contains(":role/")) {
                return Err(OcfError::configured(format!("routing_table_role '{role}' is not an IAM role ARN (arn:aws:iam::123456789012:role/name)")));
            }
        }
        match (&self.access_key, &self.secret_key) {
            (Some(_), None) => return Err(OcfError::configured("access_key is set but secret_key is not")),
            (None, Some(_)) => return Err(OcfError::configured("secret_key is set but access_key is not")),
            (Some(a), Some(s)) if a.expose().trim().is_empty() || s.expose().trim().is_empty() => {
                return Err(OcfError::configured("access_key and secret_key must not be empty"))
            }
            _ => {}
        }
        Ok(())
    }
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: lower-case letters, digits and dashes.
pub fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !r.starts_with('-')
        && !r.ends_with('-')
        && r.contains('-')
}

/// `i-` followed by 8 or 17 hexadecimal digits (older and current formats).
pub fn valid_instance_id(i: &str) -> bool {
    i.strip_prefix("i-").is_some_and(|h| (h.len() == 8 || h.len() == 17) && h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

/// An EC2 resource id with the given prefix: `eni-0123abcd`, `eipalloc-...` (1 to 17
/// hexadecimal digits after the dash).
pub fn valid_resource_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')).is_some_and(|h| !h.is_empty() && h.len() <= 17 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// An `http://` or `https://` URL with a host, and nothing the URI parser would choke on.
pub fn check_endpoint_url(u: &str) -> Result<(), OcfError> {
    let bad = |why: &str| OcfError::configured(format!("endpoint_url '{u}' {why}"));
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://")).ok_or_else(|| bad("must start with https:// or http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    if authority.contains('@') {
        return Err(bad("must not contain credentials"));
    }
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(bad("has an unterminated IPv6 address")),
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')) {
        return Err(bad("has no valid host"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("has an invalid port"));
        }
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains spaces or control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("AKIAEXAMPLESECRET");
        assert_eq!(format!("{s}"), "****");
        assert!(!format!("{s:?}").contains("EXAMPLE"));
        let p = AwsParams { access_key: Some(s.clone()), secret_key: Some(Secret::new("wJalrXUtnFEMI")), ..Default::default() };
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("AKIA") && !dbg.contains("wJalr"), "{dbg}");
        assert_eq!(s.expose(), "AKIAEXAMPLESECRET");
    }

    #[test]
    fn syntax() {
        for r in ["eu-west-1", "us-gov-west-1", "cn-north-1", "us-east-1"] {
            assert!(valid_region(r), "{r}");
        }
        for r in ["", "EU-WEST-1", "eu west 1", "euwest", "-eu-west", "eu-west-1/"] {
            assert!(!valid_region(r), "{r}");
        }
        for i in ["i-0123456789abcdef0", "i-12345678"] {
            assert!(valid_instance_id(i), "{i}");
        }
        for i in ["", "i-", "0123456789abcdef0", "i-0123456789ABCDEF0", "i-xyz", "i-0123456789abcdef"] {
            assert!(!valid_instance_id(i), "{i}");
        }
        for u in ["https://ec2.eu-west-1.amazonaws.com", "http://127.0.0.1:5000", "http://[::1]:5000/", "https://vpce-1.ec2.eu-west-1.vpce.amazonaws.com/"] {
            assert!(check_endpoint_url(u).is_ok(), "{u}");
        }
        for u in [
            "",
            "ec2.amazonaws.com",
            "ftp://x",
            "http://",
            "http://:80",
            "http://host:99999",
            "http://host:0",
            "http://a b",
            "http://user:pw@host",
            "http://[::1",
        ] {
            assert!(check_endpoint_url(u).is_err(), "{u}");
        }
    }

    #[test]
    fn keys_come_in_pairs() {
        let only_access = AwsParams { access_key: Some(Secret::new("a")), ..Default::default() };
        assert!(only_access.validate().is_err());
        let both = AwsParams { access_key: Some(Secret::new("a")), secret_key: Some(Secret::new("b")), ..Default::default() };
        assert!(both.validate().is_ok());
        let empty = AwsParams { access_key: Some(Secret::new(" ")), secret_key: Some(Secret::new("b")), ..Default::default() };
        assert!(empty.validate().is_err());
    }
}

#[cfg(test)]
mod resource_id_tests {
    #[test]
    fn resource_ids() {
        assert!(super::valid_resource_id("eni", "eni-0123abcd"));
        assert!(super::valid_resource_id("eipalloc", "eipalloc-0123456789abcdef0"));
        for bad in ["eni-", "eni0123", "eni-xyz", "eni-0123456789abcdef01", "vpc-0123", ""] {
            assert!(!super::valid_resource_id("eni", bad), "{bad}");
        }
    }
}
