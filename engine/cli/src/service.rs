//! `isotach serve` and its clients: `submit`, `jobs`, `cancel`, `watch`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use isotach_core::PipelineSpec;
use isotach_service::client::{JobClient, ServerAddress};
use isotach_service::{EventKind, JobEventRecord, JobManager, JobState, JobSummary, ServiceConfig};
use tokio_stream::StreamExt;

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Folder of the job database (`jobs.sqlite3`); created if missing.
    #[arg(long)]
    data_dir: PathBuf,
    /// Service configuration, TOML: data roots, tokens, limits (see engine/service/README.md).
    #[arg(long)]
    config: PathBuf,
    /// Address to serve on, overriding the config's `listen`; port 0 picks a free port (the
    /// address is printed on stdout).
    #[arg(long)]
    listen: Option<String>,
}

/// Where the server is and how to prove who we are.
#[derive(clap::Args)]
pub(crate) struct ServerArgs {
    /// The job server's URL.
    #[arg(long, env = "ISOTACH_SERVER", default_value = "http://127.0.0.1:50051")]
    pub(crate) server: String,
    /// Bearer token (one of the server config's `[[token]]` secrets).
    #[arg(long, env = "ISOTACH_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// PEM file of the CA that signed an https:// server's certificate, trusted instead of the
    /// system's roots.
    #[arg(long, env = "ISOTACH_CA", value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
}

