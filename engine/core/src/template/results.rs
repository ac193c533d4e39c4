//! A sweep's results table: named, typed, nullable columns, written as an Arrow record batch
//! (for Parquet) or as CSV.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};

/// The values of one column; `None` is a null (an empty CSV cell).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Text (Arrow `Utf8`).
    Text(Vec<Option<String>>),
    /// Real numbers (`Float64`).
    Float(Vec<Option<f64>>),
    /// Signed integers (`Int64`).
    Integer(Vec<Option<i64>>),
    /// Counts (`UInt64`).
    Count(Vec<Option<u64>>),
    /// Booleans (`Boolean`).
    Flag(Vec<Option<bool>>),
    /// Instants (`Timestamp(ms, UTC)`; RFC 3339 in CSV).
    Time(Vec<Option<DateTime<Utc>>>),
}

impl ColumnValues {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(v) => v.len(),
            Self::Float(v) => v.len(),
            Self::Integer(v) => v.len(),
            Self::Count(v) => v.len(),
            Self::Flag(v) => v.len(),
            Self::Time(v) => v.len(),
        }
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn csv_cell(&self, row: usize) -> String {
        fn text<T: ToString>(v: &[Option<T>], row: usize) -> String {
            v.get(row)
                .and_then(Option::as_ref)
                .map(ToString::to_string)
                .unwrap_or_default()
        }
        match self {
            Self::Text(v) => v
                .get(row)
                .and_then(Option::as_deref)
                .map(csv_quote)
                .unwrap_or_default(),
            Self::Float(v) => text(v, row),
            Self::Integer(v) => text(v, row),
            Self::Count(v) => text(v, row),
            Self::Flag(v) => text(v, row),
            Self::Time(v) => v
                .get(row)
                .and_then(Option::as_ref)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                .unwrap_or_default(),
        }
    }

    fn arrow(&self) -> (DataType, ArrayRef) {
        match self {
            Self::Text(v) => (DataType::Utf8, Arc::new(StringArray::from(v.clone()))),
            Self::Float(v) => (DataType::Float64, Arc::new(Float64Array::from(v.clone()))),
            Self::Integer(v) => (DataType::Int64, Arc::new(Int64Array::from(v.clone()))),
            Self::Count(v) => (DataType::UInt64, Arc::new(UInt64Array::from(v.clone()))),
            Self::Flag(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v.clone()))),
            Self::Time(v) => {
                let array = TimestampMillisecondArray::from(
                    v.iter()
                        .map(|t| t.map(|t| t.timestamp_millis()))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC");
                (
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    Arc::new(array),
                )
            }
        }
    }
}

/// One named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The header.
    pub name: String,
    /// The values.
    pub values: ColumnValues,
}

/// Columns of equal length, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultsTable {
    /// The columns.
    pub columns: Vec<Column>,
}

impl ResultsTable {
    /// Appends a column.
    pub fn push(&mut self, name: impl Into<String>, values: ColumnValues) {
        self.columns.push(Column {
            name: name.into(),
            values,
        });
    }

    /// Rows of the first column (every column has as many).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    /// The table as one Arrow record batch, every column nullable; an error when the columns'
    /// lengths differ or two share a name.
    pub fn to_record_batch(&self) -> Result<RecordBatch, ArrowError> {
        let mut names = std::collections::BTreeSet::new();
        if let Some(column) = self.columns.iter().find(|c| !names.insert(&c.name)) {
            return Err(ArrowError::InvalidArgumentError(format!(
                "two columns are named {:?}",
                column.name
            )));
        }
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = self
            .columns
            .iter()
            .map(|column| {
                let (kind, array) = column.values.arrow();
                (Field::new(&column.name, kind, true), array)
            })
            .unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }

    /// The table as CSV (RFC 4180: a header line, fields quoted when they hold a comma, a quote or
    /// a line break; nulls empty; times in RFC 3339 UTC).
    pub fn to_csv(&self) -> String {
        let mut out = self
            .columns
            .iter()
            .map(|c| csv_quote(&c.name))
            .collect::<Vec<_>>()
            .join(",");
        out.push('\n');
        for row in 0..self.rows() {
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|c| c.values.csv_cell(row))
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

fn csv_quote(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
