//! Instants are stored in UTC and shown in Paris time, the time of the
//! schools: every page, mail, slip and CLI table formats through here. The
//! offset comes from the tz database, so daylight saving changes on the
//! right Sunday. Expiry days are Paris days too ([`start_of_day`]).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The time zone instants are shown in.
pub const SCHOOL_TIME_ZONE: Tz = chrono_tz::Europe::Paris;

/// An instant as a clock on a school's wall reads it.
pub fn local(at: DateTime<Utc>) -> DateTime<Tz> {
    at.with_timezone(&SCHOOL_TIME_ZONE)
}

/// "03/12/2026 09:30": the day and the minute, Paris time.
pub fn minute(at: DateTime<Utc>) -> String {
    local(at).format("%d/%m/%Y %H:%M").to_string()
}

/// [`minute`], or "jamais" for an instant that never came (a first sign-in…).
pub fn minute_or_never(at: Option<DateTime<Utc>>) -> String {
    at.map(minute).unwrap_or_else(|| "jamais".to_string())
}

/// "03/12/2026 09:30:12": for journals, where seconds tell events apart.
pub fn second(at: DateTime<Utc>) -> String {
    local(at).format("%d/%m/%Y %H:%M:%S").to_string()
}

/// "03/12/2026 à 09:30", for sentences (mails).
pub fn in_words(at: DateTime<Utc>) -> String {
    local(at).format("%d/%m/%Y à %H:%M").to_string()
}

/// Midnight in Paris at the start of this day, as an instant. (Midnight
/// always exists in Paris: the clocks change at 2 h and 3 h.)
pub fn start_of_day(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    match SCHOOL_TIME_ZONE.from_local_datetime(&midnight).earliest() {
        Some(local) => local.with_timezone(&Utc),
        None => midnight.and_utc(),
    }
}

/// The day it is in Paris at this instant.
pub fn day(at: DateTime<Utc>) -> NaiveDate {
    local(at).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    #[test]
    fn winter_is_utc_plus_one_summer_utc_plus_two() {
        assert_eq!(minute(utc(2026, 12, 3, 8, 30)), "03/12/2026 09:30");
        assert_eq!(minute(utc(2026, 7, 1, 8, 30)), "01/07/2026 10:30");
    }

    #[test]
    fn daylight_saving_changes_on_the_last_sunday_of_march_and_october() {
        // 29 March 2026, 02:00 Paris becomes 03:00.
        assert_eq!(minute(utc(2026, 3, 29, 0, 59)), "29/03/2026 01:59");
        assert_eq!(minute(utc(2026, 3, 29, 1, 0)), "29/03/2026 03:00");
        // 25 October 2026, 03:00 Paris becomes 02:00 again.
        assert_eq!(minute(utc(2026, 10, 25, 0, 59)), "25/10/2026 02:59");
        assert_eq!(minute(utc(2026, 10, 25, 1, 0)), "25/10/2026 02:00");
    }

    #[test]
    fn the_day_is_the_paris_day() {
        // 23:30 UTC on 31 December is already New Year's Day in Paris.
        assert_eq!(
            day(utc(2026, 12, 31, 23, 30)),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        assert_eq!(in_words(utc(2026, 12, 31, 23, 30)), "01/01/2027 à 00:30");
    }
}
