#[derive(clap::Args)] pub(crate) struct RunArgs {} pub(crate) fn run(_: &RunArgs) -> anyhow::Result<()> { Ok(()) }
