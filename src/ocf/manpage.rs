//! An agent's man page, `ocf_paceline_<agent>(7)`, from the same tables as its meta-data.
//!
//! Why generated: the page must say exactly what `pcs resource describe` says — the
//! parameters, their defaults and flags, the actions and their advertised timeouts — so it
//! is written from the [`AgentSpec`] that writes the meta-data, never by hand. resource-
//! agents names its pages the same way (`man ocf_heartbeat_IPaddr2`).

use super::metadata::AgentSpec;
use super::params::Support;

/// Text made safe for roff: backslashes, hyphens (so they stay hyphens) and a leading dot.
pub fn escape(s: &str) -> String {
    let s = s.replace('\\', "\\\\").replace('-', "\\-");
    let s = s.replace("\n.", "\n\\&.").replace("\n'", "\n\\&'");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// What the OCF exit codes mean for every agent (the OCF resource agent API).
const EXIT_CODES: &[(u8, &str, &str)] = &[
    (0, "OCF_SUCCESS", "the action succeeded; for monitor: running (as a standby, for a promotable agent)"),
    (1, "OCF_ERR_GENERIC", "the action failed; Pacemaker recovers the resource"),
    (2, "OCF_ERR_ARGS", "the agent was called wrongly"),
    (3, "OCF_ERR_UNIMPLEMENTED", "the action is not implemented"),
    (5, "OCF_ERR_INSTALLED", "something the agent needs is missing on this node; Pacemaker avoids the node"),
    (6, "OCF_ERR_CONFIGURED", "the configuration is wrong; Pacemaker stops the resource everywhere"),
    (7, "OCF_NOT_RUNNING", "monitor: cleanly stopped"),
    (8, "OCF_RUNNING_PROMOTED", "monitor: running as the primary (promotable agents)"),
    (9, "OCF_FAILED_PROMOTED", "monitor: the primary has failed (promotable agents)"),
];

impl AgentSpec {
    /// The man(7) page of `ocf:paceline:<name>`.
    pub fn manpage(&self) -> String {
        let e = escape;
        let page = format!("ocf_paceline_{}", self.name);
        let mut m = format!(
            ".TH {} 7 \"\" \"paceline {}\" \"OCF resource agents\"\n.SH NAME\n{} \\- {}\n",
            e(&page.to_uppercase()),
            env!("CARGO_PKG_VERSION"),
            e(&page),
            e(self.shortdesc)
        );
        let required: Vec<String> = self.all_params().filter(|p| p.required).map(|p| format!("{}=\\fIvalue\\fP", e(p.name))).collect();
        m += &format!(
            ".SH SYNOPSIS\n.B pcs resource create\n\\fIname\\fP \\fBocf:paceline:{}\\fP {}[\\fIparameter\\fP=\\fIvalue\\fP ...]\n",
            e(self.name),
            required.iter().map(|r| format!("{r} ")).collect::<String>()
        );
        m += &format!(
            ".SH DESCRIPTION\n{}\n.P\nThe same text, with the values Pacemaker uses: \\fBpcs resource describe ocf:paceline:{}\\fP.\n",
            e(self.longdesc),
            e(self.name)
        );
        m += ".SH SUPPORTED PARAMETERS\n";
        for p in self.all_params() {
            let mut flags = vec![p.kind.ocf_name().to_owned()];
            if let Some(d) = p.default {
                flags.push(format!("default: {}", if d.is_empty() { "empty".to_owned() } else { d.to_owned() }));
            }
            if p.required {
                flags.push("required".into());
            }
            if p.unique {
                flags.push("unique".into());
            }
            if p.reloadable {
                flags.push("reloadable".into());
            }
            match p.support {
                Support::Full => {}
                Support::Ignored => flags.push("accepted for compatibility, ignored".into()),
                Support::DefaultOnly => flags.push("only the default is accepted".into()),
            }
            m += &format!(".TP\n.B {}\n{}\n.br\n({})\n", e(p.name), e(p.longdesc), e(&flags.join(", ")));
        }
        m += ".SH SUPPORTED ACTIONS\n";
        for a in self.actions {
            let mut what = vec![format!("timeout {} s", a.timeout_s)];
            if let Some(i) = a.interval_s {
                what.push(format!("interval {i} s"));
            }
            if let Some(r) = a.role {
                what.push(format!("role {r}"));
            }
            m += &format!(".TP\n.B {}\n{}\n", e(a.name), e(&what.join(", ")));
        }
        m += ".SH EXIT STATUS\n";
        for (code, name, what) in EXIT_CODES {
            m += &format!(".TP\n.B {code}\n{} \\- {}\n", e(name), e(what));
        }
        m += &format!(
            ".SH EXAMPLE\nRun one action by hand, as Pacemaker would, with its log on the terminal:\n.P\n.B crm_resource \\-\\-force\\-check \\-r\n\\fIname\\fP \\fB\\-V\\fP\n.SH SEE ALSO\n\\fBpaceline\\fP(8), \\fBpcs\\fP(8), \\fBcrm_resource\\fP(8), /usr/share/doc/paceline/{}.md\n",
            e(self.name)
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_roff_from_reading_requests() {
        assert_eq!(escape(".x -y"), "\\&.x \\-y");
    }
}
