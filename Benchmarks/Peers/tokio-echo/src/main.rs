// tokio's echo server: a current-thread runtime (one thread, like the other servers' one event
// loop), a task per connection writing back what it reads through a 16 KiB buffer of its own.
// Binds 127.0.0.1 only.
//
//   tokio-echo PORT
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).and_then(|text| text.parse().ok()) {
        Some(port) => port,
        None => {
            eprintln!("usage: tokio-echo PORT");
            std::process::exit(64);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(count) => {
                            if stream.write_all(&buffer[..count]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
