//! The wgpu renderer: draws into a texture, read back as an image or copied into a window's tile.

use std::sync::mpsc;

use isotach_core::{Colormap, Field};

use crate::colormap::lut_rgba;
use crate::layout::Layout;
use crate::overlay::Overlay;
use crate::projection::MapView;
use crate::range::color_range;
use crate::scene::Scene;
use crate::text::{Annotations, build_mask, format_time_line, format_title};
use crate::{Canvas, PixelRect, RgbaImage, ScalarStyle, VizError};

/// Colour of text, frame and ticks.
const INK_RGBA: [u8; 4] = [32, 32, 32, 255];
/// Canvas background.
const BACKGROUND_RGBA: [u8; 4] = [255, 255, 255, 255];
/// Target format: linear 8-bit, so colours match the tables bit for bit.
pub(crate) const TARGET_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// The shader's uniform block (see `shader.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    map_rect: [f32; 4],
    bar_rect: [f32; 4],
    grid: [f32; 4],
    grid_n: [u32; 4],
    range: [f32; 4],
    nan_rgba: [f32; 4],
    ink_rgba: [f32; 4],
    bg_rgba: [f32; 4],
    /// Projection parameters (see `Projection::shader_params`).
    proj: [f32; 4],
    /// Projection kind, unused ×3.
    proj_kind: [u32; 4],
    /// Canvas position of the target's top-left pixel (x, y), unused ×2.
    origin: [f32; 4],
    /// Object ids drawn by the shader: their grid (lon0, dlon, lat0, dlat).
    ids_grid: [f32; 4],
    /// Columns, rows, periodic, enabled.
    ids_n: [u32; 4],
    /// Fill opacity, outline width in pixels, outlined, unused.
    ids_style: [f32; 4],
    outline_rgba: [f32; 4],
}

/// The object part at the end of [`Params`], written on its own.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ObjectParams {
    ids_grid: [f32; 4],
    ids_n: [u32; 4],
    ids_style: [f32; 4],
    outline_rgba: [f32; 4],
}

fn rgba_f32(c: [u8; 4]) -> [f32; 4] {
    c.map(|v| f32::from(v) / 255.0)
}

/// Textures and buffers sized by the viewport.
struct FrameTargets {
    /// Width and height of the viewport drawn.
    canvas: Canvas,
    target: wgpu::Texture,
    target_view: wgpu::TextureView,
    mask: wgpu::Texture,
    mask_view: wgpu::TextureView,
    /// The layers over the field (RGBA, straight alpha).
    overlay: wgpu::Texture,
    overlay_view: wgpu::TextureView,
    /// True while the overlay texture holds nothing (as created), so layer-less frames skip
    /// the upload.
    overlay_blank: bool,
    readback: wgpu::Buffer,
    padded_bytes_per_row: u32,
    /// What the mask now holds (annotations and the canvas part); `None` until first written.
    mask_notes: Option<(Annotations, PixelRect)>,
}

/// The field texture, sized by the grid.
struct FieldTexture {
    nlon: u32,
    nlat: u32,
    texture: wgpu::Texture,
    view: wgpu::TextureView,
}

/// Grid placement for the shader, checked regular.
struct GridParams {
    lon0: f32,
    dlon: f32,
    lat0: f32,
    dlat: f32,
    periodic: bool,
}

/// Draws [`Field`]s into RGBA images with wgpu, headless or for a window's tiles.
///
/// The device, pipeline and lookup texture live as long as the renderer; the target, mask and
/// read-back buffer are recreated only when the canvas size changes, the field texture only when
/// the grid shape changes, and the ink mask is re-uploaded only when the annotations change.
pub struct Renderer {
    adapter: wgpu::Adapter,
    adapter_info: wgpu::AdapterInfo,
    max_texture: u32,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::RenderPipeline,
    bind_group_layout: wgpu::BindGroupLayout,
    uniforms: wgpu::Buffer,
    lut: wgpu::Texture,
    lut_view: wgpu::TextureView,
    lut_colormap: Option<Colormap>,
    frame: Option<FrameTargets>,
    field: Option<FieldTexture>,
    /// Object ids drawn by the shader (1×1 when a frame has none).
    ids: Option<FieldTexture>,
    bind_group: Option<wgpu::BindGroup>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("adapter", &self.adapter_summary())
            .field("max_texture", &self.max_texture)
            .field("canvas", &self.frame.as_ref().map(|fr| fr.canvas))
            .field("grid", &self.field.as_ref().map(|ft| (ft.nlat, ft.nlon)))
            .finish_non_exhaustive()
    }
}

