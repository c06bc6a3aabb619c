//! The `meta-data` action: the agent describing itself to Pacemaker and pcs.
//!
//! Pacemaker reads the advertised actions and their default timeouts; pcs checks parameter
//! names against this document on `pcs resource create` and shows it on
//! `pcs resource describe`. The document is produced with quick-xml from the agent's
//! [`AgentSpec`] — the same parameter table the agent parses its configuration with — and
//! stays within the OCF 1.1 document Pacemaker reads. The schemas shipped with
//! resource-agents (the RelaxNG `metadata.rng`, and the `ra-api-1.dtd` that `ocf-tester`
//! validates against) predate OCF 1.1: they know neither the `reloadable` attribute nor the
//! `reload-agent` action. Pacemaker (2.1) uses both — for an agent that says OCF 1.1 it
//! ignores the legacy `reload` and reloads only for parameters marked reloadable — so an
//! agent with reloadable parameters writes them, as Pacemaker's own `ocf:pacemaker:remote`
//! does, and fails that old DTD the same way; every other agent stays valid against it.
//! `unique-group` is kept in the table and the documentation only.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::Param;

/// One advertised action with its default timeout (and interval/depth/role for monitors).
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    pub name: &'static str,
    pub timeout_s: u32,
    pub interval_s: Option<u32>,
    pub depth: Option<u32>,
    /// `Promoted` / `Unpromoted` for role-specific monitors of promotable agents.
    pub role: Option<&'static str>,
}

impl ActionSpec {
    pub const fn new(name: &'static str, timeout_s: u32) -> Self {
        ActionSpec { name, timeout_s, interval_s: None, depth: None, role: None }
    }
    pub const fn interval(mut self, s: u32) -> Self {
        self.interval_s = Some(s);
        self
    }
    pub const fn depth(mut self, d: u32) -> Self {
        self.depth = Some(d);
        self
    }
    pub const fn role(mut self, r: &'static str) -> Self {
        self.role = Some(r);
        self
    }
}

/// Everything an agent says about itself.
#[derive(Debug, Clone, Copy)]
pub struct AgentSpec {
    /// The agent's file name (`IPaddr2`), also the log tag.
    pub name: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    /// The parameter tables, in order: an agent's own, and groups shared with other agents
    /// (defined once, like the fence side's option groups).
    pub params: &'static [&'static [Param]],
    pub actions: &'static [ActionSpec],
}

