//! Constraints as Pacemaker applies them, for `paceline check`'s rules on addresses.
//!
//! Why: a rule that only reads `rsc="<address>"` calls a valid configuration broken. Many
//! clusters put their addresses in a group and constrain the group (a group's members are
//! placed with it and started in its order), or write resource sets (`pcs constraint
//! colocation set`, `order set`). A go-live gate that cries wolf on those is switched off,
//! and then it guards nothing. So an address counts as constrained when the constraint
//! names it or its group, in the plain form or through sets, with the semantics the
//! scheduler gives them (Pacemaker Explained, "Resource Sets"):
//! - colocation sets: each set is placed with the set after it, with that set's role;
//! - order sets: each set's action happens before the next set's, with each set's own
//!   `action` (default `start`);
//! - a plain order's `then-action` defaults to its `first-action`, which defaults to `start`.
//!
//! A colocation must be mandatory (`INFINITY`): a finite score is a preference the
//! scheduler may trade away, and the address could then sit on a standby.

use crate::pacemaker::xml::Element;

/// The ids a constraint may name to reach `id`: itself, and the group it is in.
pub fn holders(root: &Element, id: &str) -> Vec<String> {
    let mut out = vec![id.to_owned()];
    for g in root.descendants("group") {
        if g.children.iter().any(|c| c.name == "primitive" && c.attr("id") == Some(id)) {
            if let Some(gid) = g.attr("id") {
                out.push(gid.to_owned());
            }
        }
    }
    out
}

fn mandatory(c: &Element) -> bool {
    matches!(c.attr("score"), Some("INFINITY" | "+INFINITY"))
}

fn promoted(role: Option<&str>) -> bool {
    matches!(role, Some("Promoted" | "Master"))
}

/// The resources a set names, in order.
fn refs(set: &Element) -> impl Iterator<Item = &str> + '_ {
    set.children.iter().filter(|c| c.name == "resource_ref").filter_map(|c| c.attr("id"))
}

fn sets(c: &Element) -> Vec<&Element> {
    c.children.iter().filter(|c| c.name == "resource_set").collect()
}

/// One of `holders` is placed, mandatorily, with the Promoted role of `clone`.
pub fn colocated_with_promoted(root: &Element, holders: &[String], clone: &str) -> bool {
    let held = |id: &str| holders.iter().any(|h| h == id);
    root.descendants("rsc_colocation").filter(|c| mandatory(c)).any(|c| {
        if c.attr("rsc").is_some_and(held) && c.attr("with-rsc") == Some(clone) && promoted(c.attr("with-rsc-role")) {
            return true;
        }
        // Sets: a set is placed with the ones after it.
        let sets = sets(c);
        sets.iter().enumerate().any(|(i, mine)| refs(mine).any(held) && sets[i + 1..].iter().any(|s| promoted(s.attr("role")) && refs(s).any(|r| r == clone)))
    })
}

/// `first_action` of `first` is ordered, mandatorily, before `then_action` of one of `then`.
pub fn ordered(root: &Element, first: &str, first_action: &str, then: &[String], then_action: &str) -> bool {
    let held = |id: &str| then.iter().any(|h| h == id);
    root.descendants("rsc_order").filter(|o| !matches!(o.attr("kind"), Some("Optional" | "Serialize"))).any(|o| {
        let fa = o.attr("first-action").unwrap_or("start");
        let ta = o.attr("then-action").unwrap_or(fa);
        if o.attr("first") == Some(first) && fa == first_action && o.attr("then").is_some_and(held) && ta == then_action {
            return true;
        }
        let sets = sets(o);
        let action = |s: &Element| s.attr("action").unwrap_or("start").to_owned();
        sets.iter().enumerate().any(|(i, before)| {
            action(before) == first_action && refs(before).any(|r| r == first) && sets[i + 1..].iter().any(|s| action(s) == then_action && refs(s).any(held))
        })
    })
}
