//! `spam-reqresp`: one payload_by_number request on a fresh stream, under a chosen protocol id,
//! its answer classified by the result code alone (the body is never decompressed: the spammer
//! only wants to load the server, and counts how it is answered).

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol};

use crate::p2p::reqresp::{REQUEST_TIMEOUT, RESPONSE_TIMEOUT, STREAM_OPEN_TIMEOUT};
use crate::wire::reqresp::{MAX_RESPONSE_BYTES, ResultCode, encode_request};

/// How a request ended, as the spammer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Code 0 with a payload.
    Served,
    /// Code 1.
    NotFound,
    /// Code 2 (out of range).
    Invalid,
    /// Code 3: what op-node (and we) answer when the rate limits refuse the request.
    RateLimited,
    /// Any other code.
    OtherCode,
    /// No stream could be opened (disconnected, refused, or timed out).
    OpenFailed,
    /// Writing or reading failed, timed out, or the answer was empty.
    StreamError,
}

/// Requests block `number` from `peer` under `protocol` and classifies the answer.
pub async fn request(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    protocol: StreamProtocol,
    number: u64,
) -> Answer {
    let stream = tokio::time::timeout(STREAM_OPEN_TIMEOUT, control.open_stream(peer, protocol));
    let mut stream = match stream.await {
        Ok(Ok(stream)) => stream,
        _ => return Answer::OpenFailed,
    };
    let written = tokio::time::timeout(REQUEST_TIMEOUT, async {
        stream.write_all(&encode_request(number)).await?;
        stream.close().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!(%peer, ?written, "adversary: request not written");
        return Answer::StreamError;
    }
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        RESPONSE_TIMEOUT,
        (&mut stream)
            .take(MAX_RESPONSE_BYTES as u64)
            .read_to_end(&mut response),
    )
    .await;
    if !matches!(read, Ok(Ok(_))) {
        tracing::debug!(%peer, ?read, "adversary: answer not read");
        return Answer::StreamError;
    }
    classify(&response)
}

/// The answer a response's bytes stand for.
pub fn classify(response: &[u8]) -> Answer {
    match response.first().map(|b| ResultCode::from_byte(*b)) {
        None => Answer::StreamError,
        Some(ResultCode::Success) => Answer::Served,
        Some(ResultCode::NotFound) => Answer::NotFound,
        Some(ResultCode::InvalidRequest) => Answer::Invalid,
        Some(ResultCode::Unknown) => Answer::RateLimited,
        Some(ResultCode::Other(_)) => Answer::OtherCode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_follow_the_first_byte() {
        assert_eq!(classify(&[]), Answer::StreamError);
        assert_eq!(classify(&[0, 1, 0, 0, 0, 9]), Answer::Served);
        assert_eq!(classify(&[1]), Answer::NotFound);
        assert_eq!(classify(&[2]), Answer::Invalid);
        assert_eq!(classify(&[3]), Answer::RateLimited);
        assert_eq!(classify(&[200]), Answer::OtherCode);
    }
}
