//! `google.protobuf.Timestamp` to and from the core's UTC instants.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::ConversionError;

/// 0001-01-01T00:00:00Z, the earliest instant a `Timestamp` may hold.
const MIN_SECONDS: i64 = -62_135_596_800;
/// 9999-12-31T23:59:59Z, the latest whole second a `Timestamp` may hold.
const MAX_SECONDS: i64 = 253_402_300_799;
/// The largest `nanos` a `Timestamp` may hold.
const MAX_NANOS: u32 = 999_999_999;

/// An instant as a `google.protobuf.Timestamp`.
///
/// Lossless, except that chrono's leap-second representation (a sub-second part of one second
/// or more) is clamped to the last nanosecond of the second, which protobuf cannot exceed.
pub fn to_timestamp(instant: DateTime<Utc>) -> Timestamp {
    let nanos = instant.timestamp_subsec_nanos().min(MAX_NANOS);
    // Cannot fail: nanos is at most 999_999_999.
    Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(nanos).unwrap_or(i32::MAX),
    }
}

/// A `google.protobuf.Timestamp` as an instant, refusing values outside the protobuf range
/// (0001-01-01 to 9999-12-31, `nanos` in `0..=999_999_999`) with an error naming `field`.
pub fn from_timestamp(
    field: &str,
    timestamp: &Timestamp,
) -> Result<DateTime<Utc>, ConversionError> {
    let bad = |reason: &'static str| ConversionError::BadTimestamp {
        field: field.to_owned(),
        seconds: timestamp.seconds,
        nanos: timestamp.nanos,
        reason,
    };
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|n| *n <= MAX_NANOS)
        .ok_or_else(|| bad("nanos must be in 0..=999999999"))?;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&timestamp.seconds) {
        return Err(bad(
            "seconds must fall between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ));
    }
    DateTime::from_timestamp(timestamp.seconds, nanos).ok_or_else(|| bad("not representable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nanosecond_instants() {
        let t: DateTime<Utc> = "2017-02-05T06:30:15.123456789Z".parse().expect("date");
        let ts = to_timestamp(t);
        assert_eq!(ts.seconds, 1_486_276_215);
        assert_eq!(ts.nanos, 123_456_789);
        assert_eq!(from_timestamp("t", &ts), Ok(t));
    }

    #[test]
    fn accepts_the_ends_of_the_protobuf_range() {
        let first = from_timestamp(
            "t",
            &Timestamp {
                seconds: MIN_SECONDS,
                nanos: 0,
            },
        )
        .expect("first");
        assert_eq!(first.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        let last = from_timestamp(
            "t",
            &Timestamp {
                seconds: MAX_SECONDS,
                nanos: 999_999_999,
            },
        )
        .expect("last");
        assert_eq!(last.timestamp(), MAX_SECONDS);
    }

    #[test]
    fn refuses_out_of_range_values_naming_them() {
        let err = from_timestamp(
            "job.created",
            &Timestamp {
                seconds: 0,
                nanos: -1,
            },
        )
        .expect_err("must be refused");
        let text = err.to_string();
        assert!(
            text.contains("job.created") && text.contains("-1") && text.contains("nanos"),
            "{text}"
        );
        let err = from_timestamp(
            "x",
            &Timestamp {
                seconds: MAX_SECONDS + 1,
                nanos: 0,
            },
        )
        .expect_err("must be refused");
        assert!(err.to_string().contains("253402300800"), "{err}");
    }
}
