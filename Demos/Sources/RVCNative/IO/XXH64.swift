/// XXH64 with seed 0: the per-tensor checksum of weights manifests (format 2). A fast corruption check, not a
/// signature. Written from the published algorithm description (four 64-bit lanes over 32-byte stripes, then
/// the tail in 8-, 4- and 1-byte steps, then a final avalanche); the digest prints as 16 lowercase hex digits,
/// most significant first, as Python's `xxhash.xxh64_hexdigest` does.
public enum XXH64 {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always)
    private static func rotl(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotl(accumulator &+ input &* prime2, 31) &* prime1
    }

    @inline(__always)
    private static func merge(_ hash: UInt64, _ lane: UInt64) -> UInt64 {
        (hash ^ round(0, lane)) &* prime1 &+ prime4
    }

    @inline(__always)
    private static func word64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The digest of bytes in memory: one `Hasher` fed everything at once.
    public static func digest(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var hasher = Hasher(seed: seed)
        hasher.absorb(bytes)
        return hasher.digest()
    }

    /// The digest of bytes arriving in pieces (a tensor read from its file a chunk at a time): whole 32-byte
    /// stripes go through the four lanes as they come, a stripe split between two pieces waits in `pending`,
    /// and the last partial stripe is the tail `digest()` folds in. Any split gives the one-shot digest.
    public struct Hasher {
        private var lanes: (UInt64, UInt64, UInt64, UInt64)
        private let seed: UInt64
        private var byteCount = 0
        /// The bytes of a stripe not yet whole (fewer than 32).
        private var pending: [UInt8] = []

        public init(seed: UInt64 = 0) {
            self.seed = seed
            lanes = (seed &+ prime1 &+ prime2, seed &+ prime2, seed, seed &- prime1)
        }

        @inline(__always)
        private static func absorbStripe(_ lanes: inout (UInt64, UInt64, UInt64, UInt64),
                                         _ bytes: UnsafeRawBufferPointer, _ offset: Int) {
            lanes.0 = round(lanes.0, word64(bytes, offset))
            lanes.1 = round(lanes.1, word64(bytes, offset + 8))
            lanes.2 = round(lanes.2, word64(bytes, offset + 16))
            lanes.3 = round(lanes.3, word64(bytes, offset + 24))
        }

        public mutating func absorb(_ bytes: UnsafeRawBufferPointer) {
            byteCount += bytes.count
            // The lanes in locals through the loop, so they stay in registers.
            var lanes = self.lanes
            defer { self.lanes = lanes }
            var offset = 0
            if !pending.isEmpty {
                let taken = min(32 - pending.count, bytes.count)
                pending += bytes[0..<taken]
                offset = taken
                guard pending.count == 32 else { return }
                pending.withUnsafeBytes { Self.absorbStripe(&lanes, $0, 0) }
                pending.removeAll(keepingCapacity: true)
            }
            let stripesEnd = offset + (bytes.count - offset) / 32 * 32
            while offset < stripesEnd {
                Self.absorbStripe(&lanes, bytes, offset)
                offset += 32
            }
            pending += bytes[offset...]
        }

        /// The digest of everything absorbed so far.
        public func digest() -> UInt64 {
            var hash: UInt64
            if byteCount >= 32 {
                hash = rotl(lanes.0, 1) &+ rotl(lanes.1, 7) &+ rotl(lanes.2, 12) &+ rotl(lanes.3, 18)
                hash = merge(hash, lanes.0)
                hash = merge(hash, lanes.1)
                hash = merge(hash, lanes.2)
                hash = merge(hash, lanes.3)
            } else {
                hash = seed &+ prime5
            }
            hash &+= UInt64(byteCount)
            return pending.withUnsafeBytes { tail in
                let count = tail.count
                var offset = 0
                while offset + 8 <= count {
                    hash ^= round(0, word64(tail, offset))
                    hash = rotl(hash, 27) &* prime1 &+ prime4
                    offset += 8
                }
                if offset + 4 <= count {
                    let word = UInt32(littleEndian: tail.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                    hash ^= UInt64(word) &* prime1
                    hash = rotl(hash, 23) &* prime2 &+ prime3
                    offset += 4
                }
                while offset < count {
                    hash ^= UInt64(tail[offset]) &* prime5
                    hash = rotl(hash, 11) &* prime1
                    offset += 1
                }
                hash ^= hash >> 33
                hash &*= prime2
                hash ^= hash >> 29
                hash &*= prime3
                hash ^= hash >> 32
                return hash
            }
        }
    }

    /// The digest as 16 lowercase hex digits (the manifest's `xxh64` field).
    public static func hexDigest(_ digest: UInt64) -> String {
        let hex = String(digest, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public static func hexDigest(_ bytes: UnsafeRawBufferPointer) -> String {
        hexDigest(digest(bytes))
    }

    public static func hexDigest<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { hexDigest($0) }
    }
}
