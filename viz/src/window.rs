//! Windowed wall nodes: one winit window per tile the node drives, showing what the renderer drew
//! for that tile when the wall's barrier releases the frame.
//!
//! winit's event loop must own the main thread, so [`run_window_node`] runs it there and the node
//! (the frame stream, the barrier, the renderer) on a thread of its own with a tokio runtime. The
//! renderer draws each tile into a texture on the GPU (no read-back); on the present order the
//! node asks the event loop, through an [`EventLoopProxy`], to copy those textures into the
//! windows' surfaces and present them, and waits for the answer, which carries the present time.
//! Closing a window, or the caller's stop future (Ctrl-C in `isotach wall`), ends both threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use chrono::{DateTime, Utc};
use isotach_proto::connect::ConnectError;
use winit::application::ApplicationHandler;
use winit::dpi::{PhysicalPosition, PhysicalSize};
use winit::error::EventLoopError;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::monitor::MonitorHandle;
use winit::window::{Fullscreen, Window, WindowId};

use crate::node::{NodeConfig, NodeSummary, drive_node, node_error};
use crate::present::{Present, Tile, node_tiles};
use crate::renderer::TARGET_FORMAT;
use crate::{Canvas, Renderer, Scene, VizError};

/// How a windowed node places its windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowOptions {
    /// Borderless fullscreen: tile k of the node (in the wall file's order) on monitor k (in the
    /// order the window system lists them, e.g. `xrandr --listmonitors`). Otherwise each tile gets
    /// a window of the tile's size, placed as the tiles sit on the wall, all scaled down alike
    /// when the node's tiles do not fit on the primary monitor.
    pub fullscreen: bool,
}

