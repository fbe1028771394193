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

    public static func digest(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = bytes.count
        var offset = 0
        var hash: UInt64
        if count >= 32 {
            var lanes = (seed &+ prime1 &+ prime2, seed &+ prime2, seed, seed &- prime1)
            let stripesEnd = count - count % 32
            while offset < stripesEnd {
                lanes.0 = round(lanes.0, word64(bytes, offset))
                lanes.1 = round(lanes.1, word64(bytes, offset + 8))
                lanes.2 = round(lanes.2, word64(bytes, offset + 16))
                lanes.3 = round(lanes.3, word64(bytes, offset + 24))
                offset += 32
            }
            hash = rotl(lanes.0, 1) &+ rotl(lanes.1, 7) &+ rotl(lanes.2, 12) &+ rotl(lanes.3, 18)
            hash = merge(hash, lanes.0)
            hash = merge(hash, lanes.1)
            hash = merge(hash, lanes.2)
            hash = merge(hash, lanes.3)
        } else {
            hash = seed &+ prime5
        }
        hash &+= UInt64(count)
        while offset + 8 <= count {
            hash ^= round(0, word64(bytes, offset))
            hash = rotl(hash, 27) &* prime1 &+ prime4
            offset += 8
        }
        if offset + 4 <= count {
            let word = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            hash ^= UInt64(word) &* prime1
            hash = rotl(hash, 23) &* prime2 &+ prime3
            offset += 4
        }
        while offset < count {
            hash ^= UInt64(bytes[offset]) &* prime5
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

    /// The digest as 16 lowercase hex digits (the manifest's `xxh64` field).
    public static func hexDigest(_ bytes: UnsafeRawBufferPointer) -> String {
        let hex = String(digest(bytes), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public static func hexDigest<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { hexDigest($0) }
    }
}
