#if canImport(Glibc)
import Glibc
#endif

/// Process-wide allocator settings for the `mesh` executable (a library never changes them; an application
/// embedding Mesh can do the same with `mallopt` or glibc's `MALLOC_TRIM_THRESHOLD_`/`MALLOC_TOP_PAD_`).
///
/// A node's thread allocates and frees a few hundred kilobytes per commit (rows, statements, datagrams). With
/// glibc's defaults the heap of that thread's arena shrinks back after every burst and grows again at the next:
/// one `mprotect` (and freshly zeroed pages) per message. A trim threshold of 64 MiB and 16 MiB of top padding
/// keep that memory mapped instead. Either environment variable, when set, is left to take effect as glibc
/// reads it; elsewhere than glibc this does nothing.
enum MallocTuning {
    /// glibc's `M_TRIM_THRESHOLD` and `M_TOP_PAD` (`<malloc.h>`, which the Glibc module does not import).
    private static let trimThreshold: Int32 = -1
    private static let topPad: Int32 = -2

    static func apply() {
        #if canImport(Glibc)
        // Looked up at run time: `mallopt` is glibc's, and not in the Swift overlay.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        if getenv("MALLOC_TRIM_THRESHOLD_") == nil { _ = mallopt(trimThreshold, 64 << 20) }
        if getenv("MALLOC_TOP_PAD_") == nil { _ = mallopt(topPad, 16 << 20) }
        #endif
    }
}