impl AgentSpec {
    /// Every parameter of every table, in meta-data order.
    pub fn all_params(&self) -> impl Iterator<Item = &'static Param> {
        self.params.iter().flat_map(|t| t.iter())
    }

    /// The documentation's parameter table.
    pub fn markdown_table(&self) -> String {
        crate::ocf::params::markdown_table(&self.all_params().copied().collect::<Vec<_>>())
    }

    /// The OCF 1.1 meta-data document.
    pub fn metadata_xml(&self) -> String {
        // Writing into a Vec cannot fail; the error type is io::Error only because Writer is generic.
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        let _ = self.write(&mut w);
        let mut xml = String::from_utf8(w.into_inner()).unwrap_or_default();
        xml.push('\n');
        xml
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
        w.write_event(Event::DocType(BytesText::from_escaped(r#"resource-agent SYSTEM "ra-api-1.dtd""#)))?;
        w.create_element("resource-agent").with_attribute(("name", self.name)).with_attribute(("version", env!("CARGO_PKG_VERSION"))).write_inner_content(
            |w| {
                w.create_element("version").write_text_content(BytesText::new("1.1"))?;
                w.create_element("longdesc").with_attribute(("lang", "en")).write_text_content(text(self.longdesc))?;
                w.create_element("shortdesc").with_attribute(("lang", "en")).write_text_content(text(self.shortdesc))?;
                w.create_element("parameters").write_inner_content(|w| {
                    for p in self.all_params() {
                        write_param(w, p)?;
                    }
                    Ok(())
                })?;
                w.create_element("actions").write_inner_content(|w| {
                    for a in self.actions {
                        let mut e = w.create_element("action").with_attribute(("name", a.name));
                        let timeout = format!("{}s", a.timeout_s);
                        e = e.with_attribute(("timeout", timeout.as_str()));
                        let interval = a.interval_s.map(|i| format!("{i}s"));
                        if let Some(i) = &interval {
                            e = e.with_attribute(("interval", i.as_str()));
                        }
                        let depth = a.depth.map(|d| d.to_string());
                        if let Some(d) = &depth {
                            e = e.with_attribute(("depth", d.as_str()));
                        }
                        if let Some(r) = a.role {
                            e = e.with_attribute(("role", r));
                        }
                        e.write_empty()?;
                    }
                    Ok(())
                })?;
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Whether the agent advertises `action`.
    pub fn advertises(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a.name == action)
    }
}

/// Text content escaped only where XML requires it (quotes stay readable).
fn text(s: &str) -> BytesText<'_> {
    BytesText::from_escaped(quick_xml::escape::partial_escape(s))
}

fn write_param(w: &mut Writer<Vec<u8>>, p: &Param) -> std::io::Result<()> {
    let bit = |b: bool| if b { "1" } else { "0" };
    let mut e =
        w.create_element("parameter").with_attribute(("name", p.name)).with_attribute(("unique", bit(p.unique))).with_attribute(("required", bit(p.required)));
    if p.reloadable {
        e = e.with_attribute(("reloadable", "1"));
    }
    e.write_inner_content(|w| {
        let longdesc = match p.support {
            super::Support::Full => p.longdesc.to_owned(),
            super::Support::Ignored => format!("{} Accepted for compatibility with the agent paceline replaces, and ignored (a warning is logged).", p.longdesc),
            super::Support::DefaultOnly => format!("{} Accepted for compatibility with the agent paceline replaces; only the default value is supported, any other is refused (OCF_ERR_CONFIGURED).", p.longdesc),
        };
        w.create_element("longdesc").with_attribute(("lang", "en")).write_text_content(text(&longdesc))?;
        w.create_element("shortdesc").with_attribute(("lang", "en")).write_text_content(text(p.shortdesc))?;
        let mut c = w.create_element("content").with_attribute(("type", p.kind.ocf_name()));
        if let Some(d) = p.default {
            c = c.with_attribute(("default", d));
        }
        c.write_empty()?;
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::{ParamKind, Support};

    static SPEC: AgentSpec = AgentSpec {
        name: "Test",
        shortdesc: "A test agent",
        longdesc: "Escapes <this> & that.",
        params: &[&[
            Param::new("ip", ParamKind::String, "IP", "The address.").required().unique(),
            Param::new("n", ParamKind::Integer, "n", "N.").default("5").support(Support::Ignored).reloadable(),
        ]],
        actions: &[ActionSpec::new("start", 20), ActionSpec::new("monitor", 20).interval(10).depth(0)],
    };

    #[test]
    fn document_shape() {
        let xml = SPEC.metadata_xml();
        assert!(xml.starts_with("<?xml version=\"1.0\"?>"), "{xml}");
        assert!(xml.contains("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">"));
        assert!(xml.contains("<resource-agent name=\"Test\""));
        assert!(xml.contains("<version>1.1</version>"));
        assert!(xml.contains("Escapes &lt;this&gt; &amp; that."));
        assert!(xml.contains("<parameter name=\"ip\" unique=\"1\" required=\"1\">"));
        assert!(xml.contains("<parameter name=\"n\" unique=\"0\" required=\"0\" reloadable=\"1\">"));
        assert!(xml.contains("<content type=\"integer\" default=\"5\"/>"));
        assert!(xml.contains("ignored (a warning is logged)"));
        assert!(xml.contains("<action name=\"monitor\" timeout=\"20s\" interval=\"10s\" depth=\"0\"/>"));
        assert!(SPEC.advertises("start") && !SPEC.advertises("promote"));
    }
}
