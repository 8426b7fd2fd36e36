//! Fuzz target bodies, shared by the `cargo fuzz` targets in `fuzz/` (libFuzzer, nightly) and by
//! the stable tests below, which run the same functions over a seed corpus and bounded random
//! and mutated inputs on every `cargo test`. Each function must return for any input: an `Err`
//! is fine, a panic is a bug.

use bytes::Bytes;

use crate::protocol::apis;
use crate::protocol::connection::{decode_request, peek_header};
use crate::security::acl::{AclBinding, AclFilter};
use crate::transform::TransformSpec;

/// One request frame (without its size prefix) through the broker's decoding: header peek, the
/// version table, header and body decode.
pub fn request_decode(data: &[u8]) {
    let Ok((api_key, version, _)) = peek_header(data) else { return };
    if !apis::is_supported(api_key, version) {
        return;
    }
    let mut frame = Bytes::copy_from_slice(data);
    let _ = decode_request(api_key, version, &mut frame);
}

/// A transform manifest (the JSON spec `sluice apply` and `POST /v1/transforms` send): parse,
/// then validate.
pub fn transform_manifest(data: &[u8]) {
    if let Ok(spec) = serde_json::from_slice::<TransformSpec>(data) {
        let _ = spec.validate(1 << 30);
        let _ = spec.dead_letter_topic();
    }
}

/// ACL bindings and filters from arbitrary wire fields (CreateAcls / DeleteAcls input).
pub fn acl_wire(data: &[u8]) {
    let [rt, pt, op, perm, rest @ ..] = data else { return };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\0');
    let (name, principal, host) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (rt, pt, op, perm) = (*rt as i8, *pt as i8, *op as i8, *perm as i8);
    if let Ok(binding) = AclBinding::from_wire(rt, name, pt, principal, host, op, perm) {
        let _ = binding.covers(binding.resource_type, name);
    }
    if let Ok(filter) = AclFilter::from_wire(rt, Some(name), pt, Some(principal), Some(host), op, perm) {
        let _ = AclBinding::from_wire(2, "t", 3, "User:a", "*", 3, 3).map(|b| filter.matches(&b));
    }
}

/// YAML manifests (`sluice apply -f`): split, parse, locate and decode every document of every
/// kind, then the checks across documents. Problems are expected; a panic is a bug.
pub fn manifest_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut loaded = crate::manifest::load::Loaded::default();
    let path = std::path::Path::new("/nonexistent/fuzz.yaml");
    crate::manifest::load::parse("fuzz.yaml", path, &text, &mut loaded);
    let _ = crate::manifest::check(loaded, &Default::default());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiKey, MetadataRequest, ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// Random inputs per target per run: bounded so `cargo test` stays quick.
    const RANDOM_CASES: usize = 20_000;

    /// A tiny xorshift generator: deterministic (a failure reproduces), no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let len = (self.next() as usize) % (max + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    fn frame(key: ApiKey, version: i16, body: &impl Encodable) -> Vec<u8> {
        let mut buf = bytes::BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("fuzz")));
        header.encode(&mut buf, key.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    /// Valid frames: mutating these reaches deep into the body decoders.
    fn seed_frames() -> Vec<Vec<u8>> {
        let topic = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))));
        let metadata = MetadataRequest::default().with_topics(Some(vec![topic]));
        let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000);
        let mut seeds = vec![];
        for v in [1, 4, 9, 12] {
            seeds.push(frame(ApiKey::Metadata, v, &metadata));
        }
        for v in [3, 9, 11] {
            seeds.push(frame(ApiKey::Produce, v, &produce));
        }
        seeds
    }

    /// Mutates a seed: flips, overwrites, truncates or extends bytes.
    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..=(rng.next() % 4) {
            match rng.next() % 4 {
                0 if !out.is_empty() => {
                    let i = rng.next() as usize % out.len();
                    out[i] ^= 1 << (rng.next() % 8);
                }
                1 if !out.is_empty() => {
                    let i = rng.next() as usize % out.len();
                    out[i] = [0x00, 0xff, 0x7f, 0x80][rng.next() as usize % 4];
                }
                2 => out.truncate(rng.next() as usize % (out.len() + 1)),
                _ => out.extend(rng.bytes(16)),
            }
        }
        out
    }

    /// Request decoding never panics on random, mutated or truncated frames.
    #[test]
    fn request_decode_survives_hostile_frames() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let seeds = seed_frames();
        for seed in &seeds {
            // The seeds must decode, or the mutations below would only exercise the header peek.
            let (key, version, _) = peek_header(seed).unwrap();
            assert!(apis::is_supported(key, version), "{key:?} v{version}");
            decode_request(key, version, &mut Bytes::copy_from_slice(seed)).unwrap();
            request_decode(seed);
            for cut in 0..seed.len() {
                request_decode(&seed[..cut]);
            }
        }
        for i in 0..RANDOM_CASES {
            let input = if i % 2 == 0 { mutate(&mut rng, &seeds[i % seeds.len()]) } else { rng.bytes(64) };
            request_decode(&input);
        }
    }

    /// Transform manifests: mutated valid specs and random bytes parse or fail, never panic.
    #[test]
    fn transform_manifest_survives_hostile_input() {
        let mut rng = Rng(0x5eed_1234_abcd_0002);
        let seeds: Vec<Vec<u8>> = [
            r#"{"name":"up","input":"in","output":"out"}"#,
            r#"{"name":"d","input":"a","output":"b","error_policy":{"action":{"dead_letter":{"topic":"a"}},"retries":101}}"#,
            r#"{"name":"x","input":"a","output":"b","limits":{"memory_bytes":18446744073709551615,"batch_time_ms":0},"batch_records_max":0}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        for i in 0..RANDOM_CASES {
            let input = if i % 2 == 0 { mutate(&mut rng, &seeds[i % seeds.len()]) } else { rng.bytes(64) };
            transform_manifest(&input);
        }
    }

    /// ACL wire fields: any codes and strings.
    #[test]
    fn acl_wire_survives_hostile_input() {
        let mut rng = Rng(0x5eed_1234_abcd_0003);
        for _ in 0..RANDOM_CASES {
            acl_wire(&rng.bytes(48));
        }
        acl_wire(b"\x02\x04\x03\x03orders\0User:alice\0*");
    }

    /// Manifests: mutated documents of every kind (and random bytes) decode or report
    /// problems, never panic.
    #[test]
    fn manifest_yaml_survives_hostile_input() {
        let mut rng = Rng(0x5eed_1234_abcd_0004);
        let seeds: Vec<Vec<u8>> = [
            "apiVersion: sluice/v1\nkind: Topic\nmetadata: {name: a}\nspec:\n  partitions: 3\n  configs: {retention.ms: 1000}\n",
            "apiVersion: sluice/v1\nkind: Transform\nmetadata: {name: up}\nspec: {wasm: m.wasm, input: a, outputs: [b, c]}\n---\nkind: Pipeline\nmetadata: {name: p}\nspec: {transforms: [up]}\n",
            "apiVersion: sluice/v1\nkind: Acl\nmetadata: {name: r}\nspec:\n  principal: User:alice\n  resource: {type: topic, name: o-, patternType: prefixed}\n  operations: [read, write]\n  host: 10.0.0.1\n",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        for i in 0..RANDOM_CASES / 4 {
            let input = if i % 2 == 0 { mutate(&mut rng, &seeds[i % seeds.len()]) } else { rng.bytes(64) };
            manifest_yaml(&input);
        }
    }
}