/// Whether a window system is named in the environment: `DISPLAY` (X11) set and not empty.
/// Windows are X11 windows; a Wayland session provides `DISPLAY` through XWayland.
pub fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Runs a wall node that presents in windows, on the calling thread (which must be the main
/// thread: winit's event loop runs there), until it has presented `config.frames` frames, a window
/// is closed, or `stop` completes. The present log goes into `config.output`.
///
/// Errors before anything connects when there is no display, when the display cannot be opened,
/// or (fullscreen) when there are fewer monitors than tiles.
pub fn run_window_node(
    config: NodeConfig,
    options: WindowOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<NodeSummary, VizError> {
    if !has_display() {
        return Err(node_error(
            &config.node,
            "windows need a display, and DISPLAY is not set: run the node in a graphical \
             session (X11, or Wayland with XWayland) or under Xvfb",
        ));
    }
    let tiles = node_tiles(&config.wall, config.wall.node(&config.node)?);
    // A bad URL, token or CA file is refused before any window opens (the node checks them
    // again, for headless nodes too).
    let fatal = |e: ConnectError| node_error(&config.node, e.to_string());
    config.server.endpoint().map_err(fatal)?;
    config.server.bearer().map_err(fatal)?;
    let event_loop = EventLoop::<WallEvent>::with_user_event()
        .build()
        .map_err(|e| {
            let display = std::env::var("DISPLAY").unwrap_or_default();
            node_error(
                &config.node,
                format!("cannot open the display DISPLAY={display:?}: {e}"),
            )
        })?;
    // Nothing to do between events: the node's thread wakes the loop when a frame is due.
    event_loop.set_control_flow(ControlFlow::Wait);
    let mut windows = WallWindows {
        node: config.node.clone(),
        wall: config.wall.name.clone(),
        options,
        tiles,
        proxy: event_loop.create_proxy(),
        pending: Some(PendingNode {
            config,
            stop: Box::pin(stop),
        }),
        screens: Vec::new(),
        gpu: None,
        node_thread: None,
        close_node: None,
        failure: None,
    };
    let ran = event_loop.run_app(&mut windows);
    windows.finish(ran)
}

/// What the node's thread asks of the event loop.
enum WallEvent {
    /// Show the tiles drawn last; answer with the present time.
    Present(mpsc::SyncSender<Result<DateTime<Utc>, VizError>>),
    /// The node's thread has ended (done, failed or stopped).
    NodeEnded,
}

/// What the node's thread needs, kept until the windows are open.
struct PendingNode {
    config: NodeConfig,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// How the node's thread ended.
enum Ending {
    Finished(Result<(), VizError>),
    Stopped,
    WindowClosed,
}

/// The GPU the windows present with (the renderer's).
struct Gpu {
    instance: wgpu::Instance,
    device: wgpu::Device,
    queue: wgpu::Queue,
}

/// The event loop's side: the windows, and the node's thread once they are open.
struct WallWindows {
    node: String,
    wall: String,
    options: WindowOptions,
    tiles: Vec<Tile>,
    proxy: EventLoopProxy<WallEvent>,
    pending: Option<PendingNode>,
    screens: Vec<TileScreen>,
    gpu: Option<Gpu>,
    node_thread: Option<std::thread::JoinHandle<(NodeSummary, Ending)>>,
    /// Tells the node's thread that the windows are going away.
    close_node: Option<tokio::sync::oneshot::Sender<()>>,
    /// Why the windows could not be opened.
    failure: Option<VizError>,
}

impl ApplicationHandler<WallEvent> for WallWindows {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        // Desktop platforms resume once; the windows open then.
        let Some(pending) = self.pending.take() else {
            return;
        };
        if let Err(e) = self.open(event_loop, pending) {
            self.failure = Some(e);
            event_loop.exit();
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: WallEvent) {
        match event {
            WallEvent::Present(reply) => {
                // The node waits on the answer; if it has gone, nobody needs it.
                let _ = reply.send(self.present());
            }
            WallEvent::NodeEnded => event_loop.exit(),
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => {
                tracing::info!(node = %self.node, "a window was closed; stopping the node");
                // Before the loop ends, so the node sees the close before any failed present.
                self.stop_node();
                event_loop.exit();
            }
            WindowEvent::Resized(size) => {
                if let (Some(gpu), Some(screen)) = (&self.gpu, screen_of(&mut self.screens, id)) {
                    screen.resize(size, &gpu.device);
                    screen.window.request_redraw();
                }
            }
            WindowEvent::RedrawRequested => {
                if let (Some(gpu), Some(screen)) = (&self.gpu, screen_of(&mut self.screens, id))
                    && let Err(e) = screen.redraw(gpu)
                {
                    tracing::warn!(tile = %screen.tile.label(), error = %e, "redrawing a window failed");
                }
            }
            _ => {}
        }
    }
}

fn screen_of(screens: &mut [TileScreen], id: WindowId) -> Option<&mut TileScreen> {
    screens.iter_mut().find(|s| s.window.id() == id)
}

impl WallWindows {
    /// Opens a window per tile and the renderer on an adapter that presents to all of them,
    /// then starts the node's thread.
    fn open(&mut self, event_loop: &ActiveEventLoop, pending: PendingNode) -> Result<(), VizError> {
        let monitors: Vec<MonitorHandle> = event_loop.available_monitors().collect();
        let places = if self.options.fullscreen {
            self.fullscreen_places(&monitors)?
        } else {
            let screen = event_loop
                .primary_monitor()
                .or_else(|| monitors.first().cloned())
                .map(|m| (m.position(), m.size()));
            window_layout(&self.tiles, screen)
                .into_iter()
                .map(|(position, size)| Place {
                    position,
                    size,
                    monitor: None,
                })
                .collect()
        };
        let mut windows = Vec::with_capacity(self.tiles.len());
        for (tile, place) in self.tiles.iter().zip(places) {
            let mut attributes = Window::default_attributes()
                .with_title(format!(
                    "isotach wall {} · node {} · tile {}",
                    self.wall,
                    self.node,
                    tile.label()
                ))
                .with_position(place.position)
                .with_inner_size(place.size);
            if let Some(monitor) = &place.monitor {
                // Position and size cover the monitor even without a window manager to honour
                // the fullscreen state (a kiosk X session).
                attributes = attributes
                    .with_decorations(false)
                    .with_fullscreen(Some(Fullscreen::Borderless(Some(monitor.clone()))));
            }
            let window = event_loop.create_window(attributes).map_err(|e| {
                node_error(
                    &self.node,
                    format!("cannot open the window of tile {}: {e}", tile.label()),
                )
            })?;
            if place.monitor.is_some() {
                window.set_cursor_visible(false);
            }
            windows.push(Arc::new(window));
        }

        let display = Box::new(event_loop.owned_display_handle());
        let descriptor = wgpu::InstanceDescriptor::new_with_display_handle_from_env(display);
        let tried = descriptor.backends & wgpu::Instance::enabled_backend_features();
        let instance = wgpu::Instance::new(descriptor);
        let mut surfaces = Vec::with_capacity(windows.len());
        for (tile, window) in self.tiles.iter().zip(&windows) {
            let surface = instance.create_surface(window.clone()).map_err(|e| {
                node_error(
                    &self.node,
                    format!(
                        "the window of tile {} has no surface to draw on: {e}",
                        tile.label()
                    ),
                )
            })?;
            surfaces.push(surface);
        }
        let renderer = Renderer::open(&instance, tried, &surfaces.iter().collect::<Vec<_>>())?;
        let (adapter, device, queue) = renderer.gpu();
        let (device, queue) = (device.clone(), queue.clone());
        let mut screens = Vec::with_capacity(windows.len());
        for ((tile, window), surface) in self.tiles.iter().zip(windows).zip(surfaces) {
            screens.push(TileScreen::new(
                &self.node, *tile, window, surface, adapter, &device,
            )?);
        }
        tracing::info!(
            node = %self.node,
            windows = screens.len(),
            fullscreen = self.options.fullscreen,
            monitors = monitors.len(),
            "wall node windows open"
        );
        let presenter = WindowTiles {
            node: self.node.clone(),
            renderer,
            tiles: self.tiles.clone(),
            drawn: screens.iter().map(|s| s.drawn.clone()).collect(),
            windows: self.proxy.clone(),
        };
        self.screens = screens;
        self.gpu = Some(Gpu {
            instance,
            device,
            queue,
        });
        self.start_node(pending, presenter)
    }

    /// Tile k on monitor k, covering it.
    fn fullscreen_places(&self, monitors: &[MonitorHandle]) -> Result<Vec<Place>, VizError> {
        if monitors.len() < self.tiles.len() {
            let labels: Vec<String> = self.tiles.iter().map(Tile::label).collect();
            return Err(node_error(
                &self.node,
                format!(
                    "fullscreen puts tile k on monitor k, and the display has {} monitor(s) for \
                     the node's {} tiles ({})",
                    monitors.len(),
                    self.tiles.len(),
                    labels.join(", ")
                ),
            ));
        }
        Ok(monitors
            .iter()
            .take(self.tiles.len())
            .map(|monitor| Place {
                position: monitor.position(),
                size: monitor.size(),
                monitor: Some(monitor.clone()),
            })
            .collect())
    }

    fn start_node(&mut self, pending: PendingNode, presenter: WindowTiles) -> Result<(), VizError> {
        let (close_node, closed) = tokio::sync::oneshot::channel::<()>();
        let proxy = self.proxy.clone();
        let PendingNode { config, stop } = pending;
        let thread = std::thread::Builder::new()
            .name(format!("wall node {}", config.node))
            .spawn(move || {
                let mut summary = NodeSummary::default();
                let ending = match tokio::runtime::Runtime::new() {
                    Ok(runtime) => {
                        let ending = runtime.block_on(async {
                            let open = move || Ok(Box::new(presenter) as Box<dyn Present>);
                            tokio::select! {
                                // A stop or a close wins over a present that failed because of it.
                                biased;
                                () = stop => Ending::Stopped,
                                _ = closed => Ending::WindowClosed,
                                result = drive_node(&config, &mut summary, open) => {
                                    Ending::Finished(result)
                                }
                            }
                        });
                        // A present still waiting on the windows ends when the event loop goes.
                        runtime.shutdown_timeout(Duration::from_secs(5));
                        ending
                    }
                    Err(e) => Ending::Finished(Err(node_error(
                        &config.node,
                        format!("cannot start the async runtime: {e}"),
                    ))),
                };
                // The event loop may have ended already (a window was closed).
                let _ = proxy.send_event(WallEvent::NodeEnded);
                (summary, ending)
            })
            .map_err(|e| node_error(&self.node, format!("cannot start the node's thread: {e}")))?;
        self.node_thread = Some(thread);
        self.close_node = Some(close_node);
        Ok(())
    }

    fn stop_node(&mut self) {
        if let Some(close) = self.close_node.take() {
            // The node's thread may have ended already.
            let _ = close.send(());
        }
    }

    /// Copies each tile as drawn into what its window shows, and presents every window.
    fn present(&mut self) -> Result<DateTime<Utc>, VizError> {
        let Some(gpu) = &self.gpu else {
            return Err(node_error(&self.node, "its windows are not open"));
        };
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("isotach-viz present"),
            });
        let mut frames = Vec::with_capacity(self.screens.len());
        for screen in &mut self.screens {
            encoder.copy_texture_to_texture(
                screen.drawn.as_image_copy(),
                screen.shown.as_image_copy(),
                screen.drawn.size(),
            );
            if let Some(frame) = screen.acquire(gpu, &self.node)? {
                screen.encode_blit(&mut encoder, &frame);
                frames.push((screen.window.clone(), frame));
            }
        }
        gpu.queue.submit([encoder.finish()]);
        for (window, frame) in frames {
            window.pre_present_notify();
            gpu.queue.present(frame);
        }
        let presented_at = Utc::now();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(VizError::Gpu {
                during: "presenting the tiles",
                message: e.to_string(),
            });
        }
        Ok(presented_at)
    }

    /// Joins the node's thread and says how the node ended.
    fn finish(mut self, ran: Result<(), EventLoopError>) -> Result<NodeSummary, VizError> {
        // Surfaces before the thread's renderer and device; a present still waiting fails fast.
        self.screens.clear();
        self.stop_node();
        let joined = self.node_thread.take().map(std::thread::JoinHandle::join);
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        ran.map_err(|e| node_error(&self.node, format!("the window event loop failed: {e}")))?;
        let Some(joined) = joined else {
            return Err(node_error(
                &self.node,
                "the event loop ended before the windows opened",
            ));
        };
        let (summary, ending) =
            joined.map_err(|_| node_error(&self.node, "the node's thread panicked"))?;
        match ending {
            Ending::Finished(result) => result.map(|()| summary),
            Ending::Stopped => {
                tracing::info!(node = %self.node, presented = summary.presented, "stopped");
                Ok(summary)
            }
            Ending::WindowClosed => {
                tracing::info!(node = %self.node, presented = summary.presented, "windows closed");
                Ok(summary)
            }
        }
    }
}

