//! Small value formatters shared by the tables and the JSON output.

use prost_types::Timestamp;
use serde_json::Value;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `2026-11-28T15:04:05.123Z`: UTC, RFC 3339, milliseconds (truncated, so a
/// time never rolls over into the next second).
///
/// Written by hand because one formatter does not justify a date-time crate.
pub fn rfc3339_millis(timestamp: &Timestamp) -> String {
    // Normalise first: a sender may put a negative or oversized `nanos` in.
    let seconds = timestamp
        .seconds
        .saturating_add(i64::from(timestamp.nanos).div_euclid(NANOS_PER_SECOND));
    let nanos = i64::from(timestamp.nanos).rem_euclid(NANOS_PER_SECOND);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        nanos / 1_000_000
    )
}

/// The proleptic Gregorian date of a day number counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`), valid over the whole i64 range we
/// can reach from a timestamp.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], March = 0
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A timestamp as JSON: its RFC 3339 text, or null when absent.
pub fn timestamp_json(timestamp: Option<&Timestamp>) -> Value {
    timestamp.map_or(Value::Null, |t| Value::String(rfc3339_millis(t)))
}

/// An `f32` as a JSON number with the digits people expect.
///
/// Widening 0.93f32 to f64 gives 0.9300000071525879; going through the f32's
/// shortest decimal text keeps 0.93. Non-finite values have no JSON number and
/// become null.
pub fn f32_json(value: f32) -> Value {
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// `yes` / `no`.
pub fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: i32) -> String {
        rfc3339_millis(&Timestamp { seconds, nanos })
    }

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        // 2026-11-28T15:04:05Z, computed independently: 20785 days after the
        // epoch plus 15:04:05.
        assert_eq!(
            at(20_785 * 86_400 + 15 * 3600 + 4 * 60 + 5, 123_456_789),
            "2026-11-28T15:04:05.123Z"
        );
        // Millis are truncated, never rounded into the next second.
        assert_eq!(at(59, 999_999_999), "1970-01-01T00:00:59.999Z");
    }

    #[test]
    fn handles_leap_years_and_month_ends() {
        // 2000 is a leap year (divisible by 400), 1900 and 2100 are not.
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(951_868_800, 0), "2000-03-01T00:00:00.000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59.000Z");
        assert_eq!(at(1_704_067_199, 500_000_000), "2023-12-31T23:59:59.500Z");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000Z");
    }

    #[test]
    fn handles_times_before_the_epoch_and_odd_nanos() {
        assert_eq!(at(-1, 0), "1969-12-31T23:59:59.000Z");
        assert_eq!(at(-2_208_988_800, 0), "1900-01-01T00:00:00.000Z");
        assert_eq!(at(-62_135_596_800, 0), "0001-01-01T00:00:00.000Z");
        // Negative nanos borrow from the seconds, oversized ones carry.
        assert_eq!(at(1, -250_000_000), "1970-01-01T00:00:00.750Z");
        assert_eq!(at(0, 1_500_000_000), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn every_day_of_a_span_follows_the_previous_one() {
        // Walks 1999-2001 day by day: dates must advance by exactly one day,
        // months in order, with the right month lengths.
        let start = 10_592; // 1999-01-01
        let mut previous = civil_from_days(start - 1);
        assert_eq!(previous, (1998, 12, 31));
        for day in start..start + 3 * 366 {
            let current = civil_from_days(day);
            let (year, month, d) = previous;
            let expected = if current.2 == 1 {
                if month == 12 {
                    (year + 1, 1, 1)
                } else {
                    (year, month + 1, 1)
                }
            } else {
                (year, month, d + 1)
            };
            assert_eq!(current, expected, "day {day}");
            if current.2 == 1 {
                let month_length = d;
                let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
                let expected_length = match month {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(month_length, expected_length, "{year}-{month}");
            }
            previous = current;
        }
    }

    #[test]
    fn f32_values_keep_their_short_form() {
        assert_eq!(f32_json(0.93).to_string(), "0.93");
        assert_eq!(f32_json(10.0).to_string(), "10.0");
        assert_eq!(f32_json(f32::NAN), Value::Null);
        assert_eq!(f32_json(f32::INFINITY), Value::Null);
    }
}
