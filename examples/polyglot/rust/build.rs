//! Puts libasyncrt.so's directory in the rpath of the shared object, as the
//! asyncrt crate does for its own tests (its link arguments stop at its own
//! targets; DEP_ASYNCRT_LIB_DIR is the directory its build script found).

use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_ASYNCRT_LIB_DIR");
    if let Some(dir) = env::var_os("DEP_ASYNCRT_LIB_DIR") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{}", dir.to_string_lossy());
    }
}
