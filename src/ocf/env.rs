//! What Pacemaker tells an agent about the action it runs.
//!
//! Pacemaker passes everything through the environment: the resource parameters as
//! `OCF_RESKEY_<name>`, its own bookkeeping as `OCF_RESKEY_CRM_meta_<name>` (interval,
//! timeout, clone and notify variables), and `OCF_CHECK_LEVEL` for monitor depth. The
//! environment is read once, into an [`OcfEnv`], so that the rest of an agent works on plain
//! values and tests can build one from a list of pairs instead of touching the process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `$HA_RSCTMP`: where agents keep what they remember between actions on this node (a
/// tmpfs that a reboot empties; shared by every agent here).
pub fn rsc_tmp() -> PathBuf {
    PathBuf::from(std::env::var("HA_RSCTMP").unwrap_or_else(|_| "/run/resource-agents".into()))
}

/// The environment of one agent invocation.
#[derive(Debug, Clone, Default)]
pub struct OcfEnv {
    vars: BTreeMap<String, String>,
}

/// The notify variables of a clone notification (`OCF_RESKEY_CRM_meta_notify_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// `pre` or `post`.
    pub kind: String,
    /// `start`, `stop`, `promote` or `demote`.
    pub operation: String,
    pub start_uname: Vec<String>,
    pub stop_uname: Vec<String>,
    pub promote_uname: Vec<String>,
    pub demote_uname: Vec<String>,
    pub active_uname: Vec<String>,
    pub inactive_uname: Vec<String>,
    pub promoted_uname: Vec<String>,
    pub unpromoted_uname: Vec<String>,
}

impl OcfEnv {
    /// The environment of this process.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    /// An environment made of the given pairs (tests, tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        OcfEnv { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// A raw environment variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// `OCF_RESKEY_<name>`, as Pacemaker passed it (empty values count as unset).
    pub fn reskey(&self, name: &str) -> Option<&str> {
        self.var(&format!("OCF_RESKEY_{name}")).filter(|v| !v.is_empty())
    }