/// Preference order of adapters: real GPUs first, then software; Vulkan before GL.
fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = if info.backend == wgpu::Backend::Vulkan {
        0
    } else {
        1
    };
    (device, backend)
}

/// "Vulkan, GL" for the backends in `backends`; "none" when empty.
fn backend_names(backends: wgpu::Backends) -> String {
    let names: Vec<&str> = [
        (wgpu::Backends::VULKAN, "Vulkan"),
        (wgpu::Backends::GL, "GL"),
        (wgpu::Backends::METAL, "Metal"),
        (wgpu::Backends::DX12, "DX12"),
        (wgpu::Backends::BROWSER_WEBGPU, "WebGPU"),
        (wgpu::Backends::NOOP, "noop"),
    ]
    .into_iter()
    .filter(|(b, _)| backends.contains(*b))
    .map(|(_, name)| name)
    .collect();
    if names.is_empty() {
        "none (check WGPU_BACKEND; this build has Vulkan and GL)".to_owned()
    } else {
        names.join(", ")
    }
}

fn summary(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

fn gpu_error(during: &'static str) -> impl FnOnce(wgpu::Error) -> VizError {
    move |e| VizError::Gpu {
        during,
        message: e.to_string(),
    }
}

impl Renderer {
    /// Opens any adapter wgpu can find (a GPU, or Mesa's lavapipe on the CPU), preferring real
    /// GPUs and Vulkan. `WGPU_BACKEND` (e.g. `gl`) narrows the backends tried.
    ///
    /// Without any adapter this returns [`VizError::NoAdapter`], whose message lists the backends
    /// tried and says to install Mesa's software Vulkan (`apt-get install mesa-vulkan-drivers`).
    pub fn new_headless() -> Result<Self, VizError> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let tried = desc.backends & wgpu::Instance::enabled_backend_features();
        Self::open(&wgpu::Instance::new(desc), tried, &[])
    }

    /// Opens the preferred adapter of `instance` among those that can present to every one of
    /// `surfaces` (none: headless); `tried` names the backends `instance` was created with, for
    /// the error when no adapter fits.
    pub(crate) fn open(
        instance: &wgpu::Instance,
        tried: wgpu::Backends,
        surfaces: &[&wgpu::Surface<'_>],
    ) -> Result<Self, VizError> {
        let mut adapters = pollster::block_on(instance.enumerate_adapters(tried));
        adapters.retain(|a| surfaces.iter().all(|s| a.is_surface_supported(s)));
        adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
        let adapter = match adapters.into_iter().next() {
            Some(adapter) => adapter,
            None => {
                // Ask again the ordinary way: its error says what each backend found.
                let options = wgpu::RequestAdapterOptions {
                    compatible_surface: surfaces.first().copied(),
                    ..Default::default()
                };
                match pollster::block_on(instance.request_adapter(&options)) {
                    Ok(adapter) => adapter,
                    Err(e) => {
                        return Err(VizError::NoAdapter {
                            tried: backend_names(tried),
                            detail: e.to_string(),
                        });
                    }
                }
            }
        };
        let adapter_info = adapter.get_info();
        tracing::info!(adapter = %summary(&adapter_info), "isotach-viz: adapter chosen");

        // Defaults that every backend meets, with the adapter's own texture sizes so big
        // canvases and fine grids fit where the hardware allows.
        let limits = wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits());
        let max_texture = limits.max_texture_dimension_2d;
        let device_desc = wgpu::DeviceDescriptor {
            label: Some("isotach-viz"),
            required_features: wgpu::Features::empty(),
            required_limits: limits,
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&device_desc)).map_err(|e| {
                VizError::RequestDevice {
                    adapter: summary(&adapter_info),
                    message: e.to_string(),
                }
            })?;

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("isotach-viz frame shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shader.wgsl").into()),
        });
        let texture_entry = |binding: u32| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: false },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("isotach-viz bindings"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(
                            std::mem::size_of::<Params>() as u64
                        ),
                    },
                    count: None,
                },
                texture_entry(1),
                texture_entry(2),
                texture_entry(3),
                texture_entry(4),
                texture_entry(5),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("isotach-viz pipeline layout"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("isotach-viz frame pipeline"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(TARGET_FORMAT.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("isotach-viz params"),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let lut = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("isotach-viz colormap"),
            size: wgpu::Extent3d {
                width: 256,
                height: 1,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let lut_view = lut.create_view(&wgpu::TextureViewDescriptor::default());
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(gpu_error("creating the pipeline")(e));
        }

        Ok(Self {
            adapter,
            adapter_info,
            max_texture,
            device,
            queue,
            pipeline,
            bind_group_layout,
            uniforms,
            lut,
            lut_view,
            lut_colormap: None,
            frame: None,
            field: None,
            ids: None,
            bind_group: None,
        })
    }

    /// The adapter in use, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn adapter_summary(&self) -> String {
        summary(&self.adapter_info)
    }

    /// wgpu's description of the adapter in use.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.adapter_info
    }

    /// The largest canvas side (and grid side) this adapter accepts, in pixels.
    pub fn max_texture_size(&self) -> u32 {
        self.max_texture
    }

    /// The adapter, device and queue, for presenting what this renderer draws on their surfaces.
    pub(crate) fn gpu(&self) -> (&wgpu::Adapter, &wgpu::Device, &wgpu::Queue) {
        (&self.adapter, &self.device, &self.queue)
    }

    /// Renders `field` in `style` onto a `canvas`-sized image: title, time line, map (the default
    /// equirectangular projection, central longitude 180), colorbar.
    pub fn render(
        &mut self,
        field: &Field,
        style: &ScalarStyle,
        canvas: Canvas,
    ) -> Result<RgbaImage, VizError> {
        self.render_scene(&Scene::new(field, style.clone()), canvas)
    }

    /// Renders `scene` onto a `canvas`-sized image: title, time line, the field in the scene's
    /// projection with its layers drawn over it in order, colorbar.
    pub fn render_scene(
        &mut self,
        scene: &Scene<'_>,
        canvas: Canvas,
    ) -> Result<RgbaImage, VizError> {
        let whole = PixelRect {
            x: 0,
            y: 0,
            width: canvas.width_px,
            height: canvas.height_px,
        };
        self.render_viewport(scene, canvas, whole)
    }

    /// Renders the part `viewport` of `scene` laid out on `canvas`: the image is the viewport's
    /// size, and its pixels equal that rectangle of [`render_scene`](Self::render_scene) on the
    /// whole canvas. Only the viewport is rasterised and drawn, so a wall tile costs its own size
    /// whatever the wall's; the canvas itself may exceed the adapter's texture limit.
    pub fn render_viewport(
        &mut self,
        scene: &Scene<'_>,
        canvas: Canvas,
        viewport: PixelRect,
    ) -> Result<RgbaImage, VizError> {
        self.render_with(scene, canvas, viewport, Self::read_back)
    }

    /// Renders the part `viewport` of `scene` laid out on `canvas`, as
    /// [`render_viewport`](Self::render_viewport) does, into `destination` on the GPU (a
    /// texture of the viewport's size and the target's format, `Rgba8Unorm`, with `COPY_DST`
    /// usage): nothing is read back, so a window shows the same pixels without the round trip.
    pub(crate) fn render_viewport_into(
        &mut self,
        scene: &Scene<'_>,
        canvas: Canvas,
        viewport: PixelRect,
        destination: &wgpu::Texture,
    ) -> Result<(), VizError> {
        self.render_with(scene, canvas, viewport, |renderer, mut encoder| {
            let Some(frame) = &renderer.frame else {
                return Err(VizError::Gpu {
                    during: "copying the frame",
                    message: "internal: no target".into(),
                });
            };
            encoder.copy_texture_to_texture(
                frame.target.as_image_copy(),
                destination.as_image_copy(),
                frame.target.size(),
            );
            let submitted = renderer.queue.submit([encoder.finish()]);
            // Done means drawn: a wall node says it is ready only once the GPU has finished.
            renderer
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(submitted),
                    timeout: None,
                })
                .map_err(|e| VizError::Gpu {
                    during: "waiting for the frame",
                    message: e.to_string(),
                })?;
            Ok(())
        })
    }

    /// Checks, uploads and encodes the drawing of `viewport`, then hands the encoder to
    /// `deliver`, which sends the target where it goes; GPU errors of either are caught.
    fn render_with<T>(
        &mut self,
        scene: &Scene<'_>,
        canvas: Canvas,
        viewport: PixelRect,
        deliver: impl FnOnce(&mut Self, wgpu::CommandEncoder) -> Result<T, VizError>,
    ) -> Result<T, VizError> {
        let field = scene.field;
        let style = &scene.style;
        // Check everything on the CPU first, so wgpu only ever sees valid requests.
        if viewport.width == 0
            || viewport.height == 0
            || viewport.right() > canvas.width_px
            || viewport.bottom() > canvas.height_px
        {
            return Err(VizError::Viewport {
                viewport,
                width: canvas.width_px,
                height: canvas.height_px,
            });
        }
        if viewport.width > self.max_texture || viewport.height > self.max_texture {
            return Err(VizError::CanvasTooLarge {
                width: viewport.width,
                height: viewport.height,
                max: self.max_texture,
            });
        }
        let view = MapView::new(canvas, scene.projection)?;
        let grid = grid_params(field, self.max_texture)?;
        let [lo, hi] = color_range(field, style)?;
        let notes = Annotations {
            title: format_title(field),
            time_line: format_time_line(field),
            units: field.units.clone(),
            lo,
            hi,
            disc: scene.projection.is_disc(),
        };
        // An object layer at the bottom of the stack is drawn by the shader: per pixel on the
        // GPU instead of rasterised on the CPU (hundreds of milliseconds for a 4K tile).
        let gpu_objects = scene.gpu_objects();
        let ids_grid = match gpu_objects {
            Some(layer) => {
                crate::contour::check_field_shape("objects", layer.ids)?;
                Some(grid_params(layer.ids, self.max_texture)?)
            }
            None => None,
        };
        let cpu_layers = usize::from(gpu_objects.is_some());
        let overlay = if scene.layers.len() > cpu_layers {
            Some(scene.draw_layers(&view, viewport, cpu_layers)?)
        } else {
            None
        };

        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom_scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        self.ensure_frame(Canvas::new(viewport.width, viewport.height));
        let (nlat, nlon) = field.grid.shape();
        self.ensure_field(nlon as u32, nlat as u32);
        self.ensure_lut(style.colormap);
        let objects = gpu_objects.zip(ids_grid.as_ref());
        self.upload_ids(objects.map(|(layer, _)| layer.ids));
        self.upload(
            field,
            &notes,
            &view,
            viewport,
            &grid,
            [lo, hi],
            style.nan_rgba,
        );
        self.set_object_params(objects, view.layout.scale);
        self.upload_overlay(overlay.as_ref());
        let result = self
            .encode_frame()
            .and_then(|encoder| deliver(self, encoder));
        if let Some(e) = pollster::block_on(oom_scope.pop()) {
            self.drop_cached();
            return Err(gpu_error("rendering (out of memory)")(e));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            self.drop_cached();
            return Err(gpu_error("rendering")(e));
        }
        result
    }

    /// Writes the layers' overlay, or clears it when a frame has none (only if not clear yet).
    fn upload_overlay(&mut self, overlay: Option<&Overlay>) {
        let Some(frame) = &mut self.frame else {
            return;
        };
        let (w, h) = (frame.canvas.width_px, frame.canvas.height_px);
        let blank;
        let bytes = match overlay {
            Some(o) => &o.rgba,
            None if frame.overlay_blank => return,
            None => {
                blank = vec![0u8; w as usize * h as usize * 4];
                &blank
            }
        };
        self.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &frame.overlay,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(w * 4),
                rows_per_image: Some(h),
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
        frame.overlay_blank = overlay.is_none();
    }

    /// Forgets size-dependent resources (after an error, so the next frame starts clean).
    fn drop_cached(&mut self) {
        self.frame = None;
        self.field = None;
        self.ids = None;
        self.bind_group = None;
    }

    fn ensure_frame(&mut self, canvas: Canvas) {
        if self.frame.as_ref().is_some_and(|f| f.canvas == canvas) {
            return;
        }
        let size = wgpu::Extent3d {
            width: canvas.width_px,
            height: canvas.height_px,
            depth_or_array_layers: 1,
        };
        let target = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("isotach-viz target"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: TARGET_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let mask = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("isotach-viz ink mask"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let overlay = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("isotach-viz layers"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let align = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let padded_bytes_per_row = (canvas.width_px * 4).div_ceil(align) * align;
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("isotach-viz read-back"),
            size: u64::from(padded_bytes_per_row) * u64::from(canvas.height_px),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        self.frame = Some(FrameTargets {
            canvas,
            target_view: target.create_view(&wgpu::TextureViewDescriptor::default()),
            target,
            mask_view: mask.create_view(&wgpu::TextureViewDescriptor::default()),
            mask,
            overlay_view: overlay.create_view(&wgpu::TextureViewDescriptor::default()),
            overlay,
            // New textures are zeroed by wgpu.
            overlay_blank: true,
            readback,
            padded_bytes_per_row,
            mask_notes: None,
        });
        self.bind_group = None;
    }

    fn ensure_field(&mut self, nlon: u32, nlat: u32) {
        if self
            .field
            .as_ref()
            .is_some_and(|f| f.nlon == nlon && f.nlat == nlat)
        {
            return;
        }
        self.field = Some(self.field_texture("isotach-viz field", nlon, nlat));
        self.bind_group = None;
    }

    /// Uploads the object ids drawn by the shader (a 1×1 placeholder when there are none).
    fn upload_ids(&mut self, ids: Option<&Field>) {
        let (nlon, nlat) = ids.map_or((1, 1), |f| {
            let (nlat, nlon) = f.grid.shape();
            (nlon as u32, nlat as u32)
        });
        if !self
            .ids
            .as_ref()
            .is_some_and(|t| t.nlon == nlon && t.nlat == nlat)
        {
            self.ids = Some(self.field_texture("isotach-viz object ids", nlon, nlat));
            self.bind_group = None;
        }
        let (Some(ids), Some(texture)) = (ids, &self.ids) else {
            return;
        };
        self.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(&ids.values),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(nlon * 4),
                rows_per_image: Some(nlat),
            },
            wgpu::Extent3d {
                width: nlon,
                height: nlat,
                depth_or_array_layers: 1,
            },
        );
    }

    /// Writes the object part of the uniforms (after [`Self::upload`] wrote the rest).
    fn set_object_params(
        &mut self,
        objects: Option<(&crate::ObjectLayer<'_>, &GridParams)>,
        scale: u32,
    ) {
        let Some((layer, grid)) = objects else {
            return;
        };
        let (nlat, nlon) = layer.ids.grid.shape();
        let tail = ObjectParams {
            ids_grid: [grid.lon0, grid.dlon, grid.lat0, grid.dlat],
            ids_n: [nlon as u32, nlat as u32, u32::from(grid.periodic), 1],
            ids_style: [
                f32::from(layer.fill_alpha) / 255.0,
                crate::overlay::line_width(scale) as f32,
                if layer.outline_rgba.is_some() {
                    1.0
                } else {
                    0.0
                },
                0.0,
            ],
            outline_rgba: rgba_f32(layer.outline_rgba.unwrap_or([0, 0, 0, 0])),
        };
        let offset = std::mem::offset_of!(Params, ids_grid) as u64;
        self.queue
            .write_buffer(&self.uniforms, offset, bytemuck::bytes_of(&tail));
    }

    fn field_texture(&self, label: &'static str, nlon: u32, nlat: u32) -> FieldTexture {
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: nlon,
                height: nlat,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        FieldTexture {
            nlon,
            nlat,
            texture,
            view,
        }
    }

    fn ensure_lut(&mut self, colormap: Colormap) {
        if self.lut_colormap == Some(colormap) {
            return;
        }
        self.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.lut,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &lut_rgba(colormap),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(256 * 4),
                rows_per_image: Some(1),
            },
            wgpu::Extent3d {
                width: 256,
                height: 1,
                depth_or_array_layers: 1,
            },
        );
        self.lut_colormap = Some(colormap);
    }

    /// Writes the field values, the mask (when its content changed) and the uniforms.
    #[allow(clippy::too_many_arguments)]
    fn upload(
        &mut self,
        field: &Field,
        notes: &Annotations,
        view: &MapView,
        viewport: PixelRect,
        grid: &GridParams,
        [lo, hi]: [f32; 2],
        nan_rgba: [u8; 4],
    ) {
        if let Some(ft) = &self.field {
            self.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &ft.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                bytemuck::cast_slice(&field.values),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(ft.nlon * 4),
                    rows_per_image: Some(ft.nlat),
                },
                wgpu::Extent3d {
                    width: ft.nlon,
                    height: ft.nlat,
                    depth_or_array_layers: 1,
                },
            );
        }
        if let Some(frame) = &mut self.frame
            && frame
                .mask_notes
                .as_ref()
                .is_none_or(|(n, v)| n != notes || *v != viewport)
        {
            let mask = build_mask(&view.layout, notes, viewport);
            self.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &frame.mask,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                &mask.data,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(frame.canvas.width_px),
                    rows_per_image: Some(frame.canvas.height_px),
                },
                wgpu::Extent3d {
                    width: frame.canvas.width_px,
                    height: frame.canvas.height_px,
                    depth_or_array_layers: 1,
                },
            );
            frame.mask_notes = Some((notes.clone(), viewport));
        }
        let layout: &Layout = &view.layout;
        let (proj_kind, proj) = view.projection.shader_params();
        let params = Params {
            map_rect: layout.map.as_f32(),
            bar_rect: layout.colorbar.as_f32(),
            grid: [grid.lon0, grid.dlon, grid.lat0, grid.dlat],
            grid_n: [
                field.grid.lon.len() as u32,
                field.grid.lat.len() as u32,
                u32::from(grid.periodic),
                0,
            ],
            range: [lo, hi, 0.0, 0.0],
            nan_rgba: rgba_f32(nan_rgba),
            ink_rgba: rgba_f32(INK_RGBA),
            bg_rgba: rgba_f32(BACKGROUND_RGBA),
            proj,
            proj_kind: [proj_kind, 0, 0, 0],
            origin: [viewport.x as f32, viewport.y as f32, 0.0, 0.0],
            // No objects unless set_object_params says otherwise.
            ids_grid: [0.0; 4],
            ids_n: [1, 1, 0, 0],
            ids_style: [0.0; 4],
            outline_rgba: [0.0; 4],
        };
        self.queue
            .write_buffer(&self.uniforms, 0, bytemuck::bytes_of(&params));
    }

    /// Records the frame's render pass into the target.
    fn encode_frame(&mut self) -> Result<wgpu::CommandEncoder, VizError> {
        let (Some(frame), Some(field), Some(ids)) = (&self.frame, &self.field, &self.ids) else {
            return Err(VizError::Gpu {
                during: "rendering",
                message: "internal: resources missing".into(),
            });
        };
        let bind_group = self.bind_group.get_or_insert_with(|| {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("isotach-viz bind group"),
                layout: &self.bind_group_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.uniforms.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&field.view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::TextureView(&self.lut_view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: wgpu::BindingResource::TextureView(&frame.mask_view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: wgpu::BindingResource::TextureView(&frame.overlay_view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: wgpu::BindingResource::TextureView(&ids.view),
                    },
                ],
            })
        });

        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("isotach-viz frame"),
            });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("isotach-viz frame pass"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &frame.target_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::WHITE),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &*bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        Ok(encoder)
    }

    /// Submits `encoder` with a copy of the target into the read-back buffer, and returns the
    /// frame unpadded.
    fn read_back(&mut self, mut encoder: wgpu::CommandEncoder) -> Result<RgbaImage, VizError> {
        let Some(frame) = &self.frame else {
            return Err(VizError::Gpu {
                during: "reading the frame",
                message: "internal: no target".into(),
            });
        };
        let (width, height) = (frame.canvas.width_px, frame.canvas.height_px);
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &frame.target,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &frame.readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(frame.padded_bytes_per_row),
                    rows_per_image: Some(height),
                },
            },
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
        self.queue.submit([encoder.finish()]);

        let (tx, rx) = mpsc::channel();
        frame
            .readback
            .map_async(wgpu::MapMode::Read, .., move |result| {
                // The receiver outlives the poll below; a send error cannot happen in practice.
                let _ = tx.send(result);
            });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| VizError::Gpu {
                during: "waiting for the frame",
                message: e.to_string(),
            })?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(VizError::Gpu {
                    during: "mapping the read-back buffer",
                    message: e.to_string(),
                });
            }
            Err(_) => {
                return Err(VizError::Gpu {
                    during: "mapping the read-back buffer",
                    message: "the map callback never ran".into(),
                });
            }
        }
        let row_bytes = width as usize * 4;
        let mut pixels = Vec::with_capacity(row_bytes * height as usize);
        {
            let view = frame
                .readback
                .get_mapped_range(..)
                .map_err(|e| VizError::Gpu {
                    during: "reading the frame",
                    message: e.to_string(),
                })?;
            for row in view.chunks_exact(frame.padded_bytes_per_row as usize) {
                pixels.extend_from_slice(&row[..row_bytes]);
            }
        }
        frame.readback.unmap();
        RgbaImage::new(width, height, pixels)
    }
}

