//! The byte mutator: small edits of a valid input (bit flips, interesting bytes, insertions,
//! deletions, duplicated ranges, truncation), so that generated inputs stay close enough to
//! valid ones to get past the first parser.

use rand::Rng;

/// Byte values that often sit on a boundary of some length, count or tag.
const INTERESTING: [u8; 10] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xf7, 0xf8, b'"', b'0'];

/// Applies one to four random edits to `input`.
pub fn mutate(rng: &mut impl Rng, input: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=4) {
        let len = input.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let at = rng.random_range(0..len);
                input[at] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.random_range(0..len);
                input[at] = INTERESTING[rng.random_range(0..INTERESTING.len())];
            }
            2 => {
                let at = rng.random_range(0..=len);
                let count = rng.random_range(1..=8);
                let bytes: Vec<u8> = (0..count).map(|_| rng.random()).collect();
                input.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = rng.random_range(start..=len.min(start + 16));
                input.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = rng.random_range(start..=len.min(start + 32));
                let copy = input[start..end].to_vec();
                let at = rng.random_range(0..=len);
                input.splice(at..at, copy);
            }
            5 if len > 0 => input.truncate(rng.random_range(0..len)),
            _ => {
                let at = rng.random_range(0..=len);
                input.insert(at, INTERESTING[rng.random_range(0..INTERESTING.len())]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mutate;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn mutation_changes_inputs_and_is_reproducible_from_its_seed() {
        let original = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"}".to_vec();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| {
                    let mut input = original.clone();
                    mutate(&mut rng, &mut input);
                    input
                })
                .collect::<Vec<_>>()
        };
        let first = run(7);
        assert_eq!(first, run(7), "the same seed must give the same mutations");
        assert_ne!(first, run(8));
        assert!(first.iter().filter(|mutated| **mutated != original).count() > 40);
        // Mutating the empty input works too (insertions only).
        let mut empty = Vec::new();
        mutate(&mut StdRng::seed_from_u64(1), &mut empty);
    }
}
