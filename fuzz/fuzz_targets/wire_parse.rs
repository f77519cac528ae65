//! The NATS text-protocol parsers on arbitrary bytes (what a server reads from the network):
//! never panic; each operation uses at least one byte and no more than the input; a payload is
//! never longer than the limit; every parsed PUB/HPUB/SUB/UNSUB/MSG/HMSG re-encodes to bytes
//! that parse back to the same operation; reading headers never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::wire::{
    encode_hmsg, encode_hpub, encode_msg, encode_pub, encode_sub, encode_unsub, header, parse_client_op,
    parse_server_op, status, ClientOp, Limits, ServerOp,
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_control_line: 256, max_payload: 512 };
    let mut at = 0;
    while at < data.len() {
        match parse_client_op(&data[at..], &limits) {
            Ok(Some((op, n))) => {
                assert!(n > 0 && at + n <= data.len());
                let mut out = Vec::new();
                match op {
                    ClientOp::Pub { subject, reply, payload } => {
                        assert!(payload.len() <= limits.max_payload);
                        encode_pub(&mut out, subject, reply, payload);
                    }
                    ClientOp::HPub { subject, reply, headers, payload } => {
                        assert!(headers.len() + payload.len() <= limits.max_payload);
                        let _ = (status(headers), header(headers, "Nats-Msg-Id"));
                        encode_hpub(&mut out, subject, reply, headers, payload);
                    }
                    ClientOp::Sub { subject, queue, sid } => encode_sub(&mut out, subject, queue, sid),
                    ClientOp::Unsub { sid, max } => encode_unsub(&mut out, sid, max),
                    _ => {}
                }
                if !out.is_empty() {
                    let big = Limits { max_control_line: 4096, max_payload: 512 };
                    let (again, m) = parse_client_op(&out, &big).unwrap().unwrap();
                    assert_eq!(again, op);
                    assert_eq!(m, out.len());
                }
                at += n;
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
    let mut at = 0;
    while at < data.len() {
        match parse_server_op(&data[at..], &limits) {
            Ok(Some((op, n))) => {
                assert!(n > 0 && at + n <= data.len());
                let mut out = Vec::new();
                match op {
                    ServerOp::Msg { subject, sid, reply, payload } => encode_msg(&mut out, subject, sid, reply, payload),
                    ServerOp::HMsg { subject, sid, reply, headers, payload } => {
                        encode_hmsg(&mut out, subject, sid, reply, headers, payload)
                    }
                    _ => {}
                }
                if !out.is_empty() {
                    let big = Limits { max_control_line: 4096, max_payload: 512 };
                    assert_eq!(parse_server_op(&out, &big).unwrap().unwrap().0, op);
                }
                at += n;
            }
            _ => break,
        }
    }
});
