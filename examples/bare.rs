//! The ceiling for any handler on this stack: actix-web answering every request with a constant
//! body of a given size. `bench/load.sh` runs it beside the service and compares.
//!
//!     cargo run --release --example bare -- 127.0.0.1:18080 2400

use actix_web::{App, HttpResponse, HttpServer, web};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18080".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2400);
    let body = web::Bytes::from(vec![b'x'; size]);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let body = body.clone();
            App::new().default_service(web::to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }))
        })
        .bind(addr)?
        .run()
        .await
    })
}
