//! `books`: the example Books app. Settings from `MNO_*` and `BOOKS_*` variables
//! (`BOOKS_ADDR`, default 127.0.0.1:8092).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = mno_example_books::Settings::from_env()?;
    let addr = std::env::var("BOOKS_ADDR").unwrap_or_else(|_| "127.0.0.1:8092".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("Books on http://{addr}");
    mno_example_books::serve(listener, settings).await
}