impl ServerArgs {
    pub(crate) fn address(&self) -> ServerAddress {
        ServerAddress {
            url: self.server.clone(),
            token: self.token.clone(),
            ca: self.ca.clone(),
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct SubmitArgs {
    /// Pipeline spec, TOML. Paths in it are the server's: relative ones are taken from its first
    /// data root.
    #[arg(required_unless_present = "rerun", conflicts_with = "rerun")]
    spec: Option<PathBuf>,
    /// Run the stored spec of this earlier job again (for example an interrupted one).
    #[arg(long, value_name = "JOB_ID")]
    rerun: Option<String>,
    /// Follow the job's events until it ends; exit non-zero unless it succeeds.
    #[arg(long)]
    watch: bool,
    /// With --watch: print each event as a JSON line instead of text.
    #[arg(long, requires = "watch")]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
pub(crate) struct JobsArgs {
    /// Only jobs in this state: queued, running, succeeded, failed, cancelled, interrupted.
    #[arg(long)]
    state: Option<String>,
    /// Most jobs to list, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
pub(crate) struct CancelArgs {
    /// The job's id.
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
pub(crate) struct WatchArgs {
    /// The job's id.
    id: String,
    /// Only events after this sequence number.
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Print each event as a JSON line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) fn serve(args: &ServeArgs) -> Result<()> {
    let config = ServiceConfig::load(&args.config)?;
    let listen = args.listen.clone().unwrap_or_else(|| config.listen.clone());
    let manager = JobManager::open(config, &args.data_dir)?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let address = listener.local_addr().context("the listen address")?;
        println!("isotach job service listening on {address}");
        std::io::stdout().flush().context("stdout")?;
        let metrics = match &manager.config().metrics_listen {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("metrics on {listen}"))?;
                let address = listener.local_addr().context("the metrics address")?;
                println!("isotach metrics listening on {address}");
                std::io::stdout().flush().context("stdout")?;
                Some(listener)
            }
            None => None,
        };
        tracing::info!(%address, data_dir = %args.data_dir.display(), "serving");
        let serving = isotach_service::serve(manager.clone(), listener, shutdown_signal());
        match metrics {
            Some(listener) => tokio::select! {
                served = serving => served?,
                failed = isotach_service::serve_metrics(manager, listener) => failed?,
            },
            None => serving.await?,
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
            let _ = interrupt.await;
        }
    }
}

async fn connect(server: &ServerArgs) -> Result<JobClient> {
    Ok(JobClient::connect(&server.address()).await?)
}

pub(crate) fn submit(args: &SubmitArgs) -> Result<()> {
    runtime()?.block_on(async {
        let mut client = connect(&args.server).await?;
        let job = match (&args.spec, &args.rerun) {
            (_, Some(id)) => client
                .rerun(id)
                .await
                .with_context(|| format!("rerunning job {id} on {}", args.server.server))?,
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading spec {}", path.display()))?;
                let spec = PipelineSpec::from_toml_str(&text)
                    .with_context(|| format!("spec {}", path.display()))?;
                client.submit(&spec).await.with_context(|| {
                    format!("submitting {} to {}", path.display(), args.server.server)
                })?
            }
            (None, None) => bail!("give a spec file or --rerun JOB_ID"),
        };
        println!("job {} submitted ({})", job.id, state_name(&job));
        if !args.watch {
            return Ok(());
        }
        follow(&mut client, &job.id, 0, args.json).await
    })
}

pub(crate) fn watch(args: &WatchArgs) -> Result<()> {
    runtime()?.block_on(async {
        let mut client = connect(&args.server).await?;
        follow(&mut client, &args.id, args.after, args.json).await
    })
}

pub(crate) fn jobs(args: &JobsArgs) -> Result<()> {
    let state = args
        .state
        .as_deref()
        .map(|name| {
            parse_state(name).ok_or_else(|| {
                anyhow!(
                    "--state {name:?} is not one of queued, running, succeeded, failed, cancelled, interrupted"
                )
            })
        })
        .transpose()?;
    runtime()?.block_on(async {
        let mut client = connect(&args.server).await?;
        let jobs = client
            .list(state, args.limit)
            .await
            .with_context(|| format!("listing jobs on {}", args.server.server))?;
        println!(
            "{:<6} {:<12} {:<20} {:<12} {:<24} NOTE",
            "ID", "STATE", "CREATED", "BY", "NAME"
        );
        for job in jobs {
            let created = job
                .created
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            let note = [
                job.rerun_of.as_ref().map(|id| format!("rerun of {id}")),
                job.reason.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
            println!(
                "{:<6} {:<12} {:<20} {:<12} {:<24} {note}",
                job.id,
                state_name(&job),
                created,
                job.submitted_by,
                job.name
            );
        }
        Ok(())
    })
}

pub(crate) fn cancel(args: &CancelArgs) -> Result<()> {
    runtime()?.block_on(async {
        let mut client = connect(&args.server).await?;
        let job = client
            .cancel(&args.id)
            .await
            .with_context(|| format!("cancelling job {} on {}", args.id, args.server.server))?;
        println!("job {}: {}", job.id, state_name(&job));
        Ok(())
    })
}

fn parse_state(name: &str) -> Option<JobState> {
    [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Interrupted,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
}

fn state_name(job: &JobSummary) -> &'static str {
    job.state.map_or("unknown", JobState::as_str)
}

/// Prints job `id`'s events until it ends; an error unless it succeeded.
async fn follow(client: &mut JobClient, id: &str, after_seq: u64, json: bool) -> Result<()> {
    let mut events = client
        .watch(id, after_seq)
        .await
        .with_context(|| format!("watching job {id}"))?;
    let mut bars = (!json && std::io::stderr().is_terminal()).then(ProgressBars::default);
    let mut last = None;
    while let Some(event) = events.next().await {
        let event = event.with_context(|| format!("watching job {id}"))?;
        if json {
            println!("{}", event_json(&event));
        } else if let (Some(bars), EventKind::Progress { .. }) = (bars.as_mut(), &event.kind) {
            bars.update(&event.kind);
        } else {
            if let Some(bars) = bars.as_mut() {
                bars.clear();
            }
            println!("{}", event_line(&event));
            if let Some(bars) = bars.as_mut() {
                bars.draw();
            }
        }
        last = Some(event.kind);
    }
    match last {
        Some(EventKind::Succeeded { .. }) => Ok(()),
        Some(EventKind::Failed { reason, .. }) => bail!("job {id} failed: {reason}"),
        Some(EventKind::Cancelled { reason }) => bail!("job {id} was cancelled: {reason}"),
        Some(EventKind::Interrupted { reason }) => bail!("job {id} was interrupted: {reason}"),
        _ => bail!("the event stream of job {id} ended before the job did"),
    }
}

fn event_json(event: &JobEventRecord) -> serde_json::Value {
    let mut value = serde_json::to_value(&event.kind).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("job_id".into(), event.job_id.into());
        object.insert("seq".into(), event.seq.into());
        object.insert("time".into(), event.time.to_rfc3339().into());
    }
    value
}

fn event_line(event: &JobEventRecord) -> String {
    let what = match &event.kind {
        EventKind::Accepted => "accepted".to_owned(),
        EventKind::Validated { time_steps } => format!("validated: {time_steps} time steps"),
        EventKind::Progress {
            stage,
            done,
            total,
            rate_per_s,
        } => {
            let total = if *total > 0 {
                format!("/{total}")
            } else {
                String::new()
            };
            format!("progress {stage}: {done}{total} ({rate_per_s:.1}/s)")
        }
        EventKind::StepCompleted { step, time } => {
            format!("step {step} completed ({})", time.format("%Y-%m-%dT%H:%MZ"))
        }
        EventKind::FramePublished {
            channel,
            step,
            variable,
        } => format!("frame {variable} step {step} published to {channel}"),
        EventKind::Warning { message } => format!("warning: {message}"),
        EventKind::Failed { reason, retryable } => {
            format!("failed (retryable: {retryable}): {reason}")
        }
        EventKind::Succeeded { time_steps } => format!("succeeded: {time_steps} time steps"),
        EventKind::Cancelled { reason } => format!("cancelled: {reason}"),
        EventKind::Interrupted { reason } => format!("interrupted: {reason}"),
    };
    format!("[{:>4}] {what}", event.seq)
}

/// One bar per stage on stderr, redrawn in place as progress events arrive.
#[derive(Default)]
struct ProgressBars {
    stages: BTreeMap<String, (u64, u64, f64)>,
    order: Vec<String>,
    drawn_lines: usize,
}

impl ProgressBars {
    const WIDTH: usize = 30;

    fn update(&mut self, kind: &EventKind) {
        let EventKind::Progress {
            stage,
            done,
            total,
            rate_per_s,
        } = kind
        else {
            return;
        };
        if !self.stages.contains_key(stage) {
            self.order.push(stage.clone());
        }
        self.stages
            .insert(stage.clone(), (*done, *total, *rate_per_s));
        self.clear();
        self.draw();
    }

    fn clear(&mut self) {
        if self.drawn_lines > 0 {
            // Up over the bars, then erase to the end of the screen.
            eprint!("\x1b[{}A\x1b[J", self.drawn_lines);
            self.drawn_lines = 0;
        }
    }

    fn draw(&mut self) {
        let name_width = self.order.iter().map(String::len).max().unwrap_or(0);
        for stage in &self.order {
            let (done, total, rate) = self.stages[stage];
            let (bar, count) = if total > 0 {
                let filled =
                    ((done.min(total) as f64 / total as f64) * Self::WIDTH as f64) as usize;
                (
                    format!("{}{}", "█".repeat(filled), "·".repeat(Self::WIDTH - filled)),
                    format!("{done}/{total}"),
                )
            } else {
                ("·".repeat(Self::WIDTH), done.to_string())
            };
            eprintln!("{stage:<name_width$} {bar} {count} ({rate:.1}/s)");
        }
        self.drawn_lines = self.order.len();
    }
}
