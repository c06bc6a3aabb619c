//! Log sequence numbers: positions in the WAL, written `X/Y` (two hex halves of a u64).

use std::fmt;
use std::str::FromStr;

/// A position in the write-ahead log. Parsed from `X/Y` where each half is one to eight hex
/// digits (surrounding whitespace ignored), as PostgreSQL prints and reads it; anything else
/// is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Lsn, String> {
        let s = s.trim();
        let (hi, lo) = s.split_once('/').ok_or_else(|| format!("'{s}' is not an LSN (X/Y)"))?;
        // One to eight hex digits, nothing else: from_str_radix alone would take a sign ("+1/0").
        let part = |p: &str| if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_hexdigit()) { None } else { u32::from_str_radix(p, 16).ok() };
        match (part(hi), part(lo)) {
            (Some(h), Some(l)) => Ok(Lsn((u64::from(h) << 32) | u64::from(l))),
            _ => Err(format!("'{s}' is not an LSN (X/Y)")),
        }
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        assert_eq!("0/1511A88".parse::<Lsn>().unwrap(), Lsn(0x1511A88));
        assert_eq!("16/B374D848".parse::<Lsn>().unwrap(), Lsn(0x16_B374_D848));
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert!("0/1".parse::<Lsn>().unwrap() < "1/0".parse::<Lsn>().unwrap());
        for bad in ["", "0", "/", "0/", "x/1", "1/123456789", "0/1/2", "+1/0", "0/+1", "-0/0", "0 /1"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad}");
        }
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Every LSN prints as PostgreSQL prints it and reads back as itself.
            #[test]
            fn format_then_parse_is_identity(n in any::<u64>()) {
                let text = Lsn(n).to_string();
                prop_assert_eq!(text.parse::<Lsn>(), Ok(Lsn(n)));
            }

            /// A well-formed LSN (upper-case hex, no leading zeros: how PostgreSQL writes
            /// it) formats back to the same text.
            #[test]
            fn parse_then_format_is_identity(text in "(0|[1-9A-F][0-9A-F]{0,7})/(0|[1-9A-F][0-9A-F]{0,7})") {
                prop_assert_eq!(text.parse::<Lsn>().map(|l| l.to_string()), Ok(text));
            }

            /// Any text: an error, or an LSN whose halves are exactly the hex digits written.
            #[test]
            fn any_text_is_an_error_or_what_it_says(text in any::<String>()) {
                if let Ok(l) = text.parse::<Lsn>() {
                    let (hi, lo) = text.trim().split_once('/').unwrap();
                    prop_assert!(hi.bytes().chain(lo.bytes()).all(|b| b.is_ascii_hexdigit()), "{text:?}");
                    prop_assert_eq!(l.to_string().to_ascii_lowercase(), format!("{:x}/{:x}", u64::from_str_radix(hi, 16).unwrap(), u64::from_str_radix(lo, 16).unwrap()));
                }
            }

            /// Near misses of the syntax (a sign, a space, a third part, nine digits) are errors.
            #[test]
            fn near_misses_are_errors(hi in "[0-9A-F]{1,8}", lo in "[0-9A-F]{1,8}", junk in "[-+ /g_xX.]") {
                for bad in [format!("{junk}{hi}/{lo}"), format!("{hi}{junk}/{lo}"), format!("{hi}/{junk}{lo}"), format!("{hi}/{lo}/{junk}"), format!("{hi}/1{lo:0>8}")] {
                    if bad.trim() != format!("{hi}/{lo}") {
                        prop_assert!(bad.parse::<Lsn>().is_err(), "{bad:?}");
                    }
                }
            }
        }
    }
}
