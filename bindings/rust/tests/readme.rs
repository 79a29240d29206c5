//! The README's Rust example is examples/hello.rs, which `make rusttest`
//! runs: the two must not drift apart.

use std::fs;
use std::path::Path;

/// The first ```rust block after the "## Rust" heading.
fn readme_rust_example(readme: &str) -> Option<String> {
    let section = &readme[readme.find("\n## Rust\n")?..];
    let start = section.find("```rust\n")? + "```rust\n".len();
    let end = start + section[start..].find("\n```")?;
    Some(section[start..end].to_string())
}

#[test]
fn the_readme_example_is_examples_hello_rs() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(crate_dir.join("../../README.md")).expect("README.md at the top of the tree");
    let example = fs::read_to_string(crate_dir.join("examples/hello.rs")).unwrap();
    let shown = readme_rust_example(&readme).expect("README.md has a \"## Rust\" section with a ```rust block");
    assert_eq!(shown.trim_end(), example.trim_end(), "README.md's Rust example differs from examples/hello.rs");
}
