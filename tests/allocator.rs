//! The allocator settings `model::configure_process` applies, checked the way a training step
//! meets them: on the main thread (glibc's main arena, where the trainer allocates), a burst of
//! tensor-sized buffers larger than 1 GiB is freed and allocated again. Freed heap must stay
//! mapped, so the second burst reuses pages instead of faulting fresh zeroed ones in.
//!
//! Its own binary without the test harness, because the harness runs each test on a spawned
//! thread, whose arena is not the one the trainer uses.

const BLOCK: usize = 25 << 20; // an attention-sized buffer: 32 × 12 × 128 × 128 f32 ≈ 25 MB
const BLOCKS: usize = 48; // 1.2 GiB, more than one training step frees

fn main() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        println!("allocator: glibc only, nothing to check here");
        return;
    }
    verbatim::model::configure_process();
    burst(); // the heap grows to its peak
    let before = minor_faults();
    burst(); // ... and is used again
    let faults = minor_faults() - before;
    let pages = (BLOCKS * BLOCK / 4096) as i64;
    println!("allocator: {faults} minor faults for {pages} pages allocated again after being freed");
    assert!(faults < pages / 20, "allocating {BLOCKS} × {} MiB again after freeing them faulted {faults} of {pages} pages in: the heap was given back to the kernel (trim or mmap threshold)", BLOCK >> 20);
}

/// Allocates the blocks, writes every page of each (as a tensor op does), then frees them all.
fn burst() {
    let blocks: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8 | 1; BLOCK]).collect();
    let sum: u64 = blocks.iter().map(|b| b[BLOCK / 2] as u64).sum();
    std::hint::black_box(sum);
}

fn minor_faults() -> i64 {
    // SAFETY: getrusage writes only into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_minflt
}
