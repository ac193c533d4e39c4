// Shows a rendered tile (Rgba8Unorm) in a window: one triangle covering the render pass's
// viewport (the tile's place in the window), the tile sampled across it.

@group(0) @binding(0) var tile: texture_2d<f32>;
@group(0) @binding(1) var tile_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // uv (0,0), (2,0), (0,2): the triangle's visible part is the unit square.
    let uv = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    var out: VertexOut;
    out.position = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.uv = uv;
    return out;
}

// The tile's bytes are display values; a non-sRGB target takes them as they are.
@fragment
fn fs_copy(in: VertexOut) -> @location(0) vec4<f32> {
    return textureSample(tile, tile_sampler, in.uv);
}

// An sRGB target encodes what it is given, so give it the values whose encoding is the tile's
// bytes (otherwise every colour comes out washed out).
@fragment
fn fs_to_srgb(in: VertexOut) -> @location(0) vec4<f32> {
    let c = textureSample(tile, tile_sampler, in.uv);
    let low = c.rgb / 12.92;
    let high = pow((c.rgb + 0.055) / 1.055, vec3<f32>(2.4));
    return vec4<f32>(select(high, low, c.rgb <= vec3<f32>(0.04045)), c.a);
}
