import NIOCore

/// One frame inside a datagram body. A datagram carries any number of frames, coalesced up to the datagram
/// size limit.
enum Frame: Equatable, Sendable {
    /// Elicits an acknowledgement; used as keepalive on idle sessions.
    case ping
    /// Packet numbers received (QUIC-style ranges) and how long the newest was held before this ack.
    case ack(AckFrame)
    /// Opens a session: "I am (sender node, sender epoch), and this is my session `session` with you". Answered by
    /// ``welcome``. Session numbers grow within a sender's epoch: a hello with a higher one than the session held
    /// means the sender forgot the old session (it closed it as idle), so the receiver starts afresh too. Version 1
    /// hellos carried no session number (read as 0); from version 3 the opener understands a welcome that names the
    /// hello it answers.
    case hello(version: UInt8, session: UInt64)
    /// Accepts a session opened by a hello; the header's destination epoch echoes the opener's epoch, `session`
    /// is the accepter's own session number with the opener, and `answering` the opener's session number from the
    /// hello it accepts (`nil` in the form a version-2 opener reads): an opener that has since given that hello up
    /// (and sent a newer one) ignores the welcome, since its peer will reset again at the newer hello.
    case welcome(session: UInt64, answering: UInt64?)
    /// "You addressed an epoch of mine that is gone": the sender must open a new session.
    case stale
    /// The sender is shutting down gracefully.
    case goodbye
    /// Every reliable message of `lane` up to and including `upTo` is durable at the receiver.
    case confirm(lane: UInt16, upTo: UInt64)
    /// The receiver refused reliable message (`lane`, `seq`) and will not take it; `reason` says why.
    case reject(lane: UInt16, seq: UInt64, reason: String)
    /// The sender gave up on reliable messages `from...to` of `lane` and will never send them again: the
    /// receiver skips them so the lane does not stall.
    case abandon(lane: UInt16, from: UInt64, to: UInt64)
    /// A message, or a fragment of one.
    case data(DataFrame)

    var isAckEliciting: Bool {
        switch self {
        case .ack: false
        default: true
        }
    }
}

/// An acknowledgement: the largest packet number received, the ack delay, and ranges highest first.
struct AckFrame: Equatable, Sendable {
    /// Ranges of received packet numbers, highest first, disjoint.
    var ranges: [ClosedRange<UInt64>]
    /// How long the receiver held the largest acknowledged packet before sending this, in microseconds.
    var delayMicros: UInt64

    var largest: UInt64 { ranges.first?.upperBound ?? 0 }
}

/// A message or fragment. Reliable messages are numbered per lane (the command ID) and delivered in order;
/// unreliable ones are numbered from their own counter only so fragments can be reassembled.
struct DataFrame: Equatable, Sendable {
    var reliable: Bool
    var lane: UInt16
    var seq: UInt64
    var fragment: Fragment?
    var payload: ByteBuffer

    struct Fragment: Equatable, Sendable {
        var index: UInt32
        var count: UInt32
        var totalLength: UInt32
    }
}

enum FrameType: UInt8 {
    case ping = 0x01, ack = 0x02, hello = 0x03, welcome = 0x04, stale = 0x05, goodbye = 0x06
    case confirm = 0x07, reject = 0x08, abandon = 0x09, welcomeAnswering = 0x0A, data = 0x10
}

extension ByteBuffer {
    @inline(__always)
    mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        writeInteger(UInt8(truncatingIfNeeded: v))
    }

    @inline(__always)
    mutating func readVarint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = readInteger(as: UInt8.self) {
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }
}

/// Bytes a varint of `value` takes.
@inline(__always)
func varintSize(_ value: UInt64) -> Int {
    var v = value
    var n = 1
    while v >= 0x80 {
        v >>= 7
        n += 1
    }
    return n
}

