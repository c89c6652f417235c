import Testing

/// The tests that stream between `mesh node` child processes for many seconds (random kills, the soak), one at
/// a time: each loads both cores by itself, and together they starved each other's progress checks on a 2-core
/// machine (a kill meant to land mid-stream landed after it).
@Suite(.serialized) struct StreamingChildProcessTests {}
