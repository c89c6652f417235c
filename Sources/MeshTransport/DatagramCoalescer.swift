import NIOCore

/// Gathers the datagrams of one flush into UDP segmentation offload (GSO) writes: a run of consecutive datagrams
/// to the same peer, all of one size except a shorter last one, goes to the kernel as one buffer with its segment
/// size, and the kernel cuts it into those datagrams on the way out (`UDP_SEGMENT`, Linux 4.18). The receiver sees
/// the same datagrams as without it; the sender's stack is walked once per run instead of once per datagram. A
/// run of one datagram is written as it is.
///
/// A pure value: ``add(_:to:emit:)`` and ``finish(emit:)`` hand each write to `emit` in datagram order. Owned by
/// the ``TransportHandler`` and used on its event loop only.
struct DatagramCoalescer {
    /// One write for the socket: `segmentSize` is set when `buffer` holds several datagrams of that size (the last
    /// may be shorter).
    struct Write {
        var address: SocketAddress
        var buffer: ByteBuffer
        var segmentSize: Int?
    }

    /// Most datagrams per write.
    let maxSegments: Int
    /// The kernel's `UDP_MAX_SEGMENTS` as of Linux 4.18 (later kernels allow more; none allows fewer).
    static let kernelMaxSegments = 64
    /// Most bytes per write: the largest UDP payload of an IPv4 datagram (65,535 − 20 − 8).
    static let maxBytes = 65_507
    /// Largest datagram gathered: what fits a 1,500-byte Ethernet MTU under IPv6 and UDP headers. The kernel refuses
    /// (`EINVAL`) a segmented write whose segments exceed the device's MTU, where it would have fragmented a lone
    /// datagram; larger datagrams (a ``TransportConfiguration/maxDatagramSize`` set past the path's MTU) go alone.
    static let maxSegmentSize = 1_452

    private var address: SocketAddress?
    /// The run's first datagram (its buffer becomes the write's), and the others.
    private var head: ByteBuffer?
    private var tail: [ByteBuffer] = []
    private var segmentSize = 0
    private var bytes = 0
    /// The last datagram was shorter than the segment size: it ends the run.
    private var closed = false

    init(maxSegments: Int) {
        precondition(maxSegments >= 1)
        self.maxSegments = maxSegments
        tail.reserveCapacity(maxSegments - 1)
    }

    /// Adds the next datagram of the flush; a run it cannot join is handed to `emit` first.
    mutating func add(_ datagram: ByteBuffer, to destination: SocketAddress, emit: (Write) -> Void) {
        let size = datagram.readableBytes
        guard size <= Self.maxSegmentSize else {
            finish(emit: emit)
            return emit(Write(address: destination, buffer: datagram, segmentSize: nil))
        }
        if let address, !(!closed && size <= segmentSize && tail.count + 1 < maxSegments
                          && bytes + size <= Self.maxBytes && address == destination) {
            finish(emit: emit)
        }
        if head == nil {
            address = destination
            segmentSize = size
            head = datagram
        } else {
            closed = size < segmentSize
            tail.append(datagram)
        }
        bytes += size
    }

    /// Hands over what is gathered (at the end of a flush).
    mutating func finish(emit: (Write) -> Void) {
        guard let address, var buffer = head else { return }
        self.address = nil
        head = nil  // before `buffer` grows: it is then the only owner, and grows in place
        if tail.isEmpty {
            emit(Write(address: address, buffer: buffer, segmentSize: nil))
        } else {
            buffer.reserveCapacity(minimumWritableBytes: bytes - buffer.readableBytes)
            for datagram in tail { buffer.writeImmutableBuffer(datagram) }
            tail.removeAll(keepingCapacity: true)
            emit(Write(address: address, buffer: buffer, segmentSize: segmentSize))
        }
        bytes = 0
        closed = false
    }
}
