import Foundation
import Testing
@testable import RVCNative

@Suite struct SHA256Tests {
    @Test func emptyInputMatchesTheStandardVector() {
        #expect(SHA256.hexDigest([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func abcMatchesTheStandardVector() {
        #expect(SHA256.hexDigest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func twoBlockMessageMatchesTheStandardVector() {
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hexDigest(message) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func incrementalUpdatesEqualOneShot() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var hasher = SHA256()
        for chunk in stride(from: 0, to: message.count, by: 37) {
            hasher.update(message[chunk..<min(chunk + 37, message.count)])
        }
        let incremental = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        #expect(incremental == SHA256.hexDigest(message))
    }
}
