//! A minimal HTTP/1.1 client over a tokio `TcpStream` (`Connection: close`): enough to scrape
//! `/metrics` and to call the admin JSON-RPC and see the raw bytes exactly as an operator's
//! tooling would, with no client library in between.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a response may take.
const WAIT: Duration = Duration::from_secs(30);

/// A response.
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body, de-chunked.
    pub body: String,
}

/// Sends one request and reads the whole response.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> HttpResponse {
    request_as(addr, Some(&addr.to_string()), method, path, body).await
}

/// [`request`] with this `Host` header (`None`: no Host header at all).
pub async fn request_as(
    addr: SocketAddr,
    host: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> HttpResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        dechunk(body)
    } else {
        if let Some(len) = headers.get("content-length") {
            assert_eq!(body.len(), len.parse::<usize>().unwrap(), "content-length");
        }
        body.to_owned()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Calls a JSON-RPC method and returns the whole response object (`result` or `error`).
pub async fn rpc(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = request(addr, "POST", "/", &body.to_string()).await;
    assert_eq!(response.status, 200, "{method}: HTTP {}", response.status);
    serde_json::from_str(&response.body).unwrap()
}

/// Calls a method that must succeed and returns its result.
pub async fn call(addr: SocketAddr, method: &str, params: Value) -> Value {
    let response = rpc(addr, method, params).await;
    assert!(response.get("error").is_none(), "{method}: {response}");
    response["result"].clone()
}
