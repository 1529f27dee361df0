//! The keyword automaton: every pattern (in the automaton's alphabet, see
//! [`crate::normalize::encode_into`]) in one trie laid out as a **double array**.
//!
//! The matcher walks it anchored at each word start, so the only part of an Aho-Corasick
//! automaton it ever uses is the goto function (the trie): a walk never follows a failure link,
//! it stops where no pattern continues. Laid out as a double array, a step is two loads from one
//! array — `next = base[state] + code`, valid when `check[next] == state` — and the cell of the
//! state just entered (its `base` and its pattern) is the one the step read, so a step costs one
//! memory access and a handful of instructions, whatever the number of transitions of the state.
//! (`aho-corasick`'s contiguous NFA scans a sparse state's transitions linearly; its DFA is
//! ten times larger at 10,000 patterns.)

/// One cell: a state (or free, `check == FREE`).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct Cell {
    /// Where this state's children start: the child on code `c` is the cell `base + c`.
    /// [`LEAF`] for a state without children.
    base: u32,
    /// The parent state of this cell; [`FREE`] for a free cell.
    check: u32,
    /// The pattern that ends at this state, or [`NO_PATTERN`].
    pattern: u32,
}

const FREE: u32 = u32::MAX;
const LEAF: u32 = u32::MAX;
const NO_PATTERN: u32 = u32::MAX;

/// The start state.
pub(crate) const ROOT: u32 = 0;

/// A double-array trie of byte strings.
#[derive(Debug)]
pub(crate) struct Trie {
    cells: Vec<Cell>,
}

/// A state of the pointer trie the double array is built from.
#[derive(Default)]
struct Node {
    children: Vec<(u8, u32)>,
    pattern: u32,
}

impl Trie {
    /// The trie of `patterns` (each non-empty, none twice); pattern `i` ends at the state
    /// reached by its bytes.
    pub(crate) fn build(patterns: &[Vec<u8>]) -> Trie {
        let mut nodes = vec![Node {
            children: Vec::new(),
            pattern: NO_PATTERN,
        }];
        for (id, pattern) in patterns.iter().enumerate() {
            let mut at = 0usize;
            for &code in pattern {
                let found = nodes[at]
                    .children
                    .iter()
                    .find(|&&(c, _)| c == code)
                    .map(|&(_, n)| n as usize);
                at = match found {
                    Some(n) => n,
                    None => {
                        let n = nodes.len();
                        nodes.push(Node {
                            children: Vec::new(),
                            pattern: NO_PATTERN,
                        });
                        nodes[at].children.push((code, n as u32));
                        n
                    }
                };
            }
            nodes[at].pattern = id as u32;
        }
        let free = Cell {
            base: LEAF,
            check: FREE,
            pattern: NO_PATTERN,
        };
        let mut cells = vec![free; nodes.len() + 256];
        cells[0] = Cell {
            base: LEAF,
            check: FREE - 1,
            pattern: nodes[0].pattern,
        };
        // Breadth first: each state's children go to the first base where every one of their
        // cells is free. Candidates are free cells only: `skip` finds the first free cell at or
        // after a position (a union-find over the used cells, with path halving), so a dense
        // region costs nothing to cross.
        let mut skip: Vec<u32> = (0..cells.len() as u32).collect();
        skip[0] = 1;
        let mut queue = std::collections::VecDeque::from([(0usize, 0usize)]);
        while let Some((node, cell)) = queue.pop_front() {
            let mut children = std::mem::take(&mut nodes[node].children);
            if children.is_empty() {
                continue;
            }
            children.sort_unstable_by_key(|&(c, _)| c);
            let lowest = usize::from(children[0].0);
            let mut at = lowest + 1;
            let base = loop {
                at = first_free(&mut skip, at);
                if cells.len() < at + 257 {
                    let from = cells.len();
                    cells.resize(at + 257, free);
                    skip.extend(from as u32..(at + 257) as u32);
                }
                let base = at - lowest;
                if children
                    .iter()
                    .all(|&(c, _)| cells[base + usize::from(c)].check == FREE)
                {
                    break base;
                }
                at += 1;
            };
            cells[cell].base = base as u32;
            for &(code, child) in &children {
                let slot = base + usize::from(code);
                cells[slot] = Cell {
                    base: LEAF,
                    check: cell as u32,
                    pattern: nodes[child as usize].pattern,
                };
                skip[slot] = slot as u32 + 1;
                queue.push_back((child as usize, slot));
            }
        }
        let used = cells.iter().rposition(|c| c.check != FREE).unwrap_or(0);
        cells.truncate(used + 257);
        cells.shrink_to_fit();
        Trie { cells }
    }

