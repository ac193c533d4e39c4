#[derive(clap::Args)] pub(crate) struct DemoArgs {} pub(crate) fn demo(_: &DemoArgs) -> anyhow::Result<()> { Ok(()) }
