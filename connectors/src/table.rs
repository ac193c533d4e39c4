use std::fs::File;
use std::path::Path;

use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::{ConnectorError, Result};

/// The first batch's schema, and the output folder made ready.
fn prepare<'a>(path: &Path, batches: &'a [RecordBatch]) -> Result<&'a RecordBatch> {
    let first = batches.first().ok_or_else(|| ConnectorError::Write {
        path: path.display().to_string(),
        message: "no record batch to write".into(),
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ConnectorError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(first)
}

/// Writes record batches to an Arrow IPC file (`pyarrow.ipc.open_file` / `pandas.read_feather`).
/// All batches must share the first batch's schema; an empty slice writes nothing and is an error,
/// since a table without a schema cannot be opened.
pub fn write_arrow_ipc(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let err = |message: String| ConnectorError::Write {
        path: path.display().to_string(),
        message,
    };
    let first = prepare(path, batches)?;
    let file = File::create(path).map_err(|e| err(e.to_string()))?;
    let mut writer = FileWriter::try_new(file, &first.schema()).map_err(|e| err(e.to_string()))?;
    for batch in batches {
        writer.write(batch).map_err(|e| err(e.to_string()))?;
    }
    writer.finish().map_err(|e| err(e.to_string()))
}

/// Writes record batches to a Parquet file, snappy-compressed (`pandas.read_parquet`,
/// `pyarrow.parquet.read_table`). Same schema rule as [`write_arrow_ipc`].
pub fn write_parquet(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let err = |message: String| ConnectorError::Write {
        path: path.display().to_string(),
        message,
    };
    let first = prepare(path, batches)?;
    let file = File::create(path).map_err(|e| err(e.to_string()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let schema = millisecond_times(first)
        .map_err(|e| err(e.to_string()))?
        .schema();
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(properties)).map_err(|e| err(e.to_string()))?;
    for batch in batches {
        writer
            .write(&millisecond_times(batch).map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    writer.close().map(|_| ()).map_err(|e| err(e.to_string()))
}

/// Parquet has no second-resolution timestamp: pandas would read such a column as plain int64.
/// Second timestamps become millisecond ones, same instants.
fn millisecond_times(
    batch: &RecordBatch,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if let DataType::Timestamp(TimeUnit::Second, tz) = field.data_type() {
            let target = DataType::Timestamp(TimeUnit::Millisecond, tz.clone());
            columns.push(arrow::compute::cast(column, &target)?);
            fields.push(Field::new(field.name(), target, field.is_nullable()));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    let schema = Schema::new_with_metadata(fields, batch.schema().metadata().clone());
    RecordBatch::try_new(std::sync::Arc::new(schema), columns)
}

/// Writes `batches` as Arrow IPC when `path` ends in `.arrow`, as Parquet otherwise.
pub fn write_table(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    if path.extension().is_some_and(|e| e == "arrow") {
        write_arrow_ipc(path, batches)
    } else {
        write_parquet(path, batches)
    }
}
