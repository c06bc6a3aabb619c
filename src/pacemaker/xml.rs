//! The XML that Pacemaker's tools print, read into a small element tree.
//!
//! Pacemaker's answers are small (a CIB section, a `pacemaker-result`), so a tree is
//! cheaper to reason about than a streaming parser in every caller. Malformed input gives
//! the elements read so far: a tool that printed half an answer is treated as having said
//! less, never as a panic.

use quick_xml::events::{BytesStart, Event};

/// One element: its name, attributes in document order, text content and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every element named `name` at any depth below (and including) this one, in
    /// document order.
    pub fn descendants<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            while let Some(e) = stack.pop() {
                stack.extend(e.children.iter().rev());
                if e.name == name {
                    return Some(e);
                }
            }
            None
        })
    }
}

/// The deepest nesting read: Pacemaker's documents are a dozen levels deep, and a tree
/// much deeper would overflow the stack when dropped or walked recursively.
pub const MAX_DEPTH: usize = 256;

/// An element from its start tag; `None` when an attribute is malformed (no value, a
/// duplicate, an unknown entity): a value is never made up, such as "" for `&bogus;`.
fn start(e: &BytesStart) -> Option<Element> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.ok()?;
        attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), a.unescape_value().ok()?.into_owned()));
    }
    Some(Element { name: String::from_utf8_lossy(e.name().as_ref()).into_owned(), attrs, ..Element::default() })
}

/// Parse `xml` into a synthetic root (named "") whose children are the document's
/// top-level elements. Reading stops at the first fault — bad syntax, a malformed
/// attribute or text, nesting deeper than [`MAX_DEPTH`] — keeping what came before it.
pub fn parse(xml: &str) -> Element {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Element::default()];
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if stack.len() <= MAX_DEPTH => match start(&e) {
                Some(el) => stack.push(el),
                None => break,
            },
            Ok(Event::Empty(e)) => match (start(&e), stack.last_mut()) {
                (Some(el), Some(top)) => top.children.push(el),
                _ => break,
            },
            Ok(Event::Text(t)) => match (stack.last_mut(), t.unescape()) {
                (Some(top), Ok(text)) => top.text.push_str(text.trim()),
                _ => break,
            },
            Ok(Event::End(_)) if stack.len() > 1 => {
                if let Some(done) = stack.pop() {
                    if let Some(top) = stack.last_mut() {
                        top.children.push(done);
                    }
                }
            }
            Ok(Event::Eof | Event::Start(_)) | Err(_) => break,
            _ => {}
        }
    }
    // An unterminated document: keep what was opened, innermost last.
    while stack.len() > 1 {
        if let Some(done) = stack.pop() {
            if let Some(top) = stack.last_mut() {
                top.children.push(done);
            }
        }
    }
    stack.pop().unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn tree_attributes_text_and_descendants() {
        let root = parse(r#"<?xml version="1.0"?><a x="1"><b y="&amp;2">t</b><c><b y="3"/></c></a>"#);
        let a = &root.children[0];
        assert_eq!((a.name.as_str(), a.attr("x")), ("a", Some("1")));
        let bs: Vec<_> = root.descendants("b").map(|b| (b.attr("y").unwrap_or(""), b.text.as_str())).collect();
        assert_eq!(bs, vec![("&2", "t"), ("3", "")]);
        assert_eq!(a.attr("nope"), None);
    }

    #[test]
    fn garbage_is_less_not_a_panic() {
        for bad in ["", "<", "<a", "<a><b>", "</a>", "<a x=>", "\u{0}\u{1}<<>>", "<a></b>"] {
            let _ = parse(bad);
        }
        assert_eq!(parse("<a><b x=\"1\"/>").descendants("b").count(), 1);
    }

    #[test]
    fn a_malformed_attribute_ends_the_reading() {
        // Found by `an_attribute_value_round_trips_or_is_refused`: an unknown entity read
        // as the value "" (an attribute that says nothing), and the document went on.
        let root = parse(r#"<r><a v="1"/><a v="&bogus;"/><a v="3"/></r>"#);
        let vs: Vec<_> = root.descendants("a").map(|a| a.attr("v")).collect();
        assert_eq!(vs, vec![Some("1")]);
        assert_eq!(parse(r#"<r><a v="1" v="2"/></r>"#).descendants("a").count(), 0);
        assert_eq!(parse(r#"<r>x &bogus; y<a/></r>"#).descendants("a").count(), 0);
    }

    #[test]
    fn deep_nesting_is_cut_not_a_stack_overflow() {
        let deep = "<a>".repeat(100_000);
        let root = parse(&deep);
        assert_eq!(root.descendants("a").count(), MAX_DEPTH);
        drop(root);
        let closed = format!("{}{}", "<a>".repeat(MAX_DEPTH + 10), "</a>".repeat(MAX_DEPTH + 10));
        assert_eq!(parse(&closed).descendants("a").count(), MAX_DEPTH);
    }

    pub(crate) mod prop {
        use super::super::*;
        use proptest::prelude::*;

        /// `v` as an attribute value: the five markup characters and every control
        /// character as references, as libxml2 writes them.
        pub fn escape(v: &str) -> String {
            v.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_owned(),
                    '<' => "&lt;".to_owned(),
                    '>' => "&gt;".to_owned(),
                    '"' => "&quot;".to_owned(),
                    '\'' => "&apos;".to_owned(),
                    c if c.is_control() => format!("&#{};", c as u32),
                    c => c.to_string(),
                })
                .collect()
        }

        proptest! {
            /// Arbitrary text: a (possibly empty) tree, never a panic.
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                let _ = parse(&text);
            }

            /// Text made of XML's own pieces, closer to real faults than random characters.
            #[test]
            fn any_markup_never_panics(parts in prop::collection::vec(prop_oneof![
                Just("<a".to_owned()), Just(">".to_owned()), Just("</a>".to_owned()), Just("/>".to_owned()), Just(" x=\"".to_owned()),
                Just("\"".to_owned()), Just("&amp;".to_owned()), Just("&#".to_owned()), Just(";".to_owned()), Just("<!--".to_owned()),
                Just("-->".to_owned()), Just("<![CDATA[".to_owned()), Just("]]>".to_owned()), Just("<?xml".to_owned()), Just("?>".to_owned()), ".{0,3}"], 0..40)) {
                let _ = parse(&parts.concat());
            }

            /// Any attribute value, written as Pacemaker's tools write it, reads back as
            /// itself, or the element is refused (a code point XML cannot carry): never
            /// another value.
            #[test]
            fn an_attribute_value_round_trips_or_is_refused(value in any::<String>()) {
                let root = parse(&format!("<r><a v=\"{}\"/><b/></r>", escape(&value)));
                let a = root.descendants("a").next().map(|a| a.attr("v"));
                match a {
                    Some(v) => prop_assert_eq!(v, Some(value.as_str())),
                    None => prop_assert_eq!(root.descendants("b").count(), 0),
                }
            }

            /// A raw value (no escaping) is read as written when it holds no markup
            /// character, and is otherwise refused or read as its entities say.
            #[test]
            fn a_raw_attribute_value_is_what_it_says_or_refused(value in "[^\"<&]{0,20}|[a-z&#;0-9<>'x]{0,12}") {
                let root = parse(&format!("<r><a v=\"{value}\"/></r>"));
                let v = root.descendants("a").next().and_then(|a| a.attr("v")).map(str::to_owned);
                if let (Some(v), false) = (v, value.contains('&')) {
                    prop_assert_eq!(v, value);
                }
            }
        }
    }
}
