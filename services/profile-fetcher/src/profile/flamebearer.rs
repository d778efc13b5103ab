//! Pyroscope's flamegraph encoding, as both of its APIs send it: `names` plus `levels`, each level
//! a row of `[x_offset_delta, total, self, name_index]` nodes (numbers in the legacy `/render`
//! JSON, strings in the Connect API's protojson). x offsets are delta-encoded per level; level 0
//! is the root `total`; a node's parent is the node one level up with the greatest x not after
//! its own (`pkg/model/flamegraph.go::buildStack`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Folded;

/// Why a flamegraph could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlamegraphError {
    #[error("level {level} has {len} values, not a multiple of 4")]
    Ragged { level: usize, len: usize },
    #[error("level {level} names function {index}, but there are {names} names")]
    UnknownName {
        level: usize,
        index: i64,
        names: usize,
    },
    #[error("level {level} has a negative or overflowing value")]
    BadValue { level: usize },
    #[error("a node at level {level} has no parent")]
    Orphan { level: usize },
    #[error("not a flamegraph: {0}")]
    Malformed(String),
}

/// A flamegraph as sent: function names and levels of 4-tuples (already numbers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flamegraph {
    pub names: Vec<String>,
    pub levels: Vec<Vec<i64>>,
}

/// A number that may arrive as a JSON number or, from protojson int64, as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Number(i64),
    Text(String),
}

impl Int {
    fn value(self) -> Result<i64, FlamegraphError> {
        match self {
            Int::Number(value) => Ok(value),
            Int::Text(text) => text
                .parse()
                .map_err(|_| FlamegraphError::Malformed(format!("{text:?} is not an integer"))),
        }
    }
}

#[derive(Deserialize)]
struct ConnectLevel {
    #[serde(default)]
    values: Vec<Int>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Level {
    Connect(ConnectLevel),
    Render(Vec<Int>),
}

#[derive(Deserialize)]
struct Raw {
    names: Vec<String>,
    #[serde(default)]
    levels: Vec<Level>,
}

impl Flamegraph {
    /// Lays `folded` out as Pyroscope does: one row per depth, a node's self span first and then
    /// its children in name order, x delta-encoded per row. (What a Pyroscope-compatible server
    /// sends for these stacks; decoding it gives them back.)
    pub fn from_folded(folded: &Folded) -> Flamegraph {
        #[derive(Default)]
        struct Node {
            own: u64,
            total: u64,
            children: BTreeMap<String, Node>,
        }
        let mut root = Node::default();
        for (stack, value) in folded {
            root.total += value;
            let mut node = &mut root;
            for frame in stack.split(';') {
                node = node.children.entry(frame.to_owned()).or_default();
                node.total += value;
            }
            node.own += value;
        }
        let mut names = vec!["total".to_owned()];
        let mut index_of = BTreeMap::<String, i64>::from([("total".to_owned(), 0)]);
        let mut levels = Vec::new();
        let mut row: Vec<(u64, &str, &Node)> = vec![(0, "total", &root)];
        while !row.is_empty() {
            let mut values = Vec::with_capacity(row.len() * 4);
            let mut next = Vec::new();
            let mut previous_end = 0u64;
            for (x, name, node) in row {
                let index = *index_of.entry(name.to_owned()).or_insert_with(|| {
                    names.push(name.to_owned());
                    names.len() as i64 - 1
                });
                values.extend([
                    (x - previous_end) as i64,
                    node.total as i64,
                    node.own as i64,
                    index,
                ]);
                previous_end = x + node.total;
                let mut child_x = x + node.own;
                for (child_name, child) in &node.children {
                    next.push((child_x, child_name.as_str(), child));
                    child_x += child.total;
                }
            }
            levels.push(values);
            row = next;
        }
        Flamegraph { names, levels }
    }

    /// Reads the `flamebearer` object of `/render` or the `flamegraph` object of the Connect API.
    pub fn from_json(value: &serde_json::Value) -> Result<Flamegraph, FlamegraphError> {
        let raw =
            Raw::deserialize(value).map_err(|err| FlamegraphError::Malformed(err.to_string()))?;
        let levels = raw
            .levels
            .into_iter()
            .map(|level| {
                let values = match level {
                    Level::Connect(level) => level.values,
                    Level::Render(values) => values,
                };
                values
                    .into_iter()
                    .map(Int::value)
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Flamegraph {
            names: raw.names,
            levels,
        })
    }

    /// The folded stacks: every node's self value on its full stack (the root left out).
    pub fn to_folded(&self) -> Result<Folded, FlamegraphError> {
        // Per level: (x, total, stack) of each node, to find the parents of the next level.
        let mut above: Vec<(i64, i64, String)> = Vec::new();
        let mut folded = Folded::new();
        for (level, values) in self.levels.iter().enumerate() {
            if values.len() % 4 != 0 {
                return Err(FlamegraphError::Ragged {
                    level,
                    len: values.len(),
                });
            }
            let mut here = Vec::with_capacity(values.len() / 4);
            let mut previous_end = 0i64;
            let mut parent = 0usize;
            for node in values.chunks_exact(4) {
                let (delta, total, own, index) = (node[0], node[1], node[2], node[3]);
                if delta < 0 || total < 0 || own < 0 || own > total {
                    return Err(FlamegraphError::BadValue { level });
                }
                let x = previous_end
                    .checked_add(delta)
                    .ok_or(FlamegraphError::BadValue { level })?;
                previous_end = x
                    .checked_add(total)
                    .ok_or(FlamegraphError::BadValue { level })?;
                let name = usize::try_from(index)
                    .ok()
                    .and_then(|index| self.names.get(index))
                    .ok_or(FlamegraphError::UnknownName {
                        level,
                        index,
                        names: self.names.len(),
                    })?;
                let stack = if level == 0 {
                    String::new()
                } else {
                    // Nodes come in x order, so the parent only moves right.
                    while parent + 1 < above.len() && above[parent + 1].0 <= x {
                        parent += 1;
                    }
                    let Some((parent_x, _, parent_stack)) = above.get(parent) else {
                        return Err(FlamegraphError::Orphan { level });
                    };
                    if *parent_x > x {
                        return Err(FlamegraphError::Orphan { level });
                    }
                    if parent_stack.is_empty() {
                        name.clone()
                    } else {
                        format!("{parent_stack};{name}")
                    }
                };
                if level > 0 && own > 0 {
                    let entry = folded.entry(stack.clone()).or_default();
                    *entry = entry.saturating_add(own as u64);
                }
                here.push((x, total, stack));
            }
            above = here;
        }
        Ok(folded)
    }
}
