use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
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

/// CF time units such as `hours since 1900-01-01 00:00:00` (standard calendar).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CfTimeUnits {
    /// Seconds in one unit.
    pub unit_seconds: i64,
    /// The reference instant.
    pub epoch: DateTime<Utc>,
}

impl CfTimeUnits {
    /// Hours since `epoch`.
    pub fn hours_since(epoch: DateTime<Utc>) -> Self {
        Self {
            unit_seconds: 3600,
            epoch,
        }
    }

    /// Parses `"<unit> since <date>[ <time>]"`.
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
            "seconds" | "second" | "s" => 1,
            "minutes" | "minute" | "min" => 60,
            "hours" | "hour" | "h" => 3600,
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
        })
    }

    /// The instant `value` units after the epoch.
    pub fn instant(&self, value: f64) -> DateTime<Utc> {
        self.epoch
            + Duration::milliseconds((value * self.unit_seconds as f64 * 1000.0).round() as i64)
    }

    /// The number of units from the epoch to `instant`.
    pub fn value(&self, instant: DateTime<Utc>) -> f64 {
        (instant - self.epoch).num_milliseconds() as f64 / (self.unit_seconds as f64 * 1000.0)
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
        let t = units.instant(1_000_000.0);
        assert_eq!(t.to_rfc3339(), "2014-01-29T16:00:00+00:00");
        assert_eq!(units.value(t), 1_000_000.0);
        let days = CfTimeUnits::parse("days since 1980-01-14T14:00:00Z").expect("valid units");
        assert_eq!(days.instant(1.5).to_rfc3339(), "1980-01-16T02:00:00+00:00");
    }

    #[test]
    fn cf_units_reject_nonsense_naming_it() {
        let err = CfTimeUnits::parse("fortnights since 1900-01-01").unwrap_err();
        assert!(err.to_string().contains("fortnights"), "{err}");
        assert!(CfTimeUnits::parse("hours after 1900").is_err());
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
