//! Sources and sinks of Isotach.
//!
//! A [`Source`] describes a dataset (variables, grid, time axis), plans chunk-aligned tiles, and
//! reads them. [`ZarrSource`] reads Zarr v3 (and the v2 subset zarrs supports) from local paths
//! through `zarrs`. [`ZarrWriter`] writes CF-annotated Zarr v3 stores that xarray opens with the
//! right coordinates and times. [`write_arrow_ipc`] writes tables (statistics, object catalogs) as
//! Arrow IPC files that pyarrow and pandas read.

// zarrs takes index windows as arrays of ranges, one per dimension; a 1-D window is one range.
#![allow(clippy::single_range_in_vec_init)]

pub mod cf;
mod chunk_cache;
mod error;
mod netcdf;
mod open;
mod select;
mod source;
mod store;
mod table;
mod zarr_blocks;
mod zarr_read;
mod zarr_sink;
mod zarr_write;

pub use chunk_cache::ChunkCacheStats;
pub use error::{ConnectorError, Result};
#[cfg(feature = "netcdf4")]
pub use netcdf::Netcdf4File;
pub use netcdf::{
    ByteRanges, LocalFile, NcType, NetcdfData, NetcdfFile, NetcdfSource, NetcdfVariable,
};
pub use open::{DatasetFormat, open_source};
pub use select::SelectedSource;
pub use source::{ReadOptions, Source, TileRequest, TileStream, read_tiles};
pub use store::{ObjectRanges, OpenedStore, StoreLocation, StoreOptions, byte_ranges};
pub use table::{read_table, write_arrow_ipc, write_parquet, write_table};
pub use zarr_read::{ZarrSource, is_zarr_store};
pub use zarr_sink::{FieldStoreLayout, ZarrFieldSink};
pub use zarr_write::{VariableLayout, ZarrVariableWriter, ZarrWriter};

/// Resolves a location that must be on this machine (an output path, say): a plain path or a
/// `file://` URI. Other schemes are refused by name.
pub fn local_path(uri: &str) -> Result<std::path::PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(rest.into());
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        return Err(ConnectorError::UnsupportedUri {
            uri: uri.to_owned(),
            why: format!("scheme {scheme}:// cannot be used here (have: plain paths, file://)"),
        });
    }
    Ok(uri.into())
}
