//! A zstd frame can declare a window (the history the decoder keeps) of up to 2 TiB
//! in one header byte, and a streaming decoder allocates that window before it has
//! produced a single byte. These tests measure what decoding a hand-made frame of a
//! dozen bytes allocates, and require it to stay within a small multiple of the
//! codec's decompressed-size limit.
//!
//! Measuring needs the C allocator: zstd is a C library that calls `malloc` itself,
//! so a Rust `#[global_allocator]` would never see its window. This test binary
//! therefore defines `malloc`, `calloc`, `realloc`, `free` and the aligned variants,
//! forwarding to glibc's `__libc_*` entry points and counting live bytes (by
//! `malloc_usable_size`) and their peak. Rust's own allocations reach `malloc` through
//! std's system allocator, so the count covers both. Integration tests are separate
//! binaries, so this replaces the allocator of this one binary only; the functions
//! are `extern "C"` definitions of libc symbols, which needs `unsafe` (hence the
//! `allow(unsafe_code)` below, for this file alone). glibc only, where the
//! `__libc_*` names exist.

#![cfg(all(target_os = "linux", target_env = "gnu"))]
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::{c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::Bytes;
use sdk_codec::{Codec, CodecError, Payload, PayloadMeta};

// ---- the counting C allocator -------------------------------------------------------

/// Live heap bytes (may dip below zero by blocks freed here that glibc allocated
/// internally before or beside this count; only differences are used).
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The highest `LIVE` since the last [`Peak::start`].
static PEAK: AtomicIsize = AtomicIsize::new(0);

unsafe extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(count: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn malloc_usable_size(ptr: *mut c_void) -> usize;
}

fn usable(ptr: *mut c_void) -> isize {
    if ptr.is_null() {
        0
    } else {
        // SAFETY: `ptr` is a live block from glibc's allocator.
        isize::try_from(unsafe { malloc_usable_size(ptr) }).unwrap_or(isize::MAX)
    }
}

fn grew(ptr: *mut c_void) -> *mut c_void {
    let n = usable(ptr);
    let now = LIVE.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
    ptr
}

/// # Safety
/// As C `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    grew(unsafe { __libc_malloc(size) })
}

/// # Safety
/// As C `calloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    grew(unsafe { __libc_calloc(count, size) })
}

/// # Safety
/// As C `realloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let old = usable(ptr);
    let new = unsafe { __libc_realloc(ptr, size) };
    if new.is_null() && size != 0 {
        // Failed: the old block is untouched.
        return new;
    }
    LIVE.fetch_sub(old, Ordering::SeqCst);
    grew(new)
}

/// # Safety
/// As C `free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    LIVE.fetch_sub(usable(ptr), Ordering::SeqCst);
    unsafe { __libc_free(ptr) }
}

/// # Safety
/// As C `memalign`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    grew(unsafe { __libc_memalign(align, size) })
}

/// # Safety
/// As C `aligned_alloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    grew(unsafe { __libc_memalign(align, size) })
}

/// # Safety
/// As C `posix_memalign`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    const EINVAL: c_int = 22;
    const ENOMEM: c_int = 12;
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<usize>()) {
        return EINVAL;
    }
    let ptr = grew(unsafe { __libc_memalign(align, size) });
    if ptr.is_null() {
        return ENOMEM;
    }
    unsafe { out.write(ptr) };
    0
}

/// Tests in this binary run on several threads, and the counter sees every thread:
/// each test holds this lock for its whole body, so no other test allocates (a
/// compressor's 8 MiB window, say) while one measures. The harness's own threads add
/// a little noise, far below the bounds asserted.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the calling test alone among this binary's tests.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The peak of live heap bytes while `f` runs, above the live bytes when it started.
/// The caller holds [`alone`].
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let result = f();
    let peak = PEAK.load(Ordering::SeqCst);
    (result, usize::try_from(peak - base).unwrap_or(0))
}

// ---- hand-made frames ---------------------------------------------------------------

const MIB: u64 = 1 << 20;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Note {
    #[serde(default)]
    text: String,
}
impl Payload for Note {}

/// A zstd frame (RFC 8878) with no content size, whose window descriptor says
/// `2^window_log` bytes, holding `content` as one raw block.
fn frame(window_log: u8, content: &[u8]) -> Vec<u8> {
    assert!((10..=41).contains(&window_log));
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd]; // magic
    f.push(0x00); // no content size, not single-segment, no checksum, no dictionary
    f.push((window_log - 10) << 3); // window descriptor: exponent, mantissa 0
    raw_last_block(&mut f, content);
    f
}