extension Frame {
    /// Bytes this frame takes when written.
    var encodedSize: Int {
        switch self {
        case .ping, .stale, .goodbye: return 1
        case .welcome(let session, let answering): return 1 + varintSize(session) + (answering.map(varintSize) ?? 0)
        case .hello(let version, let session): return 2 + (version >= 2 ? varintSize(session) : 0)
        case .ack(let ack):
            var n = 1 + varintSize(ack.largest) + varintSize(ack.delayMicros) + varintSize(UInt64(max(ack.ranges.count - 1, 0)))
            guard let first = ack.ranges.first else { return n + 1 }
            n += varintSize(first.upperBound - first.lowerBound)
            var previousLow = first.lowerBound
            for range in ack.ranges.dropFirst() {
                n += varintSize(previousLow - range.upperBound - 2) + varintSize(range.upperBound - range.lowerBound)
                previousLow = range.lowerBound
            }
            return n
        case .confirm(_, let upTo): return 3 + varintSize(upTo)
        case .abandon(_, let from, let to): return 3 + varintSize(from) + varintSize(to - from)
        case .reject(_, let seq, let reason):
            let length = Self.reasonBytes(reason).count
            return 3 + varintSize(seq) + varintSize(UInt64(length)) + length
        case .data(let frame):
            var n = 1 + 1 + 2 + varintSize(frame.seq)
            if let f = frame.fragment {
                n += varintSize(UInt64(f.index)) + varintSize(UInt64(f.count)) + varintSize(UInt64(f.totalLength))
            }
            return n + varintSize(UInt64(frame.payload.readableBytes)) + frame.payload.readableBytes
        }
    }

    func write(to buffer: inout ByteBuffer) {
        switch self {
        case .ping: buffer.writeInteger(FrameType.ping.rawValue)
        case .welcome(let session, nil):
            buffer.writeInteger(FrameType.welcome.rawValue)
            buffer.writeVarint(session)
        case .welcome(let session, let answering?):
            buffer.writeInteger(FrameType.welcomeAnswering.rawValue)
            buffer.writeVarint(session)
            buffer.writeVarint(answering)
        case .stale: buffer.writeInteger(FrameType.stale.rawValue)
        case .goodbye: buffer.writeInteger(FrameType.goodbye.rawValue)
        case .hello(let version, let session):
            buffer.writeInteger(FrameType.hello.rawValue)
            buffer.writeInteger(version)
            if version >= 2 { buffer.writeVarint(session) }
        case .ack(let ack):
            buffer.writeInteger(FrameType.ack.rawValue)
            buffer.writeVarint(ack.largest)
            buffer.writeVarint(ack.delayMicros)
            buffer.writeVarint(UInt64(max(ack.ranges.count - 1, 0)))
            guard let first = ack.ranges.first else {
                buffer.writeVarint(0)
                return
            }
            buffer.writeVarint(first.upperBound - first.lowerBound)
            var previousLow = first.lowerBound
            for range in ack.ranges.dropFirst() {
                buffer.writeVarint(previousLow - range.upperBound - 2)
                buffer.writeVarint(range.upperBound - range.lowerBound)
                previousLow = range.lowerBound
            }
        case .confirm(let lane, let upTo):
            buffer.writeInteger(FrameType.confirm.rawValue)
            buffer.writeInteger(lane)
            buffer.writeVarint(upTo)
        case .abandon(let lane, let from, let to):
            buffer.writeInteger(FrameType.abandon.rawValue)
            buffer.writeInteger(lane)
            buffer.writeVarint(from)
            buffer.writeVarint(to - from)
        case .reject(let lane, let seq, let reason):
            buffer.writeInteger(FrameType.reject.rawValue)
            buffer.writeInteger(lane)
            buffer.writeVarint(seq)
            let bytes = Self.reasonBytes(reason)
            buffer.writeVarint(UInt64(bytes.count))
            buffer.writeBytes(bytes)
        case .data(let frame):
            buffer.writeInteger(FrameType.data.rawValue)
            buffer.writeInteger(UInt8((frame.reliable ? 1 : 0) | (frame.fragment != nil ? 2 : 0)))
            buffer.writeInteger(frame.lane)
            buffer.writeVarint(frame.seq)
            if let f = frame.fragment {
                buffer.writeVarint(UInt64(f.index))
                buffer.writeVarint(UInt64(f.count))
                buffer.writeVarint(UInt64(f.totalLength))
            }
            buffer.writeVarint(UInt64(frame.payload.readableBytes))
            var payload = frame.payload
            buffer.writeBuffer(&payload)
        }
    }

