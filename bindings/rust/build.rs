//! Links libasyncrt.so: from $ASYNCRT_LIBRARY (the Makefile exports the
//! absolute path of build/libasyncrt.so), else ../../build/libasyncrt.so
//! relative to this crate. The library's directory is also put in the rpath
//! of the crate's tests, examples and binaries, so they run without
//! LD_LIBRARY_PATH.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=ASYNCRT_LIBRARY");
    let library = match env::var_os("ASYNCRT_LIBRARY") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let crate_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
            crate_dir.join("../../build/libasyncrt.so")
        }
    };
    if !library.is_file() {
        panic!(
            "asyncrt: {} not found: run `make lib` at the top of the asyncrt tree, \
             or set ASYNCRT_LIBRARY to the path of libasyncrt.so",
            library.display()
        );
    }
    let library = library.canonicalize().expect("the library path resolves");
    println!("cargo:rerun-if-changed={}", library.display());
    let dir = library.parent().expect("a file has a parent directory");
    let name = library.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // -l wants the name between "lib" and ".so"; a differently named file
    // cannot be linked by name.
    let link_name = name
        .strip_prefix("lib")
        .and_then(|n| n.strip_suffix(".so"))
        .unwrap_or_else(|| panic!("asyncrt: ASYNCRT_LIBRARY must name a lib<name>.so file, not {}", name));
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib={}", link_name);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    // For crates that depend on this one (DEP_ASYNCRT_LIB_DIR).
    println!("cargo:lib_dir={}", dir.display());
}
