//! The layer allocates nothing on events it does not touch, nor on the h2
//! frame events it reads and suppresses.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the events are handled on the
    /// thread that emits them, and the test harness's own threads may
    /// allocate meanwhile (seen under load: 4 in the window, none ours).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug)]
#[allow(dead_code)]
struct Ping {
    ack: bool,
    payload: [u8; 8],
}

fn allocations_of(dispatch: &Dispatch, f: impl Fn()) -> usize {
    tracing::dispatcher::with_default(dispatch, || {
        // Warm up: callsite registration and fmt's thread-local buffer.
        for _ in 0..10 {
            f();
        }
        let before = allocations();
        for _ in 0..1000 {
            f();
        }
        allocations() - before
    })
}

fn dispatch(layer: bool) -> Dispatch {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(LevelFilter::INFO);
    if layer {
        Dispatch::new(
            tracing_subscriber::registry()
                .with(fmt)
                .with(thawtrace_instrument::layer()),
        )
    } else {
        Dispatch::new(tracing_subscriber::registry().with(fmt))
    }
}

#[test]
fn no_allocation_on_untouched_or_suppressed_events() {
    let ordinary = || tracing::info!(order = 42u64, "order accepted");
    let without = allocations_of(&dispatch(false), ordinary);
    let with = allocations_of(&dispatch(true), ordinary);
    assert_eq!(
        with, without,
        "ordinary events: {with} allocations with the layer, {without} without"
    );

    let frame = Ping {
        ack: false,
        payload: [59, 124, 219, 122, 11, 135, 22, 180],
    };
    let h2 = || tracing::debug!(target: "h2::codec::framed_write", frame = ?frame, "send");
    assert_eq!(
        allocations_of(&dispatch(true), h2),
        0,
        "h2 frame events read and suppressed without allocating"
    );
}
