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
    let mut writer = ArrowWriter::try_new(file, first.schema(), Some(properties))
        .map_err(|e| err(e.to_string()))?;
    for batch in batches {
        writer.write(batch).map_err(|e| err(e.to_string()))?;
    }
    writer.close().map(|_| ()).map_err(|e| err(e.to_string()))
}
