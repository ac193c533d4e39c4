//! From a [`Frame`] (layer specs and their fields) to the [`Scene`] it shows: the one mapping
//! used by the PNG sink, wall nodes and viewers, so every place draws a frame alike.

use isotach_core::{Field, Frame, LayerSpec, LayerStyle};

use crate::range::color_range;
use crate::{Layer, ObjectLayer, ScalarStyle, Scene, VizError};

/// The style of a colour-field layer.
fn field_style(layer: &LayerSpec) -> ScalarStyle {
    ScalarStyle {
        colormap: layer.colormap,
        range: layer.range,
        ..ScalarStyle::default()
    }
}

/// Fixes each colour-field layer's open range to its field's finite range, so that every part of
/// a wall (each tile sees only its cells) colours the frame alike. `fields[j]` is layer `j`'s.
pub fn resolve_ranges(layers: &mut [LayerSpec], fields: &[Field]) -> Result<(), VizError> {
    for (layer, field) in layers.iter_mut().zip(fields) {
        if layer.style == LayerStyle::Field && layer.range.is_none() {
            layer.range = Some(color_range(field, &field_style(layer))?);
        }
    }
    Ok(())
}

/// What `frame` shows: its first layer as the colour field, later object layers over it.
pub fn frame_scene(frame: &Frame) -> Result<Scene<'_>, VizError> {
    let (Some(base_spec), Some(base)) = (frame.layers.first(), frame.fields.first()) else {
        return Err(VizError::Frame {
            number: frame.number,
            reason: "has no layers".into(),
        });
    };
    if frame.layers.len() != frame.fields.len() {
        return Err(VizError::Frame {
            number: frame.number,
            reason: format!(
                "has {} layers but {} fields",
                frame.layers.len(),
                frame.fields.len()
            ),
        });
    }
    let mut scene = Scene::new(base, field_style(base_spec));
    for (spec, field) in frame.layers.iter().zip(&frame.fields).skip(1) {
        // The spec validator admits only object layers after the first.
        if spec.style == LayerStyle::Objects {
            scene = scene.with_layer(Layer::Objects(ObjectLayer::new(field)));
        }
    }
    Ok(scene)
}
