//! `sim`: run a seed of the simulation (see [`sim::internal::cli`]).

// Seeds allocate and free many small values (records, messages, trace events) on short-lived
// threads; mimalloc's per-thread free lists cost about half of what glibc's malloc does here
// (see the README's Speed section). Allocation never reaches a trace, so determinism is untouched.
#[global_allocator]
static ALLOCATOR: Mimalloc = Mimalloc;

/// mimalloc, asked through its plain entry points where they give the alignment asked for.
///
/// The `mimalloc` crate passes every request to `mi_malloc_aligned`, whose quick path takes a
/// free block only if it happens to sit at the alignment, and otherwise, or when the page's
/// free list is empty, takes its slow general path. Every mimalloc block is at least
/// word-aligned (its free list's links live in the blocks, and its size classes are whole
/// words), so an alignment of a word or less needs no aligned call: that is nearly every
/// allocation here (strings, byte buffers, boxes of word-aligned values). Larger alignments
/// (16-byte SIMD groups of hash tables, say) keep the aligned calls.
struct Mimalloc;

/// The alignment every mimalloc block has (`MI_INTPTR_SIZE` on 64-bit targets).
const PLAIN_ALIGN: usize = std::mem::size_of::<usize>();

fn plain(align: usize) -> bool {
    align <= PLAIN_ALIGN
}

// SAFETY: each method forwards to the mimalloc function for the same job, which honours the
// layout's alignment (see `plain`); `dealloc` and `realloc` get pointers this allocator gave.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if plain(align) {
            libmimalloc_sys::mi_malloc(size).cast()
        } else {
            libmimalloc_sys::mi_malloc_aligned(size, align).cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if plain(align) {
            libmimalloc_sys::mi_zalloc(size).cast()
        } else {
            libmimalloc_sys::mi_zalloc_aligned(size, align).cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        libmimalloc_sys::mi_free(ptr.cast());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align()) {
            libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

/// mimalloc v3's `mi_option_purge_delay` (its place in `mi_option_e`, `include/mimalloc.h`;
/// `libmimalloc-sys` names only the options before it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Freed memory is kept for the next seed instead of given back to the OS after a delay:
    // every seed runs on a new thread that fills a new heap, and memory given back is faulted
    // in and zeroed again by the kernel (a few percent of a sweep's wall time, measured with
    // `farm-bench`). The peak stays flat (the same pages serve seed after seed). A
    // MIMALLOC_PURGE_DELAY set by the user is left as set.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, which it reads when it purges.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout().lock();
    let code = sim::internal::cli::main_with(args, &mut out);
    drop(out);
    std::process::exit(code);
}
