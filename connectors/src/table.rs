use std::fs::File;
use std::path::Path;

use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
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

/// Reads a table written by [`write_table`] (or pandas, pyarrow): Arrow IPC when `path` ends in
/// `.arrow`, Parquet otherwise; the file's batches in order.
pub fn read_table(path: &Path) -> Result<Vec<RecordBatch>> {
    let err = |message: String| ConnectorError::ReadTable {
        path: path.display().to_string(),
        message,
    };
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    if path.extension().is_some_and(|e| e == "arrow") {
        arrow::ipc::reader::FileReader::try_new(file, None)
            .map_err(|e| err(format!("not an Arrow IPC file: {e}")))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))
    } else {
        ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(ParquetRecordBatchReaderBuilder::build)
            .map_err(|e| err(format!("not a Parquet file: {e}")))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn table() -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("area_km2", DataType::Float64, true),
        ]));
        (0..2u64)
            .map(|b| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(UInt64Array::from(vec![b * 2, b * 2 + 1])),
                        Arc::new(Float64Array::from(vec![Some(1.5), None])),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn tables_read_back_as_written_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let written = table();
        for name in ["t.arrow", "t.parquet"] {
            let path = dir.path().join(name);
            write_table(&path, &written).unwrap();
            let read = read_table(&path).unwrap();
            let rows = |batches: &[RecordBatch]| {
                arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
            };
            assert_eq!(rows(&read), rows(&written), "{name}");
        }
    }

    #[test]
    fn unreadable_tables_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["junk.arrow", "junk.parquet"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "not a table").unwrap();
            let message = read_table(&path).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("reading table {}", path.display())),
                "{message}"
            );
        }
        let missing = read_table(&dir.path().join("missing.parquet")).unwrap_err();
        assert!(missing.to_string().contains("missing.parquet"), "{missing}");
    }
}
