//! tokio_ct's echo server for the `echo` workload: a current_thread runtime
//! with only the IO driver, an accept loop that spawns a task per
//! connection, each reading and writing back with AsyncRead/AsyncWrite.
//! (No `http`: an HTTP server in tokio means hyper, which Debian's crates
//! here do not offer offline.)
//!
//!   tokio_bench serve echo   -> "port <n>" once listening on 127.0.0.1,
//!                               then serves until killed

use std::io::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Builder;

async fn echo(mut socket: TcpStream) {
    let mut buf = vec![0u8; 4096];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if socket.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

pub fn serve(mode: &str) {
    if mode != "echo" {
        eprintln!("unsupported workload {mode}");
        std::process::exit(2);
    }
    let rt = Builder::new_current_thread().enable_io().build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("port {}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            tokio::spawn(echo(socket));
        }
    });
}
