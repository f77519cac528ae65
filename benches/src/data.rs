//! Deterministic keys and values: 16-byte random keys, 100-byte random (incompressible) values.
//!
//! A seeded SplitMix64 generator, so every engine sees the same keys in the same order.

/// Key length in bytes.
pub const KEY_LEN: usize = 16;
/// Value length in bytes.
pub const VALUE_LEN: usize = 100;

/// A 16-byte key.
pub type Key = [u8; KEY_LEN];
/// A 100-byte value.
pub type Value = [u8; VALUE_LEN];

/// SplitMix64: tiny, fast and good enough to spread keys.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A random key.
    pub fn key(&mut self) -> Key {
        let mut k = [0u8; KEY_LEN];
        self.fill(&mut k);
        k
    }

    /// A random value.
    pub fn value(&mut self) -> Value {
        let mut v = [0u8; VALUE_LEN];
        self.fill(&mut v);
        v
    }
}

/// `n` random key/value pairs from `seed`. Keys are distinct with overwhelming probability
/// (128 random bits).
pub fn pairs(seed: u64, n: usize) -> Vec<(Key, Value)> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| (rng.key(), rng.value())).collect()
}

/// `n` random keys from `seed`, none of which (with overwhelming probability) was ever written.
pub fn missing_keys(seed: u64, n: usize) -> Vec<Key> {
    let mut rng = Rng::new(seed ^ 0x005E_ED0F_4D15_5106);
    (0..n).map(|_| rng.key()).collect()
}

/// Raw bytes of `n` live pairs: what a perfect store would occupy.
pub fn raw_bytes(n: usize) -> u64 {
    (n * (KEY_LEN + VALUE_LEN)) as u64
}
