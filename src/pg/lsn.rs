//! Log sequence numbers: positions in the WAL, written `X/Y` (two hex halves of a u64).

use std::fmt;
use std::str::FromStr;

/// A position in the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Lsn, String> {
        let s = s.trim();
        let (hi, lo) = s.split_once('/').ok_or_else(|| format!("'{s}' is not an LSN (X/Y)"))?;
        let part = |p: &str| if p.is_empty() || p.len() > 8 { None } else { u32::from_str_radix(p, 16).ok() };
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
        for bad in ["", "0", "/", "0/", "x/1", "1/123456789", "0/1/2"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad}");
        }
    }
}
