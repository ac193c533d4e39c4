use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use isotach_core::{CfTimeUnits, Field, LatLonGrid, TimeAxis};
use serde_json::{Map, Value, json};

use crate::{ConnectorError, Result, VariableLayout, ZarrVariableWriter, ZarrWriter};

/// What a Zarr sink holds: one grid, the steps of the run, and its variables.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldStoreLayout {
    /// The grid of every variable.
    pub grid: LatLonGrid,
    /// The instants of the steps written, in order.
    pub times: Vec<DateTime<Utc>>,
    /// The dataset step index of the first instant (fields carry dataset step indices).
    pub first_step: u64,
    /// `(name, units, long name)` of each variable.
    pub variables: Vec<(String, String, String)>,
}

/// Writes whole fields into a CF-annotated Zarr v3 store, one chunk per variable and step, that
/// `xarray.open_zarr` opens with its coordinates, times and units. Steps may arrive in any order
/// and from several processes: each writes its own chunks.
pub struct ZarrFieldSink {
    path: PathBuf,
    first_step: u64,
    steps: u64,
    variables: BTreeMap<String, ZarrVariableWriter>,
}

impl ZarrFieldSink {
    /// Creates the store: coordinates, time axis (hours since the first instant), and an empty
    /// array per variable, metadata consolidated. The folder must not exist or be empty.
    pub fn create(
        path: &Path,
        layout: &FieldStoreLayout,
        attributes: Map<String, Value>,
    ) -> Result<Self> {
        let writer = ZarrWriter::create(path, attributes)?;
        writer.write_lat_lon(&layout.grid)?;
        let epoch = layout.times.first().copied().unwrap_or_default();
        let axis = TimeAxis {
            times: layout.times.clone(),
        };
        writer.write_time(&axis, CfTimeUnits::hours_since(epoch), Map::new())?;
        let (nlat, nlon) = layout.grid.shape();
        let shape = VariableLayout {
            dims: ["time", "lat", "lon"].map(String::from).to_vec(),
            shape: vec![layout.times.len() as u64, nlat as u64, nlon as u64],
            chunks: vec![1, nlat as u64, nlon as u64],
        };
        let mut variables = BTreeMap::new();
        for (name, units, long_name) in &layout.variables {
            let mut attrs = Map::new();
            attrs.insert("units".into(), json!(units));
            attrs.insert("long_name".into(), json!(long_name));
            variables.insert(name.clone(), writer.create_variable(name, &shape, attrs)?);
        }
        writer.consolidate()?;
        Ok(Self {
            path: path.to_owned(),
            first_step: layout.first_step,
            steps: layout.times.len() as u64,
            variables,
        })
    }

    /// Opens a store another process created with the same layout, to write this process's steps.
    pub fn open(path: &Path, layout: &FieldStoreLayout) -> Result<Self> {
        let writer = ZarrWriter::open(path)?;
        let variables = layout
            .variables
            .iter()
            .map(|(name, _, _)| Ok((name.clone(), writer.open_variable(name)?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            path: path.to_owned(),
            first_step: layout.first_step,
            steps: layout.times.len() as u64,
            variables,
        })
    }

    /// Writes `field` at its step; a field of a variable this store does not hold is skipped
    /// (returns false).
    pub fn write(&self, field: &Field) -> Result<bool> {
        let Some(writer) = self.variables.get(&field.variable) else {
            return Ok(false);
        };
        let index = field
            .step
            .checked_sub(self.first_step)
            .filter(|i| *i < self.steps)
            .ok_or_else(|| ConnectorError::Write {
                path: format!("{}/{}", self.path.display(), field.variable),
                message: format!(
                    "step {} is outside the steps {}..{} of this store",
                    field.step,
                    self.first_step,
                    self.first_step + self.steps
                ),
            })?;
        writer.write_step(index, &field.values)?;
        Ok(true)
    }
}
