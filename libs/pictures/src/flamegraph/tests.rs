use super::*;
use crate::encode::decode_rgb as decode;

fn folded(lines: &[(&str, u64)]) -> BTreeMap<String, u64> {
    lines.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

#[test]
fn the_tree_merges_stacks_and_the_hot_path_follows_the_widest_child() {
    let stacks = folded(&[
        ("main;serve;parse_json", 60),
        ("main;serve;render", 30),
        ("main;gc", 10),
    ]);
    let tree = Tree::new(&stacks);
    assert_eq!(tree.nodes[0].total, 100);
    let names: Vec<&str> = tree
        .hot_path()
        .iter()
        .map(|&n| tree.nodes[n].name)
        .collect();
    assert_eq!(names, ["all", "main", "serve", "parse_json"]);
    let (placed, deepest) = layout(&tree, 1000.0);
    assert_eq!(deepest, 3);
    let serve = placed.iter().find(|p| p.name == "serve").unwrap();
    assert_eq!((serve.x, serve.width), (0.0, 900.0));
    let gc = placed.iter().find(|p| p.name == "gc").unwrap();
    assert_eq!((gc.x, gc.width), (900.0, 100.0));
    let render = placed.iter().find(|p| p.name == "render").unwrap();
    assert_eq!(render.path, ["main", "serve", "render"]);
}

#[test]
fn the_preview_is_a_picture_with_the_hot_path_in_strong_colours() {
    let stacks = folded(&[
        ("main;serve;parse_json;<script>alert(1)</script>", 60),
        ("main;serve;render", 30),
        ("main;gc", 10),
    ]);
    let png = Preview {
        title: "CPU · checkout",
        stacks: &stacks,
        baseline: None,
    }
    .png()
    .unwrap();
    std::fs::write(std::env::temp_dir().join("flamethread-preview.png"), &png).unwrap();
    let (width, height, pixels) = decode(&png);
    assert_eq!(width, WIDTH);
    assert_eq!(
        height,
        TOP + ROW * 5 + BOTTOM,
        "five rows: all and four levels"
    );
    let strong = pixels.iter().filter(|p| p[0] == 235 && p[2] == 30).count();
    assert!(strong > 1000, "the hot path is drawn strong: {strong}");
    let distinct: std::collections::BTreeSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(distinct.len() > 20);
}

#[test]
fn a_deep_profile_is_cut_and_says_how_many_levels_are_left() {
    let deep: String = (0..100)
        .map(|i| format!("f{i}"))
        .collect::<Vec<_>>()
        .join(";");
    let stacks = folded(&[(&deep, 5)]);
    let tree = Tree::new(&stacks);
    let (placed, deepest) = layout(&tree, 1000.0);
    assert_eq!(placed.len(), MAX_DEPTH);
    assert_eq!(deepest, 100);
    let png = Preview {
        title: "deep",
        stacks: &stacks,
        baseline: None,
    }
    .png()
    .unwrap();
    let (_, height, _) = decode(&png);
    assert_eq!(height, TOP + ROW * MAX_DEPTH as u32 + BOTTOM);
}

#[test]
fn a_diff_colours_growth_red_and_shrinkage_blue() {
    let before = folded(&[("main;parse_json", 20), ("main;render", 80)]);
    let after = folded(&[("main;parse_json", 80), ("main;render", 20)]);
    let png = Preview {
        title: "diff",
        stacks: &after,
        baseline: Some(&before),
    }
    .png()
    .unwrap();
    std::fs::write(
        std::env::temp_dir().join("flamethread-preview-diff.png"),
        &png,
    )
    .unwrap();
    let (_, _, pixels) = decode(&png);
    let red = pixels.iter().filter(|p| **p == [255, 60, 60]).count();
    let blue = pixels.iter().filter(|p| **p == [60, 110, 255]).count();
    assert!(red > 1000 && blue > 1000, "red {red}, blue {blue}");
}

#[test]
fn nothing_to_draw_and_hostile_names_are_handled() {
    let empty = folded(&[("main", 0)]);
    let err = Preview {
        title: "t",
        stacks: &empty,
        baseline: None,
    }
    .png()
    .unwrap_err();
    assert_eq!(err.to_string(), "no samples to draw");
    assert_eq!(fit("parse\u{0}json", 20), "parse?json");
    assert_eq!(fit("abcdefgh", 4), "abc…");
    let hostile = folded(&[(&format!("{};;;x", "\u{202e}\n".repeat(5000)), 3)]);
    Preview {
        title: "\0",
        stacks: &hostile,
        baseline: None,
    }
    .png()
    .unwrap();
}
