//! Sources and sinks of Isotach.
//!
//! A [`Source`] describes a dataset (variables, grid, time axis), plans chunk-aligned tiles, and
//! reads them. [`ZarrSource`] reads Zarr v3 (and the v2 subset zarrs supports) from local paths
//! through `zarrs`. [`ZarrWriter`] writes CF-annotated Zarr v3 stores that xarray opens with the
//! right coordinates and times. [`write_arrow_ipc`] writes tables (statistics, object catalogs) as
//! Arrow IPC files that pyarrow and pandas read.

// zarrs takes index windows as arrays of ranges, one per dimension; a 1-D window is one range.
#![allow(clippy::single_range_in_vec_init)]

mod error;
mod source;
mod table;
mod zarr_read;
mod zarr_write;

pub use error::{ConnectorError, Result};
pub use source::{Source, TileRequest};
pub use table::write_arrow_ipc;
pub use zarr_read::{ZarrSource, is_zarr_store};
pub use zarr_write::{VariableLayout, ZarrVariableWriter, ZarrWriter};

/// Resolves a store location to a local path: a plain path or `file://` URI. Object stores arrive
/// with the S3/HTTP connectors; until then their schemes are refused by name.
pub fn local_path(uri: &str) -> Result<std::path::PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(rest.into());
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        return Err(ConnectorError::UnsupportedUri {
            uri: uri.to_owned(),
            why: format!("scheme {scheme}:// is not supported yet (have: plain paths, file://)"),
        });
    }
    Ok(uri.into())
}
