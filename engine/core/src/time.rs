use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::SpecError;

/// The time coordinate of a dataset: one instant per time step, in order.
///
/// A timely timestamp is an index into this axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeAxis {
    /// The instant of each step.
    pub times: Vec<DateTime<Utc>>,
}

impl TimeAxis {
    /// `steps` instants spaced `step_hours` apart from `start`.
    pub fn regular(start: DateTime<Utc>, step_hours: i64, steps: usize) -> Self {
        let times = (0..steps as i64)
            .map(|i| start + Duration::hours(i * step_hours))
            .collect();
        Self { times }
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True when there are no steps.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The indices of the steps whose instants fall in `start..=end`.
    pub fn indices_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> std::ops::Range<usize> {
        let first = self.times.partition_point(|t| *t < start);
        let past_last = self.times.partition_point(|t| *t <= end);
        first..past_last.max(first)
    }
}

/// A CF calendar. Dates of every supported calendar are real Gregorian dates (a `noleap` year
/// simply never has 29 February), so instants convert to UTC without loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Calendar {
    /// `standard`, `gregorian` and `proleptic_gregorian` (identical after 1582).
    #[default]
    Standard,
    /// `noleap` / `365_day`: every year has 365 days.
    NoLeap,
}

impl Calendar {
    /// The calendar named by a CF `calendar` attribute.
    ///
    /// ```
    /// use isotach_core::Calendar;
    /// assert_eq!(Calendar::parse("365_day").unwrap(), Calendar::NoLeap);
    /// assert!(Calendar::parse("360_day").unwrap_err().to_string().contains("360_day"));
    /// ```
    pub fn parse(name: &str) -> Result<Self, SpecError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "standard" | "gregorian" | "proleptic_gregorian" => Ok(Self::Standard),
            "noleap" | "365_day" => Ok(Self::NoLeap),
            other => Err(SpecError::invalid(
                "time.calendar",
                format!(
                    "calendar {other:?} is not supported (have: standard, gregorian, \
                     proleptic_gregorian, noleap, 365_day)"
                ),
            )),
        }
    }

    /// The CF name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "proleptic_gregorian",
            Self::NoLeap => "noleap",
        }
    }
}

const NOLEAP_MONTH_STARTS: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// Seconds since year 0 on a 365-day calendar, for a Gregorian date (29 February counts as 1 March).
fn noleap_seconds(t: NaiveDateTime) -> i64 {
    let (month0, day0) = if t.month() == 2 && t.day() == 29 {
        (2, 0)
    } else {
        (t.month0() as i64, t.day0() as i64)
    };
    let days = t.year() as i64 * 365 + NOLEAP_MONTH_STARTS[month0 as usize] + day0;
    days * 86_400 + t.num_seconds_from_midnight() as i64
}

/// The instant `seconds` after 0000-01-01 in the noleap calendar; `None` past chrono's years.
fn from_noleap_seconds(seconds: i64) -> Option<DateTime<Utc>> {
    let days = seconds.div_euclid(86_400);
    let in_day = seconds.rem_euclid(86_400);
    let year = i32::try_from(days.div_euclid(365)).ok()?;
    let day_of_year = days.rem_euclid(365);
    let month0 = NOLEAP_MONTH_STARTS.partition_point(|start| *start <= day_of_year) - 1;
    let day = day_of_year - NOLEAP_MONTH_STARTS[month0] + 1;
    let date = NaiveDate::from_ymd_opt(year, month0 as u32 + 1, day as u32)?;
    Some((date.and_time(chrono::NaiveTime::MIN) + Duration::seconds(in_day)).and_utc())
}

/// CF time units such as `hours since 1900-01-01 00:00:00`, in a [`Calendar`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CfTimeUnits {
    /// Seconds in one unit.
    pub unit_seconds: i64,
    /// The reference instant.
    pub epoch: DateTime<Utc>,
    /// The calendar the offsets count in.
    pub calendar: Calendar,
}

impl CfTimeUnits {
    /// Hours since `epoch`, standard calendar.
    pub fn hours_since(epoch: DateTime<Utc>) -> Self {
        Self {
            unit_seconds: 3600,
            epoch,
            calendar: Calendar::Standard,
        }
    }

