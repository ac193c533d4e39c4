//! A whole picture: one scalar field in a projection with layers drawn over it, in order.

use isotach_core::Field;

use crate::coastline::Coastlines;
use crate::contour::ContourLayer;
use crate::graticule::GraticuleLayer;
use crate::objects::ObjectLayer;
use crate::overlay::Overlay;
use crate::projection::{MapView, Projection};
use crate::vectors::VectorLayer;
use crate::{PixelRect, ScalarStyle, VizError};

/// Shorelines drawn as lines.
#[derive(Debug, Clone)]
pub struct CoastlineLayer<'a> {
    /// The shorelines (see [`Coastlines::load`] and
    /// [`CoastlineResolution::for_view`](crate::CoastlineResolution::for_view)).
    pub coastlines: &'a Coastlines,
    /// Line colour, RGBA.
    pub rgba: [u8; 4],
    /// Fill colour of land under the shorelines (translucent to keep the field visible);
    /// `None`: lines only.
    pub land_rgba: Option<[u8; 4]>,
}

impl<'a> CoastlineLayer<'a> {
    /// Near-black shorelines, no land fill.
    pub fn new(coastlines: &'a Coastlines) -> Self {
        Self {
            coastlines,
            rgba: [10, 10, 10, 255],
            land_rgba: None,
        }
    }
}

/// One layer over the scalar field.
#[derive(Debug, Clone)]
pub enum Layer<'a> {
    /// Labelled isolines.
    Contours(ContourLayer<'a>),
    /// Wind arrows.
    Vectors(VectorLayer<'a>),
    /// Object fills and outlines.
    Objects(ObjectLayer<'a>),
    /// Meridians and parallels.
    Graticule(GraticuleLayer),
    /// Shorelines, optionally with land filled.
    Coastlines(CoastlineLayer<'a>),
}

/// What a frame shows: the scalar `field` coloured by `style` (it also gives the title, time line
/// and colorbar), in `projection`, with `layers` drawn over it in order (later layers on top).
#[derive(Debug, Clone)]
pub struct Scene<'a> {
    /// The coloured field.
    pub field: &'a Field,
    /// Its colours.
    pub style: ScalarStyle,
    /// How the map shows the globe.
    pub projection: Projection,
    /// Drawn over the field, first to last.
    pub layers: Vec<Layer<'a>>,
}

impl<'a> Scene<'a> {
    /// `field` in `style` on the default map (equirectangular, central longitude 180), no layers.
    pub fn new(field: &'a Field, style: ScalarStyle) -> Self {
        Self {
            field,
            style,
            projection: Projection::default(),
            layers: Vec::new(),
        }
    }

    /// The same scene in `projection`.
    pub fn with_projection(mut self, projection: Projection) -> Self {
        self.projection = projection;
        self
    }

    /// The same scene with `layer` on top.
    pub fn with_layer(mut self, layer: Layer<'a>) -> Self {
        self.layers.push(layer);
        self
    }

    /// The object layer the shader draws: the first layer, when it is one (drawn directly over
    /// the field, under every other layer, as the CPU would draw it).
    pub(crate) fn gpu_objects(&self) -> Option<&ObjectLayer<'a>> {
        match self.layers.first() {
            Some(Layer::Objects(layer)) => Some(layer),
            _ => None,
        }
    }

    /// Rasterises the layers after the first `skip`, in order, into an overlay of the canvas
    /// part `window`.
    pub(crate) fn draw_layers(
        &self,
        view: &MapView,
        window: PixelRect,
        skip: usize,
    ) -> Result<Overlay, VizError> {
        let mut overlay = Overlay::new(window);
        for layer in self.layers.iter().skip(skip) {
            match layer {
                Layer::Contours(l) => l.draw(view, &mut overlay)?,
                Layer::Vectors(l) => l.draw(view, &mut overlay)?,
                Layer::Objects(l) => l.draw(view, &mut overlay)?,
                Layer::Graticule(l) => l.draw(view, &mut overlay)?,
                Layer::Coastlines(l) => {
                    l.coastlines.draw(view, &mut overlay, l.rgba, l.land_rgba)?
                }
            }
        }
        Ok(overlay)
    }
}
