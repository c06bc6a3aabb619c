//! Dates in UTC without a date crate: the two conversions between days since 1970-01-01
//! and a proleptic Gregorian (year, month, day) (Howard Hinnant's algorithms), and the
//! timestamp forms paceline prints. One place, because every caller must agree with the
//! others to the day: the lab's probe stamps its lines, the incident records print and read
//! back times (crm_mon's fencing history).

/// Days since 1970-01-01 to (year, month, day).
pub fn from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn to_days(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch as `(date, "HH:MM:SS", millis)` parts, UTC.
fn parts(ms: u64) -> ((i64, u32, u32), (u64, u64, u64), u64) {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    (from_days((secs / 86_400) as i64), (rem / 3600, rem / 60 % 60, rem % 60), ms % 1000)
}

/// `2026-12-07 12:00:00.123` (UTC).
pub fn utc(ms: u64) -> String {
    let ((y, m, d), (h, mi, s), milli) = parts(ms);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}")
}

/// `2026-12-07T12:00:00.123Z`.
pub fn rfc3339(ms: u64) -> String {
    let ((y, m, d), (h, mi, s), milli) = parts(ms);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_agree() {
        for days in [-719_468, -1, 0, 59, 365, 10_957, 20_794, 2_932_896] {
            let (y, m, d) = from_days(days);
            assert_eq!(to_days(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(from_days(20_794), (2026, 12, 7));
        assert_eq!(utc(1_796_644_800_123), "2026-12-07 12:00:00.123");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