    /// The state after `state` on `code`, and the pattern that ends there (if any); `None`
    /// when no pattern continues with `code`.
    #[inline(always)]
    pub(crate) fn step(&self, state: u32, code: u8) -> Option<(u32, Option<u32>, bool)> {
        let base = self.cells.get(state as usize)?.base;
        let next = base.wrapping_add(u32::from(code));
        let cell = self.cells.get(next as usize)?;
        if cell.check != state {
            return None;
        }
        let pattern = (cell.pattern != NO_PATTERN).then_some(cell.pattern);
        Some((next, pattern, cell.base != LEAF))
    }

    /// Heap memory, bytes.
    pub(crate) fn memory_usage(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<Cell>()
    }
}

/// The first free cell at or after `at` (`skip[i] == i` for a free cell; a used cell points
/// further on). Positions past the end are free.
fn first_free(skip: &mut [u32], mut at: usize) -> usize {
    while let Some(&next) = skip.get(at) {
        let next = next as usize;
        if next == at {
            return at;
        }
        // Path halving: point this cell past its successor.
        if let Some(&further) = skip.get(next) {
            skip[at] = further;
        }
        at = next;
    }
    at
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The patterns that are prefixes of `word`, by walking the trie.
    fn walk(trie: &Trie, word: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut state = ROOT;
        for &code in word {
            let Some((next, pattern, more)) = trie.step(state, code) else {
                break;
            };
            out.extend(pattern);
            state = next;
            if !more {
                break;
            }
        }
        out
    }

    #[test]
    fn a_walk_finds_exactly_the_patterns_that_start_the_word() {
        let patterns: Vec<Vec<u8>> = ["a", "ab", "abc", "b", "zz", "\u{80}\u{81}", "abd"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let trie = Trie::build(&patterns);
        assert_eq!(walk(&trie, b"abcd"), vec![0, 1, 2]);
        assert_eq!(walk(&trie, b"abd"), vec![0, 1, 6]);
        assert_eq!(walk(&trie, b"b"), vec![3]);
        assert_eq!(walk(&trie, b"z"), Vec::<u32>::new());
        assert_eq!(walk(&trie, b"zzz"), vec![4]);
        assert_eq!(walk(&trie, b"c"), Vec::<u32>::new());
        assert_eq!(walk(&trie, "\u{80}\u{81}".as_bytes()), vec![5]);
        assert_eq!(walk(&trie, b""), Vec::<u32>::new());
    }

    #[test]
    fn every_byte_from_every_state_agrees_with_a_plain_trie() {
        // Many patterns over the whole byte range, so cells are shared tightly.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as u8
        };
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for _ in 0..3000 {
            let len = 1 + usize::from(next() % 6);
            let p: Vec<u8> = (0..len).map(|_| next() % 40 + 200 * (next() % 2)).collect();
            if !patterns.contains(&p) {
                patterns.push(p);
            }
        }
        let trie = Trie::build(&patterns);
        for (i, p) in patterns.iter().enumerate() {
            let mut word = p.clone();
            word.push(255);
            let found = walk(&trie, &word);
            assert!(found.contains(&(i as u32)), "{p:?}");
            for id in found {
                assert!(word.starts_with(&patterns[id as usize]));
            }
        }
        // Words that are no pattern's extension find only true prefixes.
        for _ in 0..3000 {
            let word: Vec<u8> = (0..7).map(|_| next()).collect();
            for id in walk(&trie, &word) {
                assert!(word.starts_with(&patterns[id as usize]));
            }
            let want: Vec<u32> = (0..patterns.len() as u32)
                .filter(|&i| word.starts_with(&patterns[i as usize]))
                .collect();
            let mut got = walk(&trie, &word);
            got.sort_unstable();
            assert_eq!(got, want);
        }
    }
}
