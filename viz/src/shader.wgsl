// Isotach frame shader: one full-screen triangle; every pixel is background, map or colorbar,
// then the CPU-rasterised layers (contours, arrows, objects, graticule, coastlines) are
// composited over it, and the ink mask (text, frame, ticks) on top of everything.

struct Params {
    // Map rectangle in pixels: x, y, width, height.
    map_rect: vec4<f32>,
    // Colorbar rectangle in pixels: x, y, width, height.
    bar_rect: vec4<f32>,
    // Grid: first longitude, longitude step, first latitude, latitude step (degrees).
    grid: vec4<f32>,
    // Grid: columns (lon), rows (lat), 1 when periodic in longitude, unused.
    grid_n: vec4<u32>,
    // Colour range: lo, hi, unused, unused.
    range: vec4<f32>,
    nan_rgba: vec4<f32>,
    ink_rgba: vec4<f32>,
    bg_rgba: vec4<f32>,
    // Projection parameters: equirectangular (left-edge longitude, -, -, -); orthographic
    // (centre lon, sin centre lat, cos centre lat, -); polar (central lon, tan(rim colat / 2), -, -).
    proj: vec4<f32>,
    // Projection kind (0 equirectangular, 1 orthographic, 2 polar north, 3 polar south), unused ×3.
    proj_kind: vec4<u32>,
    // Canvas position of the target's top-left pixel (a wall tile's viewport), unused ×2.
    origin: vec4<f32>,
    // Object ids drawn here (the scene's first layer when it is an object layer): their grid's
    // first longitude, longitude step, first latitude, latitude step.
    ids_grid: vec4<f32>,
    // Columns, rows, 1 when periodic in longitude, 1 when objects are drawn.
    ids_n: vec4<u32>,
    // Fill opacity 0..1, outline width in pixels, 1 when outlined, unused.
    ids_style: vec4<f32>,
    outline_rgba: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: Params;
// R32Float, one texel per grid cell: x = longitude index, y = latitude index. Not filterable.
@group(0) @binding(1) var field_tex: texture_2d<f32>;
// 256×1 Rgba8Unorm colour table.
@group(0) @binding(2) var lut_tex: texture_2d<f32>;
// R8Unorm ink coverage, canvas-sized.
@group(0) @binding(3) var mask_tex: texture_2d<f32>;
// Rgba8Unorm layers over the field (straight alpha), canvas-sized.
@group(0) @binding(4) var overlay_tex: texture_2d<f32>;
// R32Float object ids on their own grid (1×1 and unused when no objects are drawn here).
@group(0) @binding(5) var ids_tex: texture_2d<f32>;

// ColorBrewer Paired, as object_rgb() in src/objects.rs.
const PALETTE = array<vec3<f32>, 12>(
    vec3<f32>(31.0, 120.0, 180.0), vec3<f32>(227.0, 26.0, 28.0), vec3<f32>(51.0, 160.0, 44.0),
    vec3<f32>(255.0, 127.0, 0.0), vec3<f32>(106.0, 61.0, 154.0), vec3<f32>(177.0, 89.0, 40.0),
    vec3<f32>(166.0, 206.0, 227.0), vec3<f32>(251.0, 154.0, 153.0), vec3<f32>(178.0, 223.0, 138.0),
    vec3<f32>(253.0, 191.0, 111.0), vec3<f32>(202.0, 178.0, 214.0), vec3<f32>(255.0, 255.0, 153.0),
);

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // (-1,-1), (3,-1), (-1,3): covers the whole viewport.
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

// NaN and ±infinity count as missing. Tested on the bits, so no fast-math can fold it away.
fn is_missing(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}

// Table entry floor(t * 255 + 0.5) of t clamped to 0..1: the same index as colormap_rgb().
fn lut(t: f32) -> vec4<f32> {
    let idx = i32(floor(clamp(t, 0.0, 1.0) * 255.0 + 0.5));
    return textureLoad(lut_tex, vec2<i32>(idx, 0), 0);
}

fn cell(c: i32, r: i32) -> f32 {
    return textureLoad(field_tex, vec2<i32>(c, r), 0).r;
}

// The field at (lon, lat): bilinear between the four surrounding cells, periodic in longitude
// for global grids, clamped at the first/last rows (the poles); the nearest cell (always one of
// the four) when any of them is missing. Returns (value, 1), or (_, 0) when outside the grid or
// missing. Branch-free apart from the grid-kind test, and no integer division: both are slow on
// software rasterisers.
fn sample_field(lon: f32, lat: f32) -> vec2<f32> {
    let n = i32(params.grid_n.x);
    let m = i32(params.grid_n.y);
    let nf = f32(n);
    let mf = f32(m);

    let r = (lat - params.grid.z) / params.grid.w;
    var inside = r >= -0.5 && r <= mf - 0.5;
    let rc = clamp(r, 0.0, mf - 1.0);
    let r0 = min(i32(floor(rc)), m - 1);
    let r1 = min(r0 + 1, m - 1);
    let fr = rc - f32(r0);

    var c0: i32;
    var c1: i32;
    var fc: f32;
    var c = (lon - params.grid.x) / params.grid.y;
    if (params.grid_n.z == 1u) {
        // Into 0..n; rounding can land exactly on n, which is column 0 again.
        c = c - floor(c / nf) * nf;
        let cf = floor(c);
        fc = c - cf;
        c0 = min(i32(cf), n - 1);
        c1 = select(c0 + 1, 0, c0 + 1 >= n);
    } else {
        // A regional grid: take the longitude in the turn starting at the grid's first one, and
        // also try one turn west (for the half cell before the first longitude).
        let lon_w = lon - floor((lon - params.grid.x) / 360.0) * 360.0;
        c = (lon_w - params.grid.x) / params.grid.y;
        if (c < -0.5 || c > nf - 0.5) {
            c = (lon_w - 360.0 - params.grid.x) / params.grid.y;
        }
        inside = inside && c >= -0.5 && c <= nf - 0.5;
        let cc = clamp(c, 0.0, nf - 1.0);
        c0 = min(i32(floor(cc)), n - 1);
        c1 = min(c0 + 1, n - 1);
        fc = cc - f32(c0);
    }

    let v00 = cell(c0, r0);
    let v10 = cell(c1, r0);
    let v01 = cell(c0, r1);
    let v11 = cell(c1, r1);
    let bilinear = mix(mix(v00, v10, fc), mix(v01, v11, fc), fr);
    let nearest = select(select(v00, v10, fc >= 0.5), select(v01, v11, fc >= 0.5), fr >= 0.5);
    let any_missing = is_missing(v00) || is_missing(v10) || is_missing(v01) || is_missing(v11);
    let v = select(bilinear, nearest, any_missing);
    return vec2<f32>(v, select(0.0, 1.0, inside && !is_missing(v)));
}

// The (lon, lat) shown at canvas point p inside the map rectangle mr, and 1 when it is on the
// globe (0 outside the disc of the orthographic and polar projections). The CPU mirror is
// Projection::unproject in src/projection.rs.
fn unproject(p: vec2<f32>, mr: vec4<f32>) -> vec3<f32> {
    let kind = params.proj_kind.x;
    if (kind == 0u) {
        let lon = (p.x - mr.x) / mr.z * 360.0 + params.proj.x;
        let lat = 90.0 - (p.y - mr.y) / mr.w * 180.0;
        return vec3<f32>(lon, lat, 1.0);
    }
    let x = (p.x - mr.x) / mr.z * 2.0 - 1.0;
    let y = 1.0 - (p.y - mr.y) / mr.w * 2.0;
    let rho2 = x * x + y * y;
    if (rho2 > 1.0) {
        return vec3<f32>(0.0, 0.0, 0.0);
    }
    if (kind == 1u) {
        let z = sqrt(1.0 - rho2);
        let s0 = params.proj.y;
        let c0 = params.proj.z;
        let lat = degrees(asin(clamp(y * c0 + z * s0, -1.0, 1.0)));
        let lon = params.proj.x + degrees(atan2(x, z * c0 - y * s0));
        return vec3<f32>(lon, lat, 1.0);
    }
    let colat = degrees(2.0 * atan(sqrt(rho2) * params.proj.y));
    if (kind == 2u) {
        return vec3<f32>(params.proj.x + degrees(atan2(x, -y)), 90.0 - colat, 1.0);
    }
    return vec3<f32>(params.proj.x + degrees(atan2(x, y)), colat - 90.0, 1.0);
}

fn inside(p: vec2<f32>, rect: vec4<f32>) -> bool {
    return p.x >= rect.x && p.x < rect.x + rect.z && p.y >= rect.y && p.y < rect.y + rect.w;
}

// The object id shown at canvas pixel centre p: the nearest cell of the id grid (as nearest()
// in src/sample.rs), 0 for no object (off the globe, outside the grid, missing), -1 off the map.
fn object_at(p: vec2<f32>) -> f32 {
    let mr = params.map_rect;
    if (!inside(p, mr)) {
        return -1.0;
    }
    let ll = unproject(p, mr);
    if (ll.z < 0.5) {
        return 0.0;
    }
    let n = f32(params.ids_n.x);
    let m = f32(params.ids_n.y);
    let r = (ll.y - params.ids_grid.z) / params.ids_grid.w;
    if (r < -0.5 || r > m - 0.5) {
        return 0.0;
    }
    var c = (ll.x - params.ids_grid.x) / params.ids_grid.y;
    if (params.ids_n.z == 1u) {
        c = c - floor(c / n) * n;
    } else {
        let turn = 360.0 / abs(params.ids_grid.y);
        c = c - floor(c / turn) * turn;
        if (c > n - 0.5) {
            c = c - turn;
        }
        if (c < -0.5 || c > n - 0.5) {
            return 0.0;
        }
    }
    // Rounding half away from zero, as the CPU does (WGSL's round() rounds half to even).
    let row = min(i32(floor(max(r, 0.0) + 0.5)), i32(params.ids_n.y) - 1);
    let col = i32(floor(max(c, 0.0) + 0.5)) % i32(params.ids_n.x);
    let v = textureLoad(ids_tex, vec2<i32>(col, row), 0).r;
    if (is_missing(v)) {
        return 0.0;
    }
    return floor(v + 0.5);
}

// The object layer's colour at canvas pixel centre p over `base`: the fill, or the outline on
// pixels within the line width of another id (4-neighbours), as ObjectLayer::draw on the CPU.
fn objects_over(p: vec2<f32>, base: vec4<f32>) -> vec4<f32> {
    let id = object_at(p);
    if (id <= 0.0) {
        return base;
    }
    let width = i32(params.ids_style.y);
    if (params.ids_style.z > 0.5) {
        for (var k = 1; k <= width; k = k + 1) {
            let d = f32(k);
            if (object_at(p + vec2<f32>(-d, 0.0)) != id || object_at(p + vec2<f32>(d, 0.0)) != id
                || object_at(p + vec2<f32>(0.0, -d)) != id || object_at(p + vec2<f32>(0.0, d)) != id) {
                return vec4<f32>(mix(base.rgb, params.outline_rgba.rgb, params.outline_rgba.a), base.a);
            }
        }
    }
    let rgb = PALETTE[u32(id) % 12u] / 255.0;
    return vec4<f32>(mix(base.rgb, rgb, params.ids_style.x), base.a);
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    // pos.xy is the pixel centre in the target, (x + 0.5, y + 0.5), y down; p is on the canvas.
    let t = vec2<i32>(pos.xy);
    let p = pos.xy + params.origin.xy;
    var base = params.bg_rgba;
    let mr = params.map_rect;
    let br = params.bar_rect;
    if (inside(p, mr)) {
        let ll = unproject(p, mr);
        if (ll.z > 0.5) {
            let s = sample_field(ll.x, ll.y);
            if (s.y > 0.5) {
                base = lut((s.x - params.range.x) / (params.range.y - params.range.x));
            } else {
                base = params.nan_rgba;
            }
        }
    } else if (inside(p, br)) {
        base = lut((p.x - br.x) / br.z);
    }
    if (params.ids_n.w == 1u) {
        base = objects_over(p, base);
    }
    let layers = textureLoad(overlay_tex, t, 0);
    base = mix(base, vec4<f32>(layers.rgb, base.a), layers.a);
    let ink = textureLoad(mask_tex, t, 0).r;
    return mix(base, params.ink_rgba, ink);
}
