//! What a fence agent says about itself: metadata XML, `-h`, the manpage, the docs table.
//!
//! The metadata is the contract with the cluster tools. Pacemaker's fencer runs
//! `action=metadata`, looks for a `plug` parameter (then it passes the target as `plug=`),
//! and for the `list`, `status` and `reboot` actions (which decide how it checks what a
//! device can fence); `stonith_admin --metadata` and pcs show the document and pcs checks
//! option names against it. The shape is fence-agents' own schema,
//! `/usr/share/cluster/relaxng/metadata.rng` — not the OCF resource-agent schema: a
//! `getopt` element per parameter, no per-parameter `longdesc` (so the metadata's
//! `shortdesc` carries the full text, as fence-agents does), no action timeouts.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::options::{FenceOpt, OptSupport};
use super::{FenceSpec, ACTIONS};

fn text(s: &str) -> BytesText<'_> {
    BytesText::from_escaped(quick_xml::escape::partial_escape(s))
}

/// The text an option shows in the metadata and the manpage.
fn full_desc(o: &FenceOpt) -> String {
    match o.support {
        OptSupport::Full => o.longdesc.to_owned(),
        OptSupport::Ignored => format!("{} Accepted for compatibility with fence-agents, and ignored (a warning is logged).", o.longdesc),
    }
}

impl FenceSpec {
    /// The metadata document (valid against fence-agents' `metadata.rng`).
    pub fn metadata_xml(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing into a Vec cannot fail.
        let _ = self.write_metadata(&mut w);
        let mut xml = String::from_utf8(w.into_inner()).unwrap_or_default();
        xml.push('\n');
        xml
    }

    fn write_metadata(&self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
        w.create_element("resource-agent").with_attribute(("name", self.name)).with_attribute(("shortdesc", self.shortdesc)).write_inner_content(|w| {
            w.create_element("longdesc").write_text_content(text(self.longdesc))?;
            w.create_element("vendor-url").write_text_content(text(self.vendor_url))?;
            w.create_element("parameters").write_inner_content(|w| {
                for o in self.options() {
                    let mut e =
                        w.create_element("parameter").with_attribute(("name", o.name)).with_attribute(("unique", "0")).with_attribute(("required", "0"));
                    if o.alias_of.is_some() {
                        e = e.with_attribute(("deprecated", "1"));
                    } else if let Some(old) = self.options().into_iter().find(|a| a.alias_of == Some(o.name)) {
                        e = e.with_attribute(("obsoletes", old.name));
                    }
                    e.write_inner_content(|w| {
                        w.create_element("getopt").with_attribute(("mixed", o.getopt().as_str())).write_empty()?;
                        let mut c = w.create_element("content").with_attribute(("type", o.kind.name()));
                        if let Some(d) = o.default {
                            c = c.with_attribute(("default", d));
                        }
                        c.write_empty()?;
                        w.create_element("shortdesc").with_attribute(("lang", "en")).write_text_content(text(&full_desc(o)))?;
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            w.create_element("actions").write_inner_content(|w| {
                for a in ACTIONS {
                    let mut e = w.create_element("action").with_attribute(("name", a.name));
                    if a.name == "on" {
                        // Pacemaker must not power a node on by itself ("unfencing").
                        e = e.with_attribute(("automatic", "0"));
                    }
                    e.write_empty()?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    }

    /// The `-h` text.
    pub fn usage(&self) -> String {
        let mut out = format!("Usage:\n\t{} [options]\n\t(or name=value lines on stdin, as Pacemaker's fencer passes them)\nOptions:\n", self.name);
        for o in self.options().into_iter().filter(|o| o.alias_of.is_none()) {
            let left = o.getopt();
            out.push_str(&format!("   {left:<34} {}\n", o.shortdesc));
        }
        out.push_str("Actions (-o): ");
        out.push_str(&ACTIONS.iter().map(|a| a.name).collect::<Vec<_>>().join(", "));
        out.push('\n');
        out
    }

    /// The `manpage` action: a man(7) page.
    pub fn manpage(&self) -> String {
        let esc = crate::ocf::manpage::escape;
        let mut m = format!(
            ".TH {} 8 \"\" \"paceline {}\" \"System Administration\"\n.SH NAME\n{} \\- {}\n.SH DESCRIPTION\n{}\n.P\nVendor URL: {}\n",
            self.name.to_uppercase(),
            env!("CARGO_PKG_VERSION"),
            esc(self.name),
            esc(self.shortdesc),
            esc(self.longdesc),
            self.vendor_url
        );
        m.push_str(".SH PARAMETERS\n");
        for o in self.options().into_iter().filter(|o| o.alias_of.is_none()) {
            m.push_str(&format!(".TP\n.B {}\n{}", esc(&o.getopt()), esc(&full_desc(o))));
            if let Some(d) = o.default {
                m.push_str(&format!(" (Default Value: {})", esc(d)));
            }
            m.push('\n');
        }
        m.push_str(".SH ACTIONS\n");
        for a in ACTIONS {
            m.push_str(&format!(".TP\n\\fB{}\\fP\n{}\n", esc(a.name), esc(a.desc)));
        }
        m.push_str(".SH STDIN PARAMETERS\nWithout arguments the agent reads name=value lines on stdin (the names below); this is how Pacemaker runs it, and the safe way to pass a secret.\n");
        for o in self.options() {
            m.push_str(&format!(".TP\n.B {}\n{}\n", esc(o.name), esc(o.shortdesc)));
        }
        m
    }

    /// The options table of `docs/<agent>.md`.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| name | command line | type | default | support | description |\n|---|---|---|---|---|---|\n");
        for o in self.options() {
            let support = match (o.alias_of, o.support) {
                (Some(a), _) => format!("old name of `{a}`"),
                (None, OptSupport::Full) => "yes".into(),
                (None, OptSupport::Ignored) => "ignored (warning)".into(),
            };
            let desc = if o.secret { format!("{} (secret: never echoed or logged)", o.shortdesc) } else { o.shortdesc.to_owned() };
            out.push_str(&format!(
                "| `{}` | `{}` | {} | {} | {} | {} |\n",
                o.name,
                o.getopt().replace('|', "\\|"),
                o.kind.name(),
                o.default.map(|d| format!("`{d}`")).unwrap_or_default(),
                support,
                desc
            ));
        }
        out
    }
}