/// Where a tile's window goes.
struct Place {
    position: PhysicalPosition<i32>,
    size: PhysicalSize<u32>,
    /// Fullscreen on this monitor.
    monitor: Option<MonitorHandle>,
}

/// Windows for `tiles` (all of one size, as on a wall) placed as the tiles sit on the wall,
/// relative to the top-left of the node's tiles, at `screen`'s origin; all scaled by one factor,
/// at most 1, so that the node's block of tiles fits on `screen` (position and size). Without a
/// screen, at the tiles' own size from (0, 0).
fn window_layout(
    tiles: &[Tile],
    screen: Option<(PhysicalPosition<i32>, PhysicalSize<u32>)>,
) -> Vec<(PhysicalPosition<i32>, PhysicalSize<u32>)> {
    let Some(first) = tiles.first() else {
        return Vec::new();
    };
    let (tile_w, tile_h) = (first.viewport.width, first.viewport.height);
    let row0 = tiles.iter().map(|t| t.position[0]).min().unwrap_or(0);
    let col0 = tiles.iter().map(|t| t.position[1]).min().unwrap_or(0);
    let rows = tiles
        .iter()
        .map(|t| t.position[0] - row0 + 1)
        .max()
        .unwrap_or(1);
    let cols = tiles
        .iter()
        .map(|t| t.position[1] - col0 + 1)
        .max()
        .unwrap_or(1);
    let (origin, scale) = match screen {
        Some((origin, size)) if size.width > 0 && size.height > 0 => {
            let fit_w = f64::from(size.width) / (f64::from(tile_w) * f64::from(cols));
            let fit_h = f64::from(size.height) / (f64::from(tile_h) * f64::from(rows));
            (origin, fit_w.min(fit_h).min(1.0))
        }
        _ => (PhysicalPosition::new(0, 0), 1.0),
    };
    let w = ((f64::from(tile_w) * scale).floor() as u32).max(1);
    let h = ((f64::from(tile_h) * scale).floor() as u32).max(1);
    tiles
        .iter()
        .map(|t| {
            let x = origin.x + ((t.position[1] - col0) * w) as i32;
            let y = origin.y + ((t.position[0] - row0) * h) as i32;
            (PhysicalPosition::new(x, y), PhysicalSize::new(w, h))
        })
        .collect()
}

