import Testing
@testable import RVCNative

/// Digests from Python's `xxhash` package (the exporter's), over lengths that take every path of the
/// algorithm: empty, a lone byte, tails of 4 and 1 byte, one stripe short of 32, whole stripes, and both.
@Suite struct XXH64Tests {
    @Test func matchesTheReferenceImplementation() {
        let cases: [([UInt8], String)] = [
            ([], "ef46db3751d8e999"),
            (Array("a".utf8), "d24ec4f1a98c6e5b"),
            (Array("abc".utf8), "44bc2cf5ad770999"),
            ((0..<31).map { UInt8($0) }, "c346d2b59b4d8ee1"),
            ((0..<32).map { UInt8($0) }, "cbf59c5116ff32b4"),
            ((0..<100).map { UInt8($0) }, "6ac1e58032166597"),
            ((0..<1027).map { UInt8(($0 * 7) % 256) }, "a09aa867ceb51fbe"),
        ]
        for (message, expected) in cases {
            #expect(XXH64.hexDigest(message) == expected, "length \(message.count)")
        }
    }

    /// Fed in pieces (a tensor read from its file a chunk at a time), the digest is the one-shot digest,
    /// wherever the pieces split the 32-byte stripes: empty pieces, pieces shorter than a stripe, pieces that
    /// straddle stripes, whole stripes.
    @Test(arguments: [[0], [1, 30, 1], [31, 2, 40], [32, 32, 36], [7, 0, 13, 64, 5], [100], [33, 67]])
    func piecesGiveTheOneShotDigest(pieces: [Int]) {
        let message = (0..<pieces.reduce(0, +)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        var hasher = XXH64.Hasher()
        var offset = 0
        message.withUnsafeBytes { bytes in
            for length in pieces {
                hasher.absorb(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
                offset += length
            }
        }
        #expect(hasher.digest() == message.withUnsafeBytes { XXH64.digest($0) }, "pieces \(pieces)")
    }

    @Test func oneFlippedBitChangesTheDigest() {
        var message = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let before = XXH64.hexDigest(message)
        message[2049] ^= 0x10
        #expect(XXH64.hexDigest(message) != before)
    }
}
