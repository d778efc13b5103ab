//! The flamegraph preview: a PNG of a profile that Slack can show inline, linking to the
//! interactive page. The root is at the top (an icicle, as Pyroscope draws it) and each frame's
//! children are laid out widest first, so the hot path (from the root, the widest child at each
//! level) runs down the left edge and is drawn in strong colours and outlined; the rest
//! is muted. With a baseline, frames are coloured by how their share of the whole changed: red
//! grew, blue shrank, as in inferno's differential flamegraph.
//!
//! Bounded whatever the profile: at most [`MAX_DEPTH`] rows (the picture says how many more
//! there are) and frames narrower than half a pixel are left out with their callees.

use std::collections::{BTreeMap, HashMap};

use plotters::{
    coord::Shift,
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use crate::{Error, draw_error, encode, font};

/// Rows drawn at most; deeper frames are summarized in one line.
pub const MAX_DEPTH: usize = 28;
const WIDTH: u32 = 1200;
const ROW: u32 = 18;
const TOP: u32 = 34;
const BOTTOM: u32 = 24;
/// Average advance of a 12 px DejaVu Sans character, for cutting labels to fit.
const CHAR_WIDTH: f64 = 7.0;

/// What to draw.
#[derive(Debug, Clone, Copy)]
pub struct Preview<'a> {
    pub title: &'a str,
    /// Folded stacks (`a;b;c` → samples).
    pub stacks: &'a BTreeMap<String, u64>,
    /// The profile to compare with, for a differential preview.
    pub baseline: Option<&'a BTreeMap<String, u64>>,
}

/// A call tree node: a frame under its parent.
#[derive(Debug)]
struct Node<'a> {
    name: &'a str,
    total: u64,
    children: Vec<usize>,
}

/// The stacks merged into a tree (node 0 is the root, "all").
#[derive(Debug)]
struct Tree<'a> {
    nodes: Vec<Node<'a>>,
}

impl<'a> Tree<'a> {
    fn new(stacks: &'a BTreeMap<String, u64>) -> Tree<'a> {
        let mut nodes = vec![Node {
            name: "all",
            total: 0,
            children: Vec::new(),
        }];
        let mut index: HashMap<(usize, &'a str), usize> = HashMap::new();
        for (stack, &count) in stacks {
            if count == 0 {
                continue;
            }
            nodes[0].total = nodes[0].total.saturating_add(count);
            let mut at = 0;
            for frame in stack.split(';').filter(|frame| !frame.is_empty()) {
                let next = *index.entry((at, frame)).or_insert_with(|| {
                    nodes.push(Node {
                        name: frame,
                        total: 0,
                        children: Vec::new(),
                    });
                    let child = nodes.len() - 1;
                    nodes[at].children.push(child);
                    child
                });
                nodes[next].total = nodes[next].total.saturating_add(count);
                at = next;
            }
        }
        // Widest first, so the hot path runs down the left edge.
        let totals: Vec<u64> = nodes.iter().map(|node| node.total).collect();
        for node in &mut nodes {
            node.children
                .sort_by(|a, b| totals[*b].cmp(&totals[*a]).then(a.cmp(b)));
        }
        Tree { nodes }
    }

    /// Each node's total keyed by its path of names (for comparing with a baseline).
    fn shares_by_path(&self) -> HashMap<Vec<&'a str>, f64> {
        let mut out = HashMap::new();
        let root = self.nodes[0].total.max(1) as f64;
        let mut stack = vec![(0usize, Vec::new())];
        while let Some((at, path)) = stack.pop() {
            // Only what is drawn is compared: deeper paths would cost memory for nothing.
            if path.len() >= MAX_DEPTH {
                continue;
            }
            for &child in &self.nodes[at].children {
                let mut path = path.clone();
                path.push(self.nodes[child].name);
                out.insert(path.clone(), self.nodes[child].total as f64 / root);
                stack.push((child, path));
            }
        }
        out
    }

    /// The hot path: from the root, the widest child at each level.
    fn hot_path(&self) -> Vec<usize> {
        let mut path = vec![0];
        let mut at = 0;
        while let Some(&widest) = self.nodes[at].children.first() {
            path.push(widest);
            at = widest;
        }
        path
    }
}

/// A frame placed on the picture.
#[derive(Debug, Clone, PartialEq)]
struct Placed<'a> {
    node: usize,
    depth: usize,
    x: f64,
    width: f64,
    name: &'a str,
    /// The path of names from the root (for the baseline's share).
    path: Vec<&'a str>,
}

/// Lays the tree out: x and width in pixels, children left to right inside their parent; frames
/// under half a pixel are dropped with their subtree. Returns the frames and the deepest depth
/// the profile has (drawn or not).
fn layout<'a>(tree: &Tree<'a>, width: f64) -> (Vec<Placed<'a>>, usize) {
    let scale = width / tree.nodes[0].total.max(1) as f64;
    let mut placed = Vec::new();
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0usize, 0.0f64, Vec::new())];
    while let Some((node, depth, x, path)) = stack.pop() {
        deepest = deepest.max(depth);
        let frame = &tree.nodes[node];
        let frame_width = frame.total as f64 * scale;
        if frame_width < 0.5 {
            continue;
        }
        if depth < MAX_DEPTH {
            placed.push(Placed {
                node,
                depth,
                x,
                width: frame_width,
                name: frame.name,
                path: path.clone(),
            });
        } else {
            // Counted for "n more levels", not drawn.
            deepest = deepest.max(depth + subtree_depth(tree, node));
            continue;
        }
        let mut child_x = x;
        for &child in &frame.children {
            let mut child_path = path.clone();
            child_path.push(tree.nodes[child].name);
            stack.push((child, depth + 1, child_x, child_path));
            child_x += tree.nodes[child].total as f64 * scale;
        }
    }
    (placed, deepest)
}

