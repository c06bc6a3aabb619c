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

fn start(e: &BytesStart) -> Element {
    let attrs = e
        .attributes()
        .flatten()
        .map(|a| (String::from_utf8_lossy(a.key.as_ref()).into_owned(), a.unescape_value().map(|v| v.into_owned()).unwrap_or_default()))
        .collect();
    Element { name: String::from_utf8_lossy(e.name().as_ref()).into_owned(), attrs, ..Element::default() }
}

/// Parse `xml` into a synthetic root (named "") whose children are the document's
/// top-level elements.
pub fn parse(xml: &str) -> Element {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Element::default()];
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => stack.push(start(&e)),
            Ok(Event::Empty(e)) => {
                let el = start(&e);
                if let Some(top) = stack.last_mut() {
                    top.children.push(el);
                }
            }
            Ok(Event::Text(t)) => {
                if let (Some(top), Ok(text)) = (stack.last_mut(), t.unescape()) {
                    top.text.push_str(text.trim());
                }
            }
            Ok(Event::End(_)) if stack.len() > 1 => {
                if let Some(done) = stack.pop() {
                    if let Some(top) = stack.last_mut() {
                        top.children.push(done);
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
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
mod tests {
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
}
