//! placeholder
pub struct RunningEmulator;
pub struct Stats;
pub async fn start(_c: super::EmulatorConfig) -> anyhow::Result<RunningEmulator> { anyhow::bail!("x") }
impl RunningEmulator { pub fn url(&self) -> String { String::new() } pub fn stats(&self) -> Stats { Stats } pub async fn shutdown(self) {} pub fn ca_pem(&self) -> &str { "" } }
impl Stats { pub fn summary(&self) -> String { String::new() } }