    /// Every `OCF_RESKEY_<name>` that is not a `CRM_meta_*` variable.
    pub fn reskeys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().filter_map(|(k, v)| {
            let name = k.strip_prefix("OCF_RESKEY_")?;
            (!name.starts_with("CRM_meta_")).then_some((name, v.as_str()))
        })
    }

    /// `OCF_RESKEY_CRM_meta_<name>`.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.var(&format!("OCF_RESKEY_CRM_meta_{name}")).filter(|v| !v.is_empty())
    }

    fn meta_u64(&self, name: &str) -> Option<u64> {
        self.meta(name).and_then(|v| v.trim().parse().ok())
    }

    /// The resource's name in the CIB (`OCF_RESOURCE_INSTANCE`), or "default".
    pub fn instance(&self) -> &str {
        self.var("OCF_RESOURCE_INSTANCE").filter(|v| !v.is_empty()).unwrap_or("default")
    }

    /// The operation's interval: zero for one-shot actions and probes.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.meta_u64("interval").unwrap_or(0))
    }

    /// The action's timeout as Pacemaker enforces it, if Pacemaker passed one.
    pub fn timeout(&self) -> Option<Duration> {
        self.meta_u64("timeout").filter(|ms| *ms > 0).map(Duration::from_millis)
    }

    /// The timeout to plan with: Pacemaker's, or `default` when run by hand.
    pub fn timeout_or(&self, default: Duration) -> Duration {
        self.timeout().unwrap_or(default)
    }

    /// `OCF_CHECK_LEVEL` (monitor depth), 0 when unset or garbage.
    pub fn check_level(&self) -> u32 {
        self.var("OCF_CHECK_LEVEL").and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    /// A monitor with interval 0 is a probe: Pacemaker asks "is it running here?" and
    /// expects 7 rather than an error when the answer is simply "no".
    pub fn is_probe(&self, action: &str) -> bool {
        action == "monitor" && self.interval().is_zero()
    }

    /// `clone-max`, when the resource is a clone.
    pub fn clone_max(&self) -> Option<u64> {
        self.meta_u64("clone_max")
    }

    /// `clone-node-max`, when the resource is a clone.
    pub fn clone_node_max(&self) -> Option<u64> {
        self.meta_u64("clone_node_max")
    }

    /// A boolean meta attribute: true only when set to a true value.
    fn meta_bool(&self, name: &str) -> bool {
        self.meta(name).and_then(crate::ocf::params::parse_bool).unwrap_or(false)
    }

    /// Whether the clone is globally unique.
    pub fn globally_unique(&self) -> bool {
        self.meta_bool("globally_unique")
    }

    /// `notify` meta attribute of the clone (passed to notify-enabled clones).
    pub fn notify_enabled(&self) -> bool {
        self.meta_bool("notify")
    }

    /// The local node name as Pacemaker sees it (`OCF_RESKEY_CRM_meta_on_node`).
    pub fn on_node(&self) -> Option<&str> {
        self.meta("on_node")
    }

    /// The notify variables, for the `notify` action.
    pub fn notify(&self) -> Notify {
        let list =
            |name: &str| -> Vec<String> { self.meta(&format!("notify_{name}")).map(|v| v.split_whitespace().map(str::to_owned).collect()).unwrap_or_default() };
        // Pacemaker 2.1 passes both the old (master/slave) and new (promoted/unpromoted) names.
        let either = |new: &str, old: &str| -> Vec<String> {
            let v = list(new);
            if v.is_empty() {
                list(old)
            } else {
                v
            }
        };
        Notify {
            kind: self.meta("notify_type").unwrap_or("").to_owned(),
            operation: self.meta("notify_operation").unwrap_or("").to_owned(),
            start_uname: list("start_uname"),
            stop_uname: list("stop_uname"),
            promote_uname: list("promote_uname"),
            demote_uname: list("demote_uname"),
            active_uname: list("active_uname"),
            inactive_uname: list("inactive_uname"),
            promoted_uname: either("promoted_uname", "master_uname"),
            unpromoted_uname: either("unpromoted_uname", "slave_uname"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_variables() {
        let env = OcfEnv::from_pairs([
            ("OCF_RESOURCE_INSTANCE", "vip"),
            ("OCF_RESKEY_ip", "192.0.2.5"),
            ("OCF_RESKEY_CRM_meta_interval", "10000"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
            ("OCF_RESKEY_CRM_meta_clone_max", "3"),
            ("OCF_CHECK_LEVEL", "10"),
        ]);
        assert_eq!(env.instance(), "vip");
        assert_eq!(env.interval(), Duration::from_secs(10));
        assert_eq!(env.timeout(), Some(Duration::from_secs(20)));
        assert_eq!(env.check_level(), 10);
        assert_eq!(env.clone_max(), Some(3));
        assert!(!env.is_probe("monitor"));
        let keys: Vec<_> = env.reskeys().collect();
        assert_eq!(keys, vec![("ip", "192.0.2.5")]);
    }

    #[test]
    fn garbage_meta_is_ignored() {
        let env = OcfEnv::from_pairs([("OCF_RESKEY_CRM_meta_interval", "soon"), ("OCF_CHECK_LEVEL", "deep")]);
        assert!(env.is_probe("monitor"));
        assert_eq!(env.check_level(), 0);
        assert_eq!(env.timeout(), None);
        assert_eq!(env.instance(), "default");
    }

    #[test]
    fn notify_lists_accept_old_and_new_role_names() {
        let env = OcfEnv::from_pairs([
            ("OCF_RESKEY_CRM_meta_notify_type", "pre"),
            ("OCF_RESKEY_CRM_meta_notify_operation", "promote"),
            ("OCF_RESKEY_CRM_meta_notify_promote_uname", "node2 "),
            ("OCF_RESKEY_CRM_meta_notify_master_uname", "node1"),
            ("OCF_RESKEY_CRM_meta_notify_unpromoted_uname", "node2 node3"),
            ("OCF_RESKEY_CRM_meta_notify_slave_uname", "ignored"),
        ]);
        let n = env.notify();
        assert_eq!(n.kind, "pre");
        assert_eq!(n.operation, "promote");
        assert_eq!(n.promote_uname, vec!["node2"]);
        assert_eq!(n.promoted_uname, vec!["node1"]);
        assert_eq!(n.unpromoted_uname, vec!["node2", "node3"]);
    }
}
