//! `crm`: the example CRM. Settings from `MNO_*` and `CRM_*` variables
//! (`CRM_ADDR`, default 127.0.0.1:8091).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = mno_example_crm::Settings::from_env()?;
    let addr = std::env::var("CRM_ADDR").unwrap_or_else(|_| "127.0.0.1:8091".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("CRM on http://{addr}");
    mno_example_crm::serve(listener, settings).await
}
