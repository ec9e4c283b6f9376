//! Prints the TypeScript declarations of the bindings' answers (web/src/wasm/answers.gen.ts).

fn main() {
    print!("{}", perpetua_wasm::typescript::declarations());
}