    /// Parses `"<unit> since <date>[ <time>]"` in the standard calendar.
    ///
    /// ```
    /// let units = isotach_core::CfTimeUnits::parse("hours since 1900-01-01 00:00:00").unwrap();
    /// assert_eq!(units.unit_seconds, 3600);
    /// assert_eq!(units.to_string(), "hours since 1900-01-01 00:00:00");
    /// ```
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let bad = |why: &str| SpecError::invalid("time.units", format!("{text:?}: {why}"));
        let (unit, reference) = text
            .split_once(" since ")
            .ok_or_else(|| bad("expected \"<unit> since <date>\""))?;
        let unit_seconds = match unit.trim().to_ascii_lowercase().as_str() {
            "seconds" | "second" | "s" | "sec" | "secs" => 1,
            "minutes" | "minute" | "min" | "mins" => 60,
            "hours" | "hour" | "h" | "hr" | "hrs" => 3600,
            "days" | "day" | "d" => 86_400,
            other => {
                return Err(bad(&format!(
                    "unknown unit {other:?} (have: seconds, minutes, hours, days)"
                )));
            }
        };
        let reference = reference
            .trim()
            .trim_end_matches('Z')
            .trim_end_matches(" UTC")
            .trim_end_matches("+00:00")
            .trim()
            .replace('T', " ");
        let epoch = NaiveDateTime::parse_from_str(&reference, "%Y-%m-%d %H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(&reference, "%Y-%m-%d %H:%M"))
            .or_else(|_| {
                NaiveDate::parse_from_str(&reference, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
            })
            .map_err(|_| bad("reference date is not YYYY-MM-DD[ HH:MM:SS]"))?;
        Ok(Self {
            unit_seconds,
            epoch: epoch.and_utc(),
            calendar: Calendar::Standard,
        })
    }

    /// The same units counted in `calendar`.
    pub fn in_calendar(self, calendar: Calendar) -> Self {
        Self { calendar, ..self }
    }

    /// The instant `value` units after the epoch, to the millisecond; `None` when it is not a
    /// finite number or lies beyond the ±262,000 years that dates are kept in.
    ///
    /// ```
    /// use isotach_core::{Calendar, CfTimeUnits};
    /// let units = CfTimeUnits::parse("days since 2001-02-28").unwrap().in_calendar(Calendar::NoLeap);
    /// assert_eq!(units.instant(366.0).unwrap().to_rfc3339(), "2002-03-01T00:00:00+00:00");
    /// assert_eq!(units.instant(1e300), None);
    /// ```
    pub fn instant(&self, value: f64) -> Option<DateTime<Utc>> {
        let offset_ms = (value * self.unit_seconds as f64 * 1000.0).round();
        // i64 milliseconds reach ±292 million years: past that no date exists anyway.
        if !offset_ms.is_finite() || offset_ms.abs() >= 9.2e18 {
            return None;
        }
        let offset_ms = offset_ms as i64;
        match self.calendar {
            Calendar::Standard => self
                .epoch
                .checked_add_signed(Duration::try_milliseconds(offset_ms)?),
            Calendar::NoLeap => {
                let start = noleap_seconds(self.epoch.naive_utc());
                from_noleap_seconds(start.checked_add(offset_ms.div_euclid(1000))?)?
                    .checked_add_signed(Duration::try_milliseconds(offset_ms.rem_euclid(1000))?)
            }
        }
    }

    /// The instants of a whole time coordinate, or why step `i` is none: a missing (non-finite)
    /// value, or one past the ±262,000 years that dates are kept in.
    pub fn instants(&self, values: &[f64]) -> Result<Vec<DateTime<Utc>>, String> {
        values
            .iter()
            .enumerate()
            .map(|(step, v)| {
                self.instant(*v).ok_or_else(|| match v.is_finite() {
                    true => format!("time step {step} ({v} {self}) is past ±262,000 years"),
                    false => format!("time step {step} is missing ({v})"),
                })
            })
            .collect()
    }

    /// The number of units from the epoch to `instant`.
    pub fn value(&self, instant: DateTime<Utc>) -> f64 {
        let ms = match self.calendar {
            Calendar::Standard => (instant - self.epoch).num_milliseconds(),
            Calendar::NoLeap => {
                (noleap_seconds(instant.naive_utc()) - noleap_seconds(self.epoch.naive_utc()))
                    * 1000
                    + instant.timestamp_subsec_millis() as i64
            }
        };
        ms as f64 / (self.unit_seconds as f64 * 1000.0)
    }
}

impl std::fmt::Display for CfTimeUnits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.unit_seconds {
            1 => "seconds",
            60 => "minutes",
            3600 => "hours",
            _ => "days",
        };
        write!(f, "{unit} since {}", self.epoch.format("%Y-%m-%d %H:%M:%S"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cf_units_round_trip_instants() {
        let units = CfTimeUnits::parse("hours since 1900-01-01").expect("valid units");
        let t = units.instant(1_000_000.0).expect("in range");
        assert_eq!(t.to_rfc3339(), "2014-01-29T16:00:00+00:00");
        assert_eq!(units.value(t), 1_000_000.0);
        let days = CfTimeUnits::parse("days since 1980-01-14T14:00:00Z").expect("valid units");
        assert_eq!(
            days.instant(1.5).expect("in range").to_rfc3339(),
            "1980-01-16T02:00:00+00:00"
        );
    }

    #[test]
    fn cf_units_reject_nonsense_naming_it() {
        let err = CfTimeUnits::parse("fortnights since 1900-01-01").unwrap_err();
        assert!(err.to_string().contains("fortnights"), "{err}");
        assert!(CfTimeUnits::parse("hours after 1900").is_err());
    }

    #[test]
    fn noleap_skips_february_29_and_round_trips() {
        let units = CfTimeUnits::parse("hours since 1999-12-31 00:00:00")
            .expect("valid units")
            .in_calendar(Calendar::NoLeap);
        // 2000 is a Gregorian leap year; in noleap, day 60 after 1999-12-31 is 1 March.
        let t = units.instant(60.0 * 24.0).expect("in range");
        assert_eq!(t.to_rfc3339(), "2000-03-01T00:00:00+00:00");
        assert_eq!(units.value(t), 1440.0);
        let before_epoch = units.instant(-36.5).expect("in range");
        assert_eq!(before_epoch.to_rfc3339(), "1999-12-29T11:30:00+00:00");
        assert_eq!(units.value(before_epoch), -36.5);
        let standard = units.in_calendar(Calendar::Standard);
        assert_eq!(
            standard
                .instant(60.0 * 24.0)
                .expect("in range")
                .to_rfc3339(),
            "2000-02-29T00:00:00+00:00"
        );
    }

    #[test]
    fn instants_beyond_the_calendar_are_none_not_a_panic() {
        let hours = CfTimeUnits::parse("hours since 1900-01-01").expect("valid units");
        for calendar in [Calendar::Standard, Calendar::NoLeap] {
            let units = hours.in_calendar(calendar);
            for value in [1e300, -1e300, 1e14, -1e14, f64::NAN, f64::INFINITY] {
                assert_eq!(units.instant(value), None, "{calendar:?} {value}");
            }
            // 100,000 years of hours is still a date.
            assert!(units.instant(8.76e8).is_some(), "{calendar:?}");
            let err = units
                .instants(&[0.0, 6.0, 1e18])
                .expect_err("past any date");
            assert!(
                err.starts_with("time step 2 (1000000000000000000 hours"),
                "{err}"
            );
            let err = units.instants(&[0.0, f64::NAN]).expect_err("missing");
            assert_eq!(err, "time step 1 is missing (NaN)");
        }
    }

    #[test]
    fn indices_between_is_inclusive() {
        let start = "2017-01-01T00:00:00Z".parse().expect("date");
        let axis = TimeAxis::regular(start, 6, 10);
        let r = axis.indices_between(axis.times[2], axis.times[5]);
        assert_eq!(r, 2..6);
        let r = axis.indices_between(
            axis.times[2] + Duration::hours(1),
            axis.times[2] + Duration::hours(2),
        );
        assert!(r.is_empty());
    }
}