/// A single-segment frame: the window is the declared content size.
fn single_segment_frame(content_size: u32, content: &[u8]) -> Vec<u8> {
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
    f.push(0b1010_0000); // 4-byte content size, single segment
    f.extend_from_slice(&content_size.to_le_bytes());
    raw_last_block(&mut f, content);
    f
}

fn raw_last_block(f: &mut Vec<u8>, content: &[u8]) {
    let header = 1u32 | ((content.len() as u32) << 3); // last block, raw
    f.extend_from_slice(&header.to_le_bytes()[..3]);
    f.extend_from_slice(content);
}

/// The legacy zstd v0.7 format: the same window byte, 128 MiB here, and a raw block
/// then an end block.
fn legacy_v07_frame(content: &[u8]) -> Vec<u8> {
    let mut f = vec![0x27, 0xb5, 0x2f, 0xfd];
    f.push(0x00);
    f.push((27 - 10) << 3);
    let n = content.len();
    f.extend_from_slice(&[0x40 | ((n >> 16) & 7) as u8, (n >> 8) as u8, n as u8]);
    f.extend_from_slice(content);
    f.extend_from_slice(&[0xc0, 0, 0]);
    f
}

const LIMIT: usize = MIB as usize;

fn codec() -> Codec {
    Codec::builder().max_decoded_size(LIMIT).build().unwrap()
}

fn decode(codec: &Codec, bytes: &[u8]) -> Result<Note, CodecError> {
    codec.decode::<Note>(
        Bytes::copy_from_slice(bytes),
        &PayloadMeta::new("application/json").with_encoding(Some("zstd")),
    )
}

/// Decoding stays within this many multiples of the limit (the window itself may be
/// up to twice the limit, rounded to a power of two, plus zstd's block buffers).
const BOUND: usize = 4 * LIMIT;

#[test]
fn the_counter_sees_zstds_own_window_allocation() {
    let _alone = alone();
    // Honesty check for the measurement: a frame whose 1 MiB window is allowed must
    // show that window in the peak, though it holds two bytes.
    let codec = codec();
    let (result, peak) = peak_during(|| decode(&codec, &frame(20, b"{}")));
    assert!(result.is_ok(), "{result:?}");
    assert!(
        peak >= LIMIT,
        "peak {peak} bytes: the counter missed the window"
    );
    assert!(peak <= BOUND, "peak {peak} bytes");
}

#[test]
fn a_frame_declaring_a_128_mib_window_is_refused_without_allocating_it() {
    let _alone = alone();
    let codec = codec();
    let bytes = frame(27, b"{}");
    assert!(bytes.len() < 20);
    let (result, peak) = peak_during(|| decode(&codec, &bytes));
    eprintln!("128 MiB window: peak {peak} bytes, result {result:?}");
    assert!(
        peak <= BOUND,
        "decoding a {}-byte frame allocated {peak} bytes, over {BOUND} (4 x max_decoded)",
        bytes.len()
    );
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::WindowTooLarge {
                window,
                limit,
            } if window == 128 * MIB && limit == MIB
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "zstd frame declares a 134217728-byte window, over the limit of 1048576 bytes \
         set by the decompressed-size limit; compress with a smaller window \
         (a lower level, or a known content size) or raise max_decoded_size"
    );
}

#[test]
fn a_frame_declaring_a_2_gib_window_is_refused_by_the_same_rule() {
    let _alone = alone();
    let codec = codec();
    let bytes = frame(31, b"{}");
    let (result, peak) = peak_during(|| decode(&codec, &bytes));
    eprintln!("2 GiB window: peak {peak} bytes, result {result:?}");
    assert!(peak <= BOUND, "allocated {peak} bytes");
    let err = result.unwrap_err();
    assert!(
        matches!(err, CodecError::WindowTooLarge { window, .. } if window == 2048 * MIB),
        "{err:?}"
    );
}

