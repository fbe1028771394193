import Foundation
@testable import RVCNative

/// Paths of the repository's committed fixtures, found from this file's location.
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // RVCNativeTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // Demos
        .deletingLastPathComponent()

    static let fixtures = root.appendingPathComponent("swift_fixtures")
    static let goldens = root.appendingPathComponent("golden")

    /// Golden set folders of kind voice that have an exported voice beside them in swift_fixtures/.
    static func goldenVoices() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: goldens.path)) ?? []
        return names.sorted().filter { name in
            (try? GoldenIndex.load(path: goldens.appendingPathComponent("\(name)/index.json").path))?.kind == "voice"
                && FileManager.default.fileExists(atPath: fixtures.appendingPathComponent("\(name).manifest.json").path)
        }
    }
}

/// The error `body` throws, as an RVCError (nil if it does not throw or throws something else).
func rvcError(_ body: () throws -> Void) -> RVCError? {
    do {
        try body()
        return nil
    } catch let error as RVCError {
        return error
    } catch {
        return nil
    }
}

/// A deterministic pseudo-random generator (SplitMix64) for test data.
typealias SeededGenerator = SplitMix64

extension SplitMix64 {
    init(seed: UInt64) { self.init(state: seed) }
}

func randomValues(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
}

/// Signal-to-noise ratio in dB of `candidate` against `reference`: 10 log10(sum ref^2 / sum err^2).
func snrDecibels(reference: [Float], candidate: [Float]) -> Double {
    precondition(reference.count == candidate.count)
    var signal = 0.0
    var noise = 0.0
    for (r, c) in zip(reference, candidate) {
        signal += Double(r) * Double(r)
        noise += (Double(c) - Double(r)) * (Double(c) - Double(r))
    }
    if noise == 0 { return .infinity }
    return 10 * log10(signal / noise)
}

func maxAbsoluteDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// A copy of a safetensors file with tensors removed, replaced or added (integers kept as Int32, the rest
/// as Float32).
func rewrittenWeights(_ file: SafeTensorsFile, removing removed: Set<String> = [],
                      replacing replaced: [String: Tensor] = [:]) throws -> SafeTensorsFile {
    var writer = SafeTensorsWriter()
    for key in file.keys where !removed.contains(key) && replaced[key] == nil {
        if [.i32, .i64].contains(try file.entry(key).dtype) {
            let (shape, values) = try file.int32Values(key)
            writer.add(key, int32Values: values, shape: shape)
        } else {
            writer.add(key, try file.tensor(key))
        }
    }
    for (key, tensor) in replaced.sorted(by: { $0.key < $1.key }) {
        writer.add(key, tensor)
    }
    return try SafeTensorsFile(bytes: writer.serialized(), path: "rewritten.safetensors")
}
