//! Refusing requests whose `id` the server cannot answer to.
//!
//! JSON-RPC 2.0 allows an `id` of any string, number or null; a request without one is a
//! notification, which is never answered. jsonrpsee represents ids as strings, null and numbers
//! from 0 to 2^64 - 1 only, and takes a request whose `id` it cannot represent (a negative or
//! fractional number, a number beyond u64, an object, or an `id` member given twice) for a
//! notification, which it neither runs nor answers: the client waits for an answer that never
//! comes, not knowing whether its transaction was taken (found by the `jsonrpc_body` fuzz
//! target). This HTTP layer reads the body first and answers such a request, or a batch holding
//! one, with `-32600 Invalid request` and an id of null, as the specification says for a request
//! whose id cannot be determined; nothing of it runs. Everything else goes on to jsonrpsee
//! unchanged.

use crate::MAX_REQUEST_BYTES;
use http_body_util::{BodyExt, Limited};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::http::response;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The message of the refusal.
pub(crate) const UNREPRESENTABLE_ID: &str =
    "invalid request: `id` must be a string, an integer from 0 to 2^64-1 or null, given at most once";

/// The layer that puts [`RequestIds`] in front of the server.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestIdsLayer;

impl<S> Layer<S> for RequestIdsLayer {
    type Service = RequestIds<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIds { inner }
    }
}

/// Answers requests with an unrepresentable `id` with -32600; passes every other on.
#[derive(Clone, Debug)]
pub(crate) struct RequestIds<S> {
    inner: S,
}

impl<S, B> Service<HttpRequest<B>> for RequestIds<S>
where
    S: Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // The service that was polled ready serves this request; its clone serves the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, MAX_REQUEST_BYTES as usize).collect().await {
                Ok(collected) => collected.to_bytes(),
                // Over the limit: the same answer jsonrpsee gives an oversized body.
                Err(_) => return Ok(response::too_large(MAX_REQUEST_BYTES)),
            };
            if has_unrepresentable_id(&bytes) {
                return Ok(invalid_request());
            }
            let request = HttpRequest::from_parts(parts, HttpBody::from(bytes.to_vec()));
            inner.call(request).await.map_err(Into::into)
        })
    }
}

/// `{"jsonrpc":"2.0","error":{"code":-32600,"message":...},"id":null}`.
fn invalid_request() -> HttpResponse {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": -32600, "message": UNREPRESENTABLE_ID },
        "id": null,
    });
    response::ok_response(body.to_string())
}

/// Whether `body` is a request object, or a batch holding one, with an `id` jsonrpsee cannot
/// represent. Anything that is not JSON of that shape is left to jsonrpsee, which answers it.
pub(crate) fn has_unrepresentable_id(body: &[u8]) -> bool {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match <Body as de::Deserialize>::deserialize(&mut deserializer) {
        Ok(Body(found)) => found,
        // Every member but `id` is skipped unparsed, so a body that is well-formed JSON fails
        // here only on an `id` serde_json cannot read as a number (`1e999`, out of range): such a
        // request (or batch) is refused too when it has an `id` at all. Malformed JSON fails
        // both readings and goes on to jsonrpsee, which answers a parse error.
        Err(_) => has_id_member(body),
    }
}

/// Whether an object has an `id` member, every value skipped unparsed.
fn has_id_key<'de, A: MapAccess<'de>>(mut map: A) -> Result<bool, A::Error> {
    let mut found = false;
    while let Some(key) = map.next_key::<IsId>()? {
        found |= key.0;
        map.next_value::<IgnoredAny>()?;
    }
    Ok(found)
}

/// Whether `body` (a request object, or a batch) is well-formed JSON with an `id` member in it,
/// every value skipped unparsed.
fn has_id_member(body: &[u8]) -> bool {
    struct Presence;
    impl<'de> Visitor<'de> for Presence {
        type Value = bool;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a request object or a batch of them")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
            has_id_key(map)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(entry) = seq.next_element::<PresenceEntry>()? {
                found |= entry.0;
            }
            Ok(found)
        }
    }
    struct PresenceEntry(bool);
    impl<'de> de::Deserialize<'de> for PresenceEntry {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Object;
            impl<'de> Visitor<'de> for Object {
                type Value = bool;

                fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                    formatter.write_str("a batch entry")
                }

                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
                    has_id_key(map)
                }
            }
            // Only objects can hold an `id`; anything else in a batch is left to jsonrpsee.
            deserializer.deserialize_any(Object).or(Ok(false)).map(PresenceEntry)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    de::Deserializer::deserialize_any(&mut deserializer, Presence).unwrap_or(false)
}

/// What the check learns of a body: whether any request in it has an unrepresentable id.
struct Body(bool);

impl<'de> de::Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = Body;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a request object or a batch of them")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
                Ok(Body(RequestObject::visit(map)?.0))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
                let mut found = false;
                while let Some(entry) = seq.next_element::<Entry>()? {
                    found |= entry.0;
                }
                Ok(Body(found))
            }
        }
        deserializer.deserialize_any(BodyVisitor)
    }
}

/// One entry of a batch: an object is checked, anything else left to jsonrpsee.
struct Entry(bool);

impl<'de> de::Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a batch entry")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                Ok(Entry(RequestObject::visit(map)?.0))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Entry(false))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry, E> {
                Ok(Entry(false))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry, E> {
                Ok(Entry(false))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry, E> {
                Ok(Entry(false))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry, E> {
                Ok(Entry(false))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Entry, E> {
                Ok(Entry(false))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
                Ok(Entry(false))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// The members of one request object: whether its `id` is unrepresentable.
struct RequestObject(bool);

impl RequestObject {
    fn visit<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut ids = 0usize;
        let mut representable = true;
        while let Some(key) = map.next_key::<IsId>()? {
            if key.0 {
                ids += 1;
                representable &= map.next_value::<IdShape>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Self(ids > 1 || !representable))
    }
}

/// Whether a member's name is `id`. Read as raw bytes, so that a name that is not valid UTF-8
/// (which jsonrpsee skips) does not stop the check.
struct IsId(bool);

impl<'de> de::Deserialize<'de> for IsId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = IsId;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<IsId, E> {
                Ok(IsId(name == b"id"))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<IsId, E> {
                Ok(IsId(name == "id"))
            }
        }
        deserializer.deserialize_bytes(KeyVisitor)
    }
}

/// Whether an `id` value is one jsonrpsee represents: null, a string or a u64.
struct IdShape(bool);

impl<'de> de::Deserialize<'de> for IdShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = IdShape;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an id")
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<IdShape, E> {
                Ok(IdShape(true))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<IdShape, E> {
                Ok(IdShape(true))
            }

            fn visit_unit<E: de::Error>(self) -> Result<IdShape, E> {
                Ok(IdShape(true))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<IdShape, E> {
                Ok(IdShape(false))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<IdShape, E> {
                Ok(IdShape(false))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<IdShape, E> {
                Ok(IdShape(false))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdShape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IdShape(false))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdShape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IdShape(false))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}