#[test]
fn a_single_segment_frame_declaring_100_mib_is_refused() {
    let _alone = alone();
    let codec = codec();
    let bytes = single_segment_frame(100 * MIB as u32, b"{}");
    let (result, peak) = peak_during(|| decode(&codec, &bytes));
    eprintln!("single segment: peak {peak} bytes, result {result:?}");
    assert!(peak <= BOUND, "allocated {peak} bytes");
    let err = result.unwrap_err();
    assert!(
        matches!(err, CodecError::WindowTooLarge { window, .. } if window == 100 * MIB),
        "{err:?}"
    );
}

#[test]
fn a_huge_window_in_a_second_frame_is_refused_too() {
    let _alone = alone();
    let codec = codec();
    let mut bytes = frame(12, b"{\"text\":");
    bytes.extend_from_slice(&frame(27, b"\"x\"}"));
    let (result, peak) = peak_during(|| decode(&codec, &bytes));
    eprintln!("second frame: peak {peak} bytes, result {result:?}");
    assert!(peak <= BOUND, "allocated {peak} bytes");
    let err = result.unwrap_err();
    assert!(
        matches!(err, CodecError::WindowTooLarge { window, .. } if window == 128 * MIB),
        "{err:?}"
    );
    // The two frames with small windows decode as one payload.
    let mut ok = frame(12, b"{\"text\":");
    ok.extend_from_slice(&frame(12, b"\"x\"}"));
    assert_eq!(decode(&codec, &ok).unwrap().text, "x");
}

#[test]
fn legacy_zstd_frames_are_refused_before_they_allocate() {
    let _alone = alone();
    // The legacy decoders (zstd v0.1 to v0.7 formats) ignore the window limit.
    let codec = codec();
    let bytes = legacy_v07_frame(b"{}");
    let (result, peak) = peak_during(|| decode(&codec, &bytes));
    eprintln!("legacy v0.7: peak {peak} bytes, result {result:?}");
    assert!(peak <= BOUND, "allocated {peak} bytes");
    let err = result.unwrap_err();
    assert!(matches!(err, CodecError::Decompression { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "zstd decompression failed: the frame at byte 0 is in a legacy zstd format \
         (v0.7); only the standard zstd format (RFC 8878) is accepted"
    );
}

#[test]
fn the_default_limit_still_reads_frames_from_ordinary_streaming_compressors() {
    let _alone = alone();
    // zstd's command line at level 19, streaming (no content size): an 8 MiB window,
    // within the default 16 MiB limit.
    use std::io::Write as _;
    // (Under the measurement lock only so that its large compressor does not show
    // in another test's peak.)
    let (bytes, _) = peak_during(|| {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(br#"{"text":"hello"}"#).unwrap();
        enc.finish().unwrap()
    });
    assert_eq!(bytes[5] >> 3, 23 - 10, "an 8 MiB window: {bytes:02x?}");
    assert_eq!(decode(&Codec::default(), &bytes).unwrap().text, "hello");
}

/// A real bomb: 64 MiB of zeros that compress to a few kilobytes, with and without a
/// declared content size. Decoding stops at the limit, and what it holds on the way
/// stays within the same bound as a hand-made frame: the output so far plus the
/// window, not the 64 MiB.
#[test]
fn a_decompression_bomb_stops_at_the_limit_within_the_bound() {
    let _alone = alone();
    let codec = codec();
    let zeros = vec![0u8; 64 << 20];
    let with_size = zstd::bulk::compress(&zeros, 1).unwrap();
    let mut without_size = Vec::new();
    {
        // The streaming encoder does not know the size up front: no content size.
        let mut encoder = zstd::stream::write::Encoder::new(&mut without_size, 1).unwrap();
        encoder.window_log(20).unwrap();
        std::io::Write::write_all(&mut encoder, &zeros).unwrap();
        encoder.finish().unwrap();
    }
    drop(zeros);
    // Declared: refused on the declared size. Not declared: stopped one byte past.
    for (name, bytes, stopped_at) in [
        ("with size", with_size, 64 << 20),
        ("without size", without_size, LIMIT + 1),
    ] {
        assert!(bytes.len() < 64 * 1024, "{name}: {} bytes", bytes.len());
        let (result, peak) = peak_during(|| decode(&codec, &bytes));
        eprintln!("bomb {name}: peak {peak} bytes, result {result:?}");
        assert!(
            matches!(result, Err(CodecError::TooLarge { actual, .. }) if actual == stopped_at),
            "{name}: {result:?}"
        );
        assert!(peak <= BOUND, "{name}: peak {peak} bytes, over {BOUND}");
    }
}
