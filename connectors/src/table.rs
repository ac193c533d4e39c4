use std::fs::File;
use std::path::Path;

use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;

use crate::{ConnectorError, Result};

/// Writes record batches to an Arrow IPC file (`pyarrow.ipc.open_file` / `pandas.read_feather`).
/// All batches must share the first batch's schema; an empty slice writes nothing and is an error,
/// since a table without a schema cannot be opened.
pub fn write_arrow_ipc(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let err = |message: String| ConnectorError::Write {
        path: path.display().to_string(),
        message,
    };
    let first = batches
        .first()
        .ok_or_else(|| err("no record batch to write".into()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let file = File::create(path).map_err(|e| err(e.to_string()))?;
    let mut writer = FileWriter::try_new(file, &first.schema()).map_err(|e| err(e.to_string()))?;
    for batch in batches {
        writer.write(batch).map_err(|e| err(e.to_string()))?;
    }
    writer.finish().map_err(|e| err(e.to_string()))
}
