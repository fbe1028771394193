import Foundation

/// The random draws of a recorded run, by the names a pipeline golden set gives them (`segment.K.noise.z_p`
/// (1, inter, T), `segment.K.noise.nsf` (1, T * upp, 1), `segment.K.noise.nsf_phase` (1, 1), float32 in those
/// upstream layouts): `rvc-ios convert --golden`'s, or upstream's own from the upstream capture
/// (`noise.safetensors`). A conversion given them replays that run; a draw they lack comes from the seed.
public struct RecordedDraws: Equatable, Sendable {
    /// Each draw's upstream layout, and the synthesizer's (channels last).
    static let layouts = ["noise.z_p": "BCT", "noise.nsf": "BTC", "noise.nsf_phase": "BC"]

    public let tensors: [String: Tensor]

    public init(tensors: [String: Tensor]) {
        self.tensors = tensors
    }

    /// A safetensors file of draws (`rvc-ios convert --noise FILE`); every tensor float32.
    public init(path: String) throws {
        let file = try SafeTensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for key in file.keys {
            let dtype = try file.entry(key).dtype
            guard dtype == .f32 else {
                throw RVCError.unsupportedDType(key: key, dtype: dtype.rawValue, readable: [SafeTensorsFile.DType.f32.rawValue])
            }
            tensors[key] = try file.tensor(key)
        }
        self.tensors = tensors
    }

    /// Refuses draws this run never makes (a noise file of another input or voice), as the reference does.
    func checkAllDrawn(segments: Int, f0: Bool) throws {
        let names = f0 ? ["noise.z_p", "noise.nsf", "noise.nsf_phase"] : ["noise.z_p"]
        let drawn = Set((0..<segments).flatMap { k in names.map { "segment.\(k).\($0)" } })
        let unused = tensors.keys.filter { !drawn.contains($0) }.sorted()
        guard unused.isEmpty else { throw ConversionError.drawsNeverMade(names: unused, segments: segments) }
    }

    /// Segment `segment`'s draw `name` in the synthesizer's layout of shape `shape`, or nil when not recorded.
    func draw(segment: Int, _ name: String, shape: [Int]) throws -> Tensor? {
        let key = "segment.\(segment).\(name)"
        guard let stored = tensors[key], let layout = Self.layouts[name] else { return nil }
        let native = layout.count == 3 ? "BTC" : "BC"
        let axes = Array(native)
        let expected = layout.compactMap { axis in axes.firstIndex(of: axis).map { shape[$0] } }
        guard stored.shape == expected, let converted = stored.converted(fromLayout: layout, toLayout: native) else {
            throw ConversionError.drawShape(name: key, expected: expected, actual: stored.shape)
        }
        return converted
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): a 64-bit generator whose stream is the same on every platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Standard normal draws from (seed, segment): SplitMix64 and Box-Muller in double, deterministic on every
/// platform. Not numpy's stream (that one a run replays from a golden set or noise file).
struct NormalDraws {
    var generator: SplitMix64

    init(seed: UInt64, segment: Int, stream: Int) {
        generator = SplitMix64(state: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(segment) &* 0xD1B5_4A32_D192_ED03
                               &+ UInt64(stream) &* 0x8CB9_2BA7_2F3D_8DD7)
    }

    mutating func uniform() -> Double { (Double(generator.next() >> 11) + 0.5) / 9_007_199_254_740_992 }

    mutating func tensor(_ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        var values = [Float]()
        values.reserveCapacity(count + 1)
        while values.count < count {
            let (u, v) = (uniform(), uniform())
            let radius = (-2 * log(u)).squareRoot()
            values.append(Float(radius * cos(2 * Double.pi * v)))
            values.append(Float(radius * sin(2 * Double.pi * v)))
        }
        return Tensor(shape: shape, data: Array(values.prefix(count)))
    }

    /// Segment `segment`'s draw `name` from `seed`: normals for `noise.z_p` and `noise.nsf`; the source's initial
    /// phase is 0 (upstream's SineGen zeroes the fundamental's, and with harmonic_num 0 there is no other).
    static func draw(seed: UInt64, segment: Int, _ name: String, shape: [Int]) -> Tensor {
        guard name != "noise.nsf_phase" else { return Tensor(zeros: shape) }
        var draws = NormalDraws(seed: seed, segment: segment, stream: name == "noise.z_p" ? 0 : 1)
        return draws.tensor(shape)
    }
}