    /// The UTF-8 of a reject reason as written: at most 200 bytes, cut between characters (never inside one),
    /// so what is read back is exactly the reason that was sent. (Found by `Tools/fuzz.sh datagram`: a cut inside
    /// a character was read back as a different string.)
    static func reasonBytes(_ reason: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for character in reason {
            let utf8 = character.utf8
            guard bytes.count + utf8.count <= 200 else { break }
            bytes.append(contentsOf: utf8)
        }
        return bytes
    }

    /// Reads every frame of a datagram body. `nil` if anything is malformed (the whole datagram is dropped).
    static func readAll(from buffer: inout ByteBuffer, maxFrames: Int = 1024) -> [Frame]? {
        var frames: [Frame] = []
        while buffer.readableBytes > 0 {
            guard frames.count < maxFrames, let frame = read(from: &buffer) else { return nil }
            frames.append(frame)
        }
        return frames
    }

    static func read(from buffer: inout ByteBuffer) -> Frame? {
        guard let typeByte = buffer.readInteger(as: UInt8.self), let type = FrameType(rawValue: typeByte) else { return nil }
        switch type {
        case .ping: return .ping
        case .welcome:
            guard let session = buffer.readVarint() else { return nil }
            return .welcome(session: session, answering: nil)
        case .welcomeAnswering:
            guard let session = buffer.readVarint(), let answering = buffer.readVarint() else { return nil }
            return .welcome(session: session, answering: answering)
        case .stale: return .stale
        case .goodbye: return .goodbye
        case .hello:
            guard let version = buffer.readInteger(as: UInt8.self) else { return nil }
            guard version >= 2 else { return .hello(version: version, session: 0) }
            guard let session = buffer.readVarint() else { return nil }
            return .hello(version: version, session: session)
        case .ack:
            guard let largest = buffer.readVarint(), let delay = buffer.readVarint(), let extra = buffer.readVarint(),
                  extra <= 256, let firstLength = buffer.readVarint(), firstLength <= largest else { return nil }
            var ranges = [(largest - firstLength)...largest]
            var previousLow = largest - firstLength
            for _ in 0..<extra {
                guard let gap = buffer.readVarint(), let length = buffer.readVarint() else { return nil }
                guard previousLow >= gap &+ 2, gap < UInt64.max - 2 else { return nil }
                let high = previousLow - gap - 2
                guard length <= high else { return nil }
                ranges.append((high - length)...high)
                previousLow = high - length
            }
            return .ack(AckFrame(ranges: ranges, delayMicros: delay))
        case .confirm:
            guard let lane = buffer.readInteger(as: UInt16.self), let upTo = buffer.readVarint() else { return nil }
            return .confirm(lane: lane, upTo: upTo)
        case .abandon:
            guard let lane = buffer.readInteger(as: UInt16.self), let from = buffer.readVarint(), let span = buffer.readVarint(),
                  span <= UInt64.max - from else { return nil }
            return .abandon(lane: lane, from: from, to: from + span)
        case .reject:
            guard let lane = buffer.readInteger(as: UInt16.self), let seq = buffer.readVarint(),
                  let length = buffer.readVarint(), length <= 200, let bytes = buffer.readBytes(length: Int(length)),
                  let reason = String(validating: bytes, as: UTF8.self) else { return nil }
            return .reject(lane: lane, seq: seq, reason: reason)
        case .data:
            guard let flags = buffer.readInteger(as: UInt8.self), flags & ~3 == 0,
                  let lane = buffer.readInteger(as: UInt16.self), let seq = buffer.readVarint() else { return nil }
            var fragment: DataFrame.Fragment?
            if flags & 2 != 0 {
                guard let index = buffer.readVarint(), let count = buffer.readVarint(), let total = buffer.readVarint(),
                      count >= 1, index < count, count <= UInt64(UInt32.max), total <= UInt64(UInt32.max) else { return nil }
                fragment = .init(index: UInt32(index), count: UInt32(count), totalLength: UInt32(total))
            }
            guard let length = buffer.readVarint(), length <= UInt64(buffer.readableBytes),
                  let payload = buffer.readSlice(length: Int(length)) else { return nil }
            return .data(DataFrame(reliable: flags & 1 != 0, lane: lane, seq: seq, fragment: fragment, payload: payload))
        }
    }
}
