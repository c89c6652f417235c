import NIOCore
import PropertyBased
import Testing
@testable import MeshTransport

/// The grouping of a flush's datagrams into segmented writes (UDP segmentation offload): the kernel cuts a write
/// into datagrams of its segment size, so a write may only hold datagrams of one size (the last may be shorter), to
/// one peer, within the kernel's limits — and every datagram must come out once, in order.
@Suite struct DatagramCoalescerTests {
    struct Pair: Sendable { var peer: Int; var size: Int }

    static let peers = [try! SocketAddress(ipAddress: "127.0.0.1", port: 7001),
                        try! SocketAddress(ipAddress: "127.0.0.1", port: 7002)]

    /// A datagram whose bytes say which it is (its index first, then its low byte repeated), so that order and
    /// content can be checked. Filled, not built byte by byte: the property below makes tens of thousands of them,
    /// and seconds of computation on the cooperative pool starve the socket tests running beside it.
    static func datagram(_ index: Int, size: Int) -> ByteBuffer {
        var buffer = ByteBuffer(repeating: UInt8(truncatingIfNeeded: index), count: size)
        buffer.setInteger(UInt32(truncatingIfNeeded: index), at: 0)  // every size used here is at least 24
        return buffer
    }

    static func coalesce(_ input: [(peer: Int, size: Int)], maxSegments: Int = DatagramCoalescer.kernelMaxSegments)
        -> [DatagramCoalescer.Write] {
        var coalescer = DatagramCoalescer(maxSegments: maxSegments)
        var writes: [DatagramCoalescer.Write] = []
        for (index, item) in input.enumerated() {
            coalescer.add(datagram(index, size: item.size), to: peers[item.peer]) { writes.append($0) }
        }
        coalescer.finish { writes.append($0) }
        return writes
    }

    /// The datagrams the kernel makes of `writes`, in order.
    static func cut(_ writes: [DatagramCoalescer.Write]) -> [(SocketAddress, ByteBuffer)] {
        writes.flatMap { write -> [(SocketAddress, ByteBuffer)] in
            guard let size = write.segmentSize else { return [(write.address, write.buffer)] }
            var buffer = write.buffer
            var out: [(SocketAddress, ByteBuffer)] = []
            while buffer.readableBytes > 0 { out.append((write.address, buffer.readSlice(length: min(size, buffer.readableBytes))!)) }
            return out
        }
    }

    @Test func aRunOfEqualDatagramsToOnePeerIsOneWrite() {
        let writes = Self.coalesce(Array(repeating: (0, 1100), count: 40))
        #expect(writes.count == 1)
        #expect(writes[0].segmentSize == 1100 && writes[0].buffer.readableBytes == 44_000)
    }

    @Test func aShorterDatagramEndsTheRunAndALargerOneStartsANewOne() {
        let writes = Self.coalesce([(0, 1100), (0, 1100), (0, 300), (0, 1100), (0, 1200), (0, 1200)])
        #expect(writes.map(\.segmentSize) == [1100, nil, 1200])
        #expect(writes.map(\.buffer.readableBytes) == [2500, 1100, 2400])
    }

    @Test func aLoneDatagramIsWrittenAsItIs() {
        let writes = Self.coalesce([(0, 1100), (1, 1100), (0, 60)])
        #expect(writes.map(\.segmentSize) == [nil, nil, nil])
        #expect(writes.map(\.address) == [Self.peers[0], Self.peers[1], Self.peers[0]])
    }

    @Test func aDatagramLargerThanAnEthernetMTUTakesNoSegmentedWrite() {
        let writes = Self.coalesce([(0, 1100), (0, 1100), (0, 2000), (0, 2000), (0, 1100)])
        #expect(writes.map(\.segmentSize) == [1100, nil, nil, nil])
        #expect(Self.cut(writes).map(\.1.readableBytes) == [1100, 1100, 2000, 2000, 1100])
    }

    @Test func aWriteStaysWithinTheKernelsSegmentAndByteLimits() {
        let many = Self.coalesce(Array(repeating: (0, 100), count: 150))
        #expect(many.map { $0.buffer.readableBytes / 100 } == [64, 64, 22])
        let large = Self.coalesce(Array(repeating: (0, 1400), count: 50))
        #expect(large.allSatisfy { $0.buffer.readableBytes <= DatagramCoalescer.maxBytes })
        #expect(large.map { $0.buffer.readableBytes / 1400 } == [46, 4])
    }

    /// Any sequence: the writes cut back into exactly the datagrams added, in order; each write keeps the rules;
    /// and no two neighbouring writes could have been one (the runs are as long as the rules allow).
    @Test func writesCutBackIntoTheSameDatagramsAndRunsAreMaximal() async {
        // Mostly runs of one size to one peer, as a flush of a busy sender has, broken by acknowledgements (small),
        // other sizes and the other peer.
        let flushes = Generator<[Pair], Shrink.None<[Pair]>> { rng in
            let sizes = [24, 60, 900, 1100, 1100, 1100, 1400, 1452, 1453, 4000]
            var items: [Pair] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                let item = Pair(peer: Int.random(in: 0...1, using: &rng), size: sizes.randomElement(using: &rng)!)
                items += Array(repeating: item, count: Int.random(in: 1...70, using: &rng))
            }
            return items
        }
        await propertyCheck(count: 100, input: flushes, Gen.int(in: 1...64)) { pairs, maxSegments in
            let input = pairs.map { (peer: $0.peer, size: $0.size) }
            let writes = Self.coalesce(input, maxSegments: maxSegments)
            let datagrams = Self.cut(writes)
            #expect(datagrams.count == input.count)
            for (index, (address, bytes)) in datagrams.enumerated() where index < input.count {
                #expect(address == Self.peers[input[index].peer])
                #expect(bytes == Self.datagram(index, size: input[index].size))
            }
            var remaining = input[...]
            var previous: (write: DatagramCoalescer.Write, items: ArraySlice<(peer: Int, size: Int)>)?
            for write in writes {
                let count = write.segmentSize.map { (write.buffer.readableBytes + $0 - 1) / $0 } ?? 1
                let items = remaining.prefix(count)
                remaining = remaining.dropFirst(count)
                #expect(count <= maxSegments && write.buffer.readableBytes <= DatagramCoalescer.maxBytes)
                if let size = write.segmentSize {
                    #expect(count > 1)
                    #expect(items.dropLast().allSatisfy { $0.size == size } && items.last!.size <= size)
                }
                if let size = write.segmentSize { #expect(size <= DatagramCoalescer.maxSegmentSize) }
                if let (last, lastItems) = previous, let first = items.first, Self.peers[first.peer] == last.address {
                    let size = lastItems.first!.size
                    let joinable = size <= DatagramCoalescer.maxSegmentSize && lastItems.allSatisfy { $0.size == size } && first.size <= size
                        && lastItems.count < maxSegments && last.buffer.readableBytes + first.size <= DatagramCoalescer.maxBytes
                    #expect(!joinable, "datagram \(input.count - remaining.count - count) could have joined the write before it")
                }
                previous = (write, items)
            }
        }
    }
}
