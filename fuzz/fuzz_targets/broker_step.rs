//! The broker's whole input path driven by arbitrary bytes: connects, disconnects, subscribes
//! (with queue groups and arbitrary patterns), unsubscribes (also after N), publishes,
//! requests, cancels, clock ticks and partial drains, with small pending limits. Never panics,
//! and the invariants (pending bounded, index and broker agree) hold after every step.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::broker::{Broker, BrokerConfig, ClientId, RequestId, Sid};

const WORDS: [&str; 10] = ["a", "b", "*", ">", "", " ", "_INBOX", "1", "2", "é"];

struct Input<'a>(&'a [u8]);
impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn text(&mut self) -> Option<String> {
        let n = self.byte()? % 5;
        let mut t = Vec::new();
        for _ in 0..=n {
            t.push(WORDS[(self.byte()? % 10) as usize]);
        }
        Some(t.join("."))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(seed) = input.byte() else { return };
    let mut b = Broker::new(BrokerConfig {
        seed: u64::from(seed),
        max_pending_msgs: 4,
        max_pending_bytes: 64,
        max_payload_bytes: 32,
        max_subject_bytes: 16,
        max_subscriptions_per_client: 8,
        max_requests_per_client: 3,
        ..BrokerConfig::default()
    });
    let mut now = 0u64;
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 2_000 {
            break;
        }
        let c = ClientId(u64::from(op >> 4) % 6);
        let r = match op % 10 {
            0 => {
                b.handle_connect(now);
                Some(())
            }
            1 => b.handle_disconnect(now, c).ok(),
            2 | 3 => {
                let sid = Sid(u64::from(input.byte().unwrap_or(0) % 8));
                let pattern = input.text().unwrap_or_default();
                let queue = match input.byte().unwrap_or(0) % 4 {
                    0 => Some("q"),
                    1 => Some(""),
                    _ => None,
                };
                b.handle_subscribe(now, c, sid, &pattern, queue).ok()
            }
            4 => {
                let sid = Sid(u64::from(input.byte().unwrap_or(0) % 8));
                let after = input.byte().filter(|x| x % 2 == 0).map(|x| u64::from(x % 5));
                b.handle_unsubscribe(now, c, sid, after).ok()
            }
            5 | 6 => {
                let subject = input.text().unwrap_or_default();
                let reply = if input.byte().unwrap_or(0) % 3 == 0 { input.text() } else { None };
                let payload = vec![0u8; usize::from(input.byte().unwrap_or(0) % 40)];
                b.handle_publish(now, c, &subject, reply.as_deref(), &payload).ok().map(|_| ())
            }
            7 => {
                let subject = input.text().unwrap_or_default();
                let timeout = input.byte().filter(|x| x % 3 != 0).map(|x| u64::from(x % 20));
                b.handle_request(now, c, &subject, b"?", timeout).ok().map(|_| ())
            }
            8 => {
                let req = RequestId(u64::from(input.byte().unwrap_or(0) % 6));
                b.handle_cancel(now, c, req).ok()
            }
            _ => {
                now += u64::from(input.byte().unwrap_or(0) % 16);
                b.handle_timeout(now);
                for k in 0..6 {
                    for _ in 0..(op % 3) {
                        let _ = b.poll_delivery(ClientId(k));
                    }
                }
                Some(())
            }
        };
        let _ = r;
        // A timeout call at the reported deadline always clears it.
        if let Some(d) = b.next_deadline() {
            if d <= now {
                b.handle_timeout(now);
                assert!(b.next_deadline().map_or(true, |d| d > now));
            }
        }
        while b.poll_event().is_some() {}
        b.check_invariants();
    }
});
