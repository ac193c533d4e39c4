//! One entry point from a URI to a [`Source`]: the format is told by the store itself, and a
//! region box wraps the result in a [`SelectedSource`].

use std::sync::Arc;

use isotach_core::RegionBox;

use crate::{Result, SelectedSource, Source, StoreOptions, ZarrSource};

/// The formats a location can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetFormat {
    /// A Zarr v2 or v3 hierarchy.
    Zarr,
    /// A NetCDF file: NetCDF-3 classic (CDF-1, CDF-2, CDF-5) or NetCDF-4 (HDF5), told apart by
    /// the file's first bytes.
    Netcdf,
}

impl DatasetFormat {
    /// Guesses the format from the location's name: `.nc`, `.nc3`, `.nc4`, `.cdf` and `.netcdf`
    /// files are NetCDF, everything else is Zarr.
    pub fn of(uri: &str) -> Self {
        let name = uri.trim_end_matches('/').to_ascii_lowercase();
        if [".nc", ".nc3", ".nc4", ".cdf", ".netcdf"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            Self::Netcdf
        } else {
            Self::Zarr
        }
    }
}

/// Opens the dataset at `uri` (any supported scheme and format) and, when `region` is given,
/// narrows it to that box.
pub fn open_source(
    uri: &str,
    options: &StoreOptions,
    region: Option<RegionBox>,
) -> Result<Arc<dyn Source>> {
    let source: Arc<dyn Source> = match DatasetFormat::of(uri) {
        DatasetFormat::Zarr => Arc::new(ZarrSource::open_with(uri, options)?),
        DatasetFormat::Netcdf => Arc::new(crate::NetcdfSource::open_with(uri, options)?),
    };
    Ok(match region {
        Some(region) => Arc::new(SelectedSource::new(source, region.lat, region.lon)?),
        None => source,
    })
}