fn subtree_depth(tree: &Tree<'_>, node: usize) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(node, 0)];
    while let Some((at, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        stack.extend(
            tree.nodes[at]
                .children
                .iter()
                .map(|&child| (child, depth + 1)),
        );
    }
    deepest
}

/// A warm colour from the frame's name (stable across pictures), strong on the hot path.
fn warm(name: &str, hot: bool) -> RGBColor {
    let hash = name.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    let v = (hash % 1000) as f64 / 1000.0;
    if hot {
        RGBColor(235, (60.0 + 80.0 * v) as u8, 30)
    } else {
        RGBColor(250, (190.0 + 40.0 * v) as u8, (120.0 + 50.0 * v) as u8)
    }
}

/// Red for a share that grew, blue for one that shrank, pale when unchanged (by percentage
/// points of the whole, saturating at 10).
fn diff_colour(change: f64) -> RGBColor {
    let strength = (change.abs() * 10.0).min(1.0);
    let fade = |full: f64| (255.0 - (255.0 - full) * (0.15 + 0.85 * strength)) as u8;
    if change >= 0.0 {
        RGBColor(255, fade(60.0), fade(60.0))
    } else {
        RGBColor(fade(60.0), fade(110.0), 255)
    }
}

impl Preview<'_> {
    /// The preview as a PNG.
    pub fn png(&self) -> Result<Vec<u8>, Error> {
        font::register()?;
        let tree = Tree::new(self.stacks);
        if tree.nodes[0].total == 0 {
            return Err(Error::Empty("no samples to draw"));
        }
        let (placed, deepest) = layout(&tree, f64::from(WIDTH));
        let rows = placed
            .iter()
            .map(|frame| frame.depth + 1)
            .max()
            .unwrap_or(1);
        let height = TOP + ROW * rows as u32 + BOTTOM;
        encode::png(WIDTH, height, |root| {
            self.draw(root, &tree, &placed, deepest, rows)
        })
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        tree: &Tree<'_>,
        placed: &[Placed<'_>],
        deepest: usize,
        rows: usize,
    ) -> Result<(), Error>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(draw_error)?;
        root.draw_text(
            self.title,
            &(font::FAMILY, 17)
                .into_font()
                .style(FontStyle::Bold)
                .color(&BLACK),
            (8, 8),
        )
        .map_err(draw_error)?;
        let hot: std::collections::HashSet<usize> = tree.hot_path().into_iter().collect();
        let before = self
            .baseline
            .map(|baseline| Tree::new(baseline).shares_by_path());
        let total = tree.nodes[0].total.max(1) as f64;
        let label = (font::FAMILY, 12).into_font();
        let bold = (font::FAMILY, 12).into_font().style(FontStyle::Bold);
        for frame in placed {
            let is_hot = hot.contains(&frame.node);
            let colour = match &before {
                Some(before) if frame.depth > 0 => {
                    let now = tree.nodes[frame.node].total as f64 / total;
                    let was = before.get(&frame.path).copied().unwrap_or(0.0);
                    diff_colour(now - was)
                }
                _ => warm(frame.name, is_hot),
            };
            let top = (TOP + ROW * frame.depth as u32) as i32;
            let (left, right) = (
                frame.x.round() as i32,
                (frame.x + frame.width).round() as i32,
            );
            let right = right.max(left + 1);
            root.draw(&Rectangle::new(
                [(left, top), (right - 1, top + ROW as i32 - 2)],
                colour.filled(),
            ))
            .map_err(draw_error)?;
            if is_hot {
                root.draw(&Rectangle::new(
                    [(left, top), (right - 1, top + ROW as i32 - 2)],
                    RGBColor(120, 20, 20).stroke_width(1),
                ))
                .map_err(draw_error)?;
            }
            let fits = ((frame.width - 6.0) / CHAR_WIDTH).floor();
            if fits >= 3.0 {
                let text = fit(frame.name, fits as usize);
                let style = if is_hot { &bold } else { &label };
                root.draw_text(
                    &text,
                    &style
                        .clone()
                        .color(&RGBColor(30, 30, 30))
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                    (left + 3, top + ROW as i32 / 2 - 1),
                )
                .map_err(draw_error)?;
            }
        }
        let footer_y = (TOP + ROW * rows as u32 + 4) as i32;
        let more = deepest.saturating_sub(rows - 1);
        let footer = if more > 0 {
            format!(
                "{more} more levels below · the outlined path is the hottest · open the interactive flamegraph for all of it"
            )
        } else {
            "the outlined path is the hottest · open the interactive flamegraph to zoom and search"
                .to_owned()
        };
        root.draw_text(
            &footer,
            &(font::FAMILY, 12).into_font().color(&RGBColor(90, 90, 90)),
            (8, footer_y),
        )
        .map_err(draw_error)?;
        Ok(())
    }
}

/// `name` cut to `chars` characters, with `…` when cut; control characters are shown as `?`.
fn fit(name: &str, chars: usize) -> String {
    let clean = name.chars().map(|c| if c.is_control() { '?' } else { c });
    if name.chars().count() <= chars {
        clean.collect()
    } else {
        clean.take(chars.saturating_sub(1)).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests;
