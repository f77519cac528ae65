//! Compaction policy: a pure function from a [`Version`] and the [`Config`] to a plan.
//!
//! Leveled compaction with dynamic level sizes (RocksDB's `level_compaction_dynamic_level_bytes`):
//! the bottom level's size sets the targets of the levels above it, each `level_multiplier`
//! times smaller; levels whose target would fall below `level_base_bytes / level_multiplier` are
//! left empty and L0 compacts straight into the first level in use (the *base level*). So a
//! small store has two levels in use and a growing one adds levels from the bottom up, which
//! keeps space amplification near `1 + 1/multiplier`.
//!
//! The mechanism that carries a plan out lives in [`super::job`].
use super::config::{Config, NUM_LEVELS};
use super::version::{TableFile, Version};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// What to compact.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Input files with their levels.
    pub inputs: Vec<(usize, Arc<TableFile>)>,
    /// Where the outputs go.
    pub output_level: usize,
    /// True when no level below the output holds keys in the range, so tombstones that no
    /// snapshot needs can be dropped.
    pub bottommost: bool,
    /// A single input with no overlap below: move it without rewriting.
    pub trivial_move: bool,
}

/// The level L0 compacts into, and each level's target size.
pub fn level_targets(version: &Version, config: &Config) -> (usize, [u64; NUM_LEVELS]) {
    let bottom = NUM_LEVELS - 1;
    let mult = config.level_multiplier.max(2);
    let mut targets = [0u64; NUM_LEVELS];
    let max_bytes = (1..NUM_LEVELS).map(|l| version.level_bytes(l)).max().unwrap_or(0);
    targets[bottom] = max_bytes.max(config.level_base_bytes);
    let mut base = bottom;
    for l in (1..bottom).rev() {
        let t = targets[l + 1] / mult;
        if t < config.level_base_bytes {
            break;
        }
        targets[l] = t;
        base = l;
    }
    (base, targets)
}

/// Chooses the most urgent compaction, or `None` when every level is within its target.
///
/// `cursors[l]` is the largest user key compacted last time out of level `l` (round-robin).
pub fn pick(version: &Version, config: &Config, cursors: &[Vec<u8>; NUM_LEVELS]) -> Option<Plan> {
    let (base, targets) = level_targets(version, config);
    let mut best: Option<(f64, usize)> = None;
    let l0 = version.levels[0].len();
    if l0 >= config.l0_compaction_trigger.max(1) {
        best = Some((l0 as f64 / config.l0_compaction_trigger.max(1) as f64, 0));
    }
    for (level, target) in targets.iter().enumerate().take(NUM_LEVELS - 1).skip(1) {
        let bytes = version.level_bytes(level);
        if bytes == 0 {
            continue;
        }
        // Levels above the base level should be empty: drain them first.
        let score = if level < base { f64::MAX } else { bytes as f64 / (*target).max(1) as f64 };
        if score >= 1.0 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, level));
        }
    }
    let (_, level) = best?;
    if level == 0 {
        return Some(plan_l0(version, base));
    }
    let files = &version.levels[level];
    let cursor = &cursors[level];
    let pick = files.iter().find(|f| f.smallest() > cursor.as_slice()).or(files.first())?;
    Some(plan_from(version, level, level + 1, alloc::vec![pick.clone()]))
}

/// Plans the compaction of every file meeting `[lo, hi]` down into the bottom level, for an
/// explicit `compact_range`. Returns `None` when nothing overlaps.
pub fn plan_range(version: &Version, lo: &[u8], hi: &[u8]) -> Option<Plan> {
    let mut lo = lo.to_vec();
    let mut hi = hi.to_vec();
    loop {
        let mut inputs = Vec::new();
        for (level, files) in version.levels.iter().enumerate() {
            for f in files.iter().filter(|f| f.overlaps(&lo, &hi)) {
                inputs.push((level, f.clone()));
            }
        }
        let (nlo, nhi) = span(inputs.iter().map(|(_, f)| f))?;
        if nlo >= lo && nhi <= hi {
            return Some(Plan { inputs, output_level: NUM_LEVELS - 1, bottommost: true, trivial_move: false });
        }
        lo = lo.min(nlo);
        hi = hi.max(nhi);
    }
}

fn plan_l0(version: &Version, base: usize) -> Plan {
    let l0: Vec<_> = version.levels[0].clone();
    plan_from(version, 0, base, l0)
}

/// Inputs from `level` plus every file of `output_level` they overlap, widened until the input
/// set of `level` covers the whole key span (so L1+ never gains overlapping files).
fn plan_from(version: &Version, level: usize, output_level: usize, mut upper: Vec<Arc<TableFile>>) -> Plan {
    let (mut lo, mut hi) = span(upper.iter()).unwrap_or_default();
    let mut lower = version.overlapping(output_level, &lo, &hi);
    if level > 0 {
        if let Some((l2, h2)) = span(upper.iter().chain(lower.iter())) {
            let widened = version.overlapping(level, &l2, &h2);
            if widened.len() > upper.len() {
                let (wl, wh) = span(widened.iter()).unwrap_or_default();
                let lower2 = version.overlapping(output_level, &wl, &wh);
                if lower2.len() == lower.len() {
                    upper = widened;
                    lo = wl;
                    hi = wh;
                    lower = lower2;
                }
            }
        }
    }
    let all_lo = span(upper.iter().chain(lower.iter())).map(|s| s.0).unwrap_or_else(|| lo.clone());
    let all_hi = span(upper.iter().chain(lower.iter())).map(|s| s.1).unwrap_or_else(|| hi.clone());
    let bottommost = (output_level + 1..NUM_LEVELS).all(|l| version.overlapping(l, &all_lo, &all_hi).is_empty());
    let trivial_move = level > 0 && upper.len() == 1 && lower.is_empty();
    let mut inputs: Vec<(usize, Arc<TableFile>)> = upper.into_iter().map(|f| (level, f)).collect();
    inputs.extend(lower.into_iter().map(|f| (output_level, f)));
    Plan { inputs, output_level, bottommost, trivial_move }
}

fn span<'a>(files: impl Iterator<Item = &'a Arc<TableFile>>) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut out: Option<(&[u8], &[u8])> = None;
    for f in files {
        out = Some(match out {
            None => (f.smallest(), f.largest()),
            Some((lo, hi)) => (lo.min(f.smallest()), hi.max(f.largest())),
        });
    }
    out.map(|(lo, hi)| (lo.to_vec(), hi.to_vec()))
}