/// Checks the field against its grid and reads the grid's placement.
fn grid_params(field: &Field, max_texture: u32) -> Result<GridParams, VizError> {
    let (nlat, nlon) = field.grid.shape();
    let grid_err = |reason: String| VizError::Grid {
        variable: field.variable.clone(),
        nlat,
        nlon,
        reason,
    };
    if field.values.len() != nlat * nlon {
        return Err(VizError::FieldShape {
            variable: field.variable.clone(),
            len: field.values.len(),
            nlat,
            nlon,
            expected: nlat * nlon,
        });
    }
    if nlat < 2 || nlon < 2 {
        return Err(grid_err(
            "at least 2 latitudes and 2 longitudes are needed".into(),
        ));
    }
    if nlat > max_texture as usize || nlon > max_texture as usize {
        return Err(grid_err(format!(
            "more than the adapter's maximum texture size of {max_texture} per side"
        )));
    }
    let regular = |name: &str, coords: &[f64]| -> Result<f64, VizError> {
        let step = coords[1] - coords[0];
        if !step.is_finite() || step == 0.0 {
            return Err(grid_err(format!("{name} step {step} is not usable")));
        }
        for (i, &c) in coords.iter().enumerate() {
            let expected = coords[0] + i as f64 * step;
            if (c - expected).abs() > 1e-3 * step.abs() {
                return Err(grid_err(format!(
                    "{name} is not evenly spaced: {name}[{i}] = {c}, expected {expected} for step {step}"
                )));
            }
        }
        Ok(step)
    };
    let dlon = regular("longitude", &field.grid.lon)?;
    let dlat = regular("latitude", &field.grid.lat)?;
    Ok(GridParams {
        lon0: field.grid.lon[0] as f32,
        dlon: dlon as f32,
        lat0: field.grid.lat[0] as f32,
        dlat: dlat as f32,
        periodic: field.grid.is_global_in_lon(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use isotach_core::LatLonGrid;

    use super::*;

    fn field(grid: LatLonGrid, values: Vec<f32>) -> Field {
        Field {
            variable: "t2m".into(),
            units: "K".into(),
            long_name: "2 metre temperature".into(),
            step: 0,
            time: chrono::DateTime::UNIX_EPOCH,
            grid: Arc::new(grid),
            values,
        }
    }

    #[test]
    fn renderer_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Renderer>();
    }

    #[test]
    fn grid_checks() {
        let g = LatLonGrid::regular(30.0);
        let n = g.len();
        let ok =
            grid_params(&field(g.clone(), vec![0.0; n]), 16384).unwrap_or_else(|e| panic!("{e}"));
        assert!(ok.periodic);
        assert_eq!(
            (ok.lon0, ok.dlon, ok.lat0, ok.dlat),
            (0.0, 30.0, 90.0, -30.0)
        );

        let err = grid_params(&field(g.clone(), vec![0.0; 5]), 16384)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("field t2m: 5 values do not match the grid shape 7 lat × 12 lon = 84")
        );

        let err = grid_params(&field(g.clone(), vec![0.0; n]), 8)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("maximum texture size of 8"), "{err}");

        let mut bent = g;
        bent.lon[3] += 7.0;
        let err = grid_params(&field(bent, vec![0.0; n]), 16384)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("longitude is not evenly spaced"), "{err}");
    }

    #[test]
    fn no_adapter_message_names_backends_and_the_fix() {
        let tried = backend_names(wgpu::Backends::VULKAN | wgpu::Backends::GL);
        assert_eq!(tried, "Vulkan, GL");
        let e = VizError::NoAdapter {
            tried,
            detail: "vulkan drivers/libraries could not be loaded".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("backends tried: Vulkan, GL"), "{msg}");
        assert!(msg.contains("apt-get install mesa-vulkan-drivers"), "{msg}");
        assert!(backend_names(wgpu::Backends::empty()).starts_with("none"));
    }
}