/// The largest rectangle of `content`'s aspect that fits in `target`, centred, whole pixels:
/// `[x, y, width, height]`. Equal sizes give the whole target, so pixels map one to one; a
/// side within a pixel of the target's takes all of it (a window scaled down loses the exact
/// aspect to rounding, and a one-pixel black bar would look like a seam).
fn fit(content: (u32, u32), target: (u32, u32)) -> [f32; 4] {
    let (cw, ch) = (f64::from(content.0), f64::from(content.1));
    let (tw, th) = (f64::from(target.0), f64::from(target.1));
    let scale = (tw / cw).min(th / ch);
    let snap = |side: f64, whole: f64| if whole - side <= 1.0 { whole } else { side };
    let w = snap((cw * scale).round().min(tw), tw);
    let h = snap((ch * scale).round().min(th), th);
    let (x, y) = (((tw - w) / 2.0).floor(), ((th - h) / 2.0).floor());
    [x as f32, y as f32, w as f32, h as f32]
}

/// One tile's window: its surface, and the tile as drawn and as shown.
struct TileScreen {
    tile: Tile,
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    pipeline: wgpu::RenderPipeline,
    bind_group: wgpu::BindGroup,
    /// The tile drawn for the next present (the renderer copies into it).
    drawn: wgpu::Texture,
    /// The tile last presented: what the window shows, again after an expose or a resize.
    shown: wgpu::Texture,
}

