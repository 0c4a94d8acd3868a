//! Event timestamps parsed the way the real server does (VMS notes §5.3),
//! quirks included, so a client that sends an ISO string with a fraction sees
//! the same lost milliseconds here as on a real server.
//!
//! The simulator's "server-local time" is UTC: the real server would use its
//! own time zone, which a test cannot know anyway.

use std::time::{SystemTime, UNIX_EPOCH};

/// A positive number below this (one year in µs) is milliseconds, above it µs.
const MICROS_THRESHOLD: i64 = 31_500_000_000_000;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses an event `timestamp` parameter into ms since epoch. Absent, `now`,
/// or unparsable text (which the server reads as 0) yields `now_ms`.
pub fn parse_event_timestamp(text: Option<&str>, now_ms: i64) -> i64 {
    let Some(text) = text.map(str::trim) else {
        return now_ms;
    };
    let parsed = if text.eq_ignore_ascii_case("now") {
        None
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>()
            .ok()
            .map(|n| if n < MICROS_THRESHOLD { n } else { n / 1000 })
    } else {
        parse_iso_like(text)
    };
    match parsed {
        Some(ms) if ms > 0 => ms,
        _ => now_ms,
    }
}

/// `YYYY-MM-DD[THH:mm[:ss]][Z|±HH:MM][.fraction]` with the server's quirk: the
/// text is split at the first `.`, the fraction is read as an integer and
/// divided by 1000 (so `.123` adds nothing), and anything after the fraction
/// digits (a `Z`) is ignored, which leaves such a value in local time.
fn parse_iso_like(text: &str) -> Option<i64> {
    let (head, fraction) = match text.split_once('.') {
        Some((head, frac)) => (head, Some(frac)),
        None => (text, None),
    };
    let mut ms = parse_date_time(head)?;
    if let Some(frac) = fraction {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        ms += digits.parse::<i64>().map(|n| n / 1000).unwrap_or(0);
    }
    Some(ms)
}

/// Date and optional time with optional `Z`/offset; no offset means local (UTC).
fn parse_date_time(text: &str) -> Option<i64> {
    let (date, time) = match text.find(['T', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut date_parts = date.split('-');
    let year: i64 = number(date_parts.next()?, 4)?;
    let month: i64 = number(date_parts.next()?, 2)?;
    let day: i64 = number(date_parts.next()?, 2)?;
    if date_parts.next().is_some() || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let (clock, offset_s) = split_offset(time)?;
        let mut parts = clock.split(':');
        let h: i64 = number(parts.next()?, 2)?;
        let m: i64 = number(parts.next()?, 2)?;
        let s: i64 = match parts.next() {
            Some(p) => number(p, 2)?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || m > 59 || s > 59 {
            return None;
        }
        seconds += h * 3600 + m * 60 + s - offset_s;
    }
    Some(seconds * 1000)
}

/// Splits `HH:mm:ssZ` / `HH:mm:ss+02:00` into the clock and the offset in seconds.
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    if let Some(i) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(i);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (oh, om) = offset[1..].split_once(':').unwrap_or((&offset[1..], "00"));
        let oh: i64 = number(oh, 2)?;
        let om: i64 = number(om, 2)?;
        return Some((clock, sign * (oh * 3600 + om * 60)));
    }
    Some((time, 0))
}

fn number(text: &str, width: usize) -> Option<i64> {
    (text.len() == width && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), as the bookmark log shows times.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn absent_now_and_garbage_mean_now() {
        assert_eq!(parse_event_timestamp(None, NOW), NOW);
        assert_eq!(parse_event_timestamp(Some("now"), NOW), NOW);
        assert_eq!(parse_event_timestamp(Some("NOW"), NOW), NOW);
        assert_eq!(parse_event_timestamp(Some(""), NOW), NOW);
        assert_eq!(parse_event_timestamp(Some("yesterday"), NOW), NOW);
        assert_eq!(parse_event_timestamp(Some("0"), NOW), NOW);
        assert_eq!(parse_event_timestamp(Some("-5"), NOW), NOW);
        assert_eq!(parse_event_timestamp(Some("2024-13-01T00:00:00"), NOW), NOW);
    }

    #[test]
    fn milliseconds_and_microseconds() {
        assert_eq!(
            parse_event_timestamp(Some("1718553761123"), NOW),
            1_718_553_761_123
        );
        assert_eq!(
            parse_event_timestamp(Some("1718553761123456"), NOW),
            1_718_553_761_123
        );
        // Just below the threshold is still milliseconds.
        assert_eq!(
            parse_event_timestamp(Some("31499999999999"), NOW),
            31_499_999_999_999
        );
        assert_eq!(
            parse_event_timestamp(Some("31500000000000"), NOW),
            31_500_000_000
        );
    }

    #[test]
    fn iso_forms() {
        // 2024-06-16T15:42:41Z = 1718552561 s.
        assert_eq!(
            parse_event_timestamp(Some("2024-06-16T15:42:41Z"), NOW),
            1_718_552_561_000
        );
        assert_eq!(
            parse_event_timestamp(Some("2024-06-16T15:42:41"), NOW),
            1_718_552_561_000
        );
        assert_eq!(
            parse_event_timestamp(Some("2024-06-16T17:42:41+02:00"), NOW),
            1_718_552_561_000
        );
        assert_eq!(
            parse_event_timestamp(Some("2024-06-16"), NOW),
            1_718_496_000_000
        );
    }

    #[test]
    fn iso_fraction_quirk_loses_milliseconds() {
        assert_eq!(
            parse_event_timestamp(Some("2024-06-16T15:42:41.123"), NOW),
            1_718_552_561_000
        );
        assert_eq!(
            parse_event_timestamp(Some("2024-06-16T15:42:41.123Z"), NOW),
            1_718_552_561_000
        );
        assert_eq!(
            parse_event_timestamp(Some("2024-06-16T15:42:41.123456"), NOW),
            1_718_552_561_123
        );
    }

    #[test]
    fn civil_round_trip_and_format() {
        for days in [-800_000, -1, 0, 1, 19_890, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_utc(1_718_552_561_999), "2024-06-16 15:42:41");
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert!(is_leap(2000) && !is_leap(1900) && is_leap(2024));
    }
}
