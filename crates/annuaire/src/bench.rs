pub async fn run(_a: &crate::cli::BenchArgs) -> anyhow::Result<()> {
    Ok(())
}
