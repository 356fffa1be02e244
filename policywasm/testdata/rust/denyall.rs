// A Warden policy hook written in Rust, with no crates and no std: it
// denies every check whose action is not "function:get". It exists so that
// Warden's tests load a module built by a second toolchain.
//
// Regenerate denyall.wasm with Debian's rustc and its wasm32 standard
// library (apt-get install rustc libstd-rust-dev-wasm32):
//
//   rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -O -C panic=abort -C strip=symbols denyall.rs -o denyall.wasm
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

static mut INPUT: [u8; 65536] = [0; 65536];
static ALLOW: &[u8] = b"{\"allow\":true}";
static DENY: &[u8] = b"{\"allow\":false,\"reason\":\"only function:get\"}";

#[no_mangle]
pub extern "C" fn warden_abi_version() -> i32 {
    1
}

#[no_mangle]
pub unsafe extern "C" fn warden_alloc(size: i32) -> i32 {
    if size < 0 || size as usize > INPUT.len() {
        return 0;
    }
    INPUT.as_ptr() as i32
}

#[no_mangle]
pub unsafe extern "C" fn warden_evaluate(ptr: i32, len: i32) -> i64 {
    let input = core::slice::from_raw_parts(ptr as *const u8, len as usize);
    let want = b"\"action\":\"function:get\"";
    let found = input.windows(want.len()).any(|w| w == want);
    let out = if found { ALLOW } else { DENY };
    ((out.as_ptr() as i64) << 32) | out.len() as i64
}