impl TileScreen {
    fn new(
        node: &str,
        tile: Tile,
        window: Arc<Window>,
        surface: wgpu::Surface<'static>,
        adapter: &wgpu::Adapter,
        device: &wgpu::Device,
    ) -> Result<Self, VizError> {
        let capabilities = surface.get_capabilities(adapter);
        // Prefer plain 8-bit formats, which take the tile's bytes as they are.
        let format = capabilities
            .formats
            .iter()
            .copied()
            .find(|f| {
                matches!(
                    f,
                    wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Rgba8Unorm
                )
            })
            .or_else(|| capabilities.formats.iter().copied().find(|f| !f.is_srgb()))
            .or_else(|| capabilities.formats.first().copied())
            .ok_or_else(|| {
                node_error(
                    node,
                    format!(
                        "the adapter cannot present to the window of tile {}",
                        tile.label()
                    ),
                )
            })?;
        let alpha_mode = if capabilities
            .alpha_modes
            .contains(&wgpu::CompositeAlphaMode::Opaque)
        {
            wgpu::CompositeAlphaMode::Opaque
        } else {
            capabilities
                .alpha_modes
                .first()
                .copied()
                .unwrap_or(wgpu::CompositeAlphaMode::Auto)
        };
        let size = window.inner_size();
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format,
            color_space: wgpu::SurfaceColorSpace::Auto,
            width: size.width.max(1),
            height: size.height.max(1),
            // Tear-free: the new frame replaces the old at the next refresh.
            present_mode: wgpu::PresentMode::AutoVsync,
            desired_maximum_frame_latency: 2,
            alpha_mode,
            view_formats: Vec::new(),
        };

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        surface.configure(device, &config);
        let texture = |label: &'static str, usage: wgpu::TextureUsages| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d {
                    width: tile.viewport.width,
                    height: tile.viewport.height,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: TARGET_FORMAT,
                usage,
                view_formats: &[],
            })
        };
        let drawn = texture(
            "isotach-viz tile drawn",
            wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC,
        );
        let shown = texture(
            "isotach-viz tile shown",
            wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::TEXTURE_BINDING,
        );
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("isotach-viz present shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("blit.wgsl").into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("isotach-viz present bindings"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        // Linear: a tile scaled to its window stays smooth; at one to one it samples texel
        // centres, which gives the texels themselves.
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("isotach-viz present sampler"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("isotach-viz present bind group"),
            layout: &layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(
                        &shown.create_view(&wgpu::TextureViewDescriptor::default()),
                    ),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Sampler(&sampler),
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("isotach-viz present pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("isotach-viz present pipeline"),
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
                entry_point: Some(if format.is_srgb() {
                    "fs_to_srgb"
                } else {
                    "fs_copy"
                }),
                compilation_options: Default::default(),
                targets: &[Some(format.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(VizError::Gpu {
                during: "preparing a window",
                message: format!("tile {}: {e}", tile.label()),
            });
        }
        Ok(Self {
            tile,
            window,
            surface,
            config,
            pipeline,
            bind_group,
            drawn,
            shown,
        })
    }

    /// Follows the window's size; a zero size (minimised) keeps the old configuration.
    fn resize(&mut self, size: PhysicalSize<u32>, device: &wgpu::Device) {
        if size.width == 0 || size.height == 0 {
            return;
        }
        self.config.width = size.width;
        self.config.height = size.height;
        self.surface.configure(device, &self.config);
    }

    /// The surface's next texture, reconfiguring (or, lost, recreating) the surface once when
    /// it no longer fits; `None` when there is nothing to draw on now (a minimised or covered
    /// window, a busy compositor): the next present tries again.
    fn acquire(&mut self, gpu: &Gpu, node: &str) -> Result<Option<wgpu::SurfaceTexture>, VizError> {
        for _ in 0..2 {
            match self.surface.get_current_texture() {
                wgpu::CurrentSurfaceTexture::Success(frame)
                | wgpu::CurrentSurfaceTexture::Suboptimal(frame) => return Ok(Some(frame)),
                wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                    return Ok(None);
                }
                wgpu::CurrentSurfaceTexture::Outdated => {
                    let size = self.window.inner_size();
                    self.resize(size, &gpu.device);
                }
                wgpu::CurrentSurfaceTexture::Lost => {
                    self.surface =
                        gpu.instance
                            .create_surface(self.window.clone())
                            .map_err(|e| {
                                node_error(
                                    node,
                                    format!(
                                        "the window of tile {} lost its surface: {e}",
                                        self.tile.label()
                                    ),
                                )
                            })?;
                    self.surface.configure(&gpu.device, &self.config);
                }
                wgpu::CurrentSurfaceTexture::Validation => {
                    return Err(VizError::Gpu {
                        during: "acquiring a window's surface",
                        message: format!("tile {}: validation error", self.tile.label()),
                    });
                }
            }
        }
        Err(node_error(
            node,
            format!(
                "the window of tile {} still has no surface texture after reconfiguring it",
                self.tile.label()
            ),
        ))
    }

    /// Records drawing the shown tile into `frame`: fitted, centred, black around.
    fn encode_blit(&self, encoder: &mut wgpu::CommandEncoder, frame: &wgpu::SurfaceTexture) {
        let view = frame
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());
        let [x, y, width, height] = fit(
            (self.tile.viewport.width, self.tile.viewport.height),
            (frame.texture.width(), frame.texture.height()),
        );
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("isotach-viz present pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_viewport(x, y, width, height, 0.0, 1.0);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }

    /// Shows the last presented tile again (after an expose or a resize).
    fn redraw(&mut self, gpu: &Gpu) -> Result<(), VizError> {
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let label = self.tile.label();
        if let Some(frame) = self.acquire(gpu, &label)? {
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("isotach-viz redraw"),
                });
            self.encode_blit(&mut encoder, &frame);
            gpu.queue.submit([encoder.finish()]);
            self.window.pre_present_notify();
            gpu.queue.present(frame);
        }
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(VizError::Gpu {
                during: "redrawing a window",
                message: e.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// The node's side: draws each tile into its window's texture, and asks the event loop to
/// present them.
struct WindowTiles {
    node: String,
    renderer: Renderer,
    tiles: Vec<Tile>,
    drawn: Vec<wgpu::Texture>,
    windows: EventLoopProxy<WallEvent>,
}

impl WindowTiles {
    fn closed(&self) -> VizError {
        node_error(&self.node, "its windows are closed")
    }
}

impl Present for WindowTiles {
    fn adapter_summary(&self) -> String {
        self.renderer.adapter_summary()
    }

    fn draw(&mut self, scene: &Scene<'_>, canvas: Canvas) -> Result<(), VizError> {
        for (tile, texture) in self.tiles.iter().zip(&self.drawn) {
            self.renderer
                .render_viewport_into(scene, canvas, tile.viewport, texture)?;
        }
        Ok(())
    }

    fn present(&mut self, _step: u64) -> Result<DateTime<Utc>, VizError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.windows
            .send_event(WallEvent::Present(reply))
            .map_err(|_| self.closed())?;
        answer.recv().map_err(|_| self.closed())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PixelRect;

    fn tile(row: u32, col: u32, w: u32, h: u32) -> Tile {
        Tile {
            position: [row, col],
            viewport: PixelRect {
                x: col * w,
                y: row * h,
                width: w,
                height: h,
            },
        }
    }

    #[test]
    fn windows_keep_the_tile_size_when_the_screen_is_large_enough() {
        let screen = (PhysicalPosition::new(0, 0), PhysicalSize::new(1920, 1080));
        let places = window_layout(&[tile(1, 1, 320, 180)], Some(screen));
        assert_eq!(
            places,
            vec![(PhysicalPosition::new(0, 0), PhysicalSize::new(320, 180))]
        );
    }

    #[test]
    fn windows_of_several_tiles_sit_as_on_the_wall_and_shrink_together_to_fit() {
        // Two 1920×1080 tiles side by side on one 1920×1080 monitor at x = 100: half size.
        let screen = (PhysicalPosition::new(100, 0), PhysicalSize::new(1920, 1080));
        let tiles = [tile(0, 2, 1920, 1080), tile(0, 3, 1920, 1080)];
        assert_eq!(
            window_layout(&tiles, Some(screen)),
            vec![
                (PhysicalPosition::new(100, 0), PhysicalSize::new(960, 540)),
                (PhysicalPosition::new(1060, 0), PhysicalSize::new(960, 540)),
            ]
        );
        // A column of two on a landscape monitor: the height decides.
        let tiles = [tile(0, 0, 1920, 1080), tile(1, 0, 1920, 1080)];
        let places = window_layout(&tiles, Some(screen));
        assert_eq!(places[0].1, PhysicalSize::new(960, 540));
        assert_eq!(places[1].0, PhysicalPosition::new(100, 540));
    }

    #[test]
    fn a_tile_fills_a_window_of_its_size_and_is_letterboxed_in_others() {
        assert_eq!(fit((320, 180), (320, 180)), [0.0, 0.0, 320.0, 180.0]);
        // A 4:3 window: full width, bars above and below.
        assert_eq!(fit((320, 180), (640, 480)), [0.0, 60.0, 640.0, 360.0]);
        // A tall narrow one: full height would be too wide, so the width decides.
        assert_eq!(fit((1920, 1080), (960, 1080)), [0.0, 270.0, 960.0, 540.0]);
        // 320×180 scaled by 0.78 into a 250×140 window: 249×140 after rounding, so stretched.
        assert_eq!(fit((320, 180), (250, 140)), [0.0, 0.0, 250.0, 140.0]);
    }
}
