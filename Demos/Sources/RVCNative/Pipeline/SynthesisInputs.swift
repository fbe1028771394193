/// Everything one synthesis reads, in this package's layouts, including every random draw.
public struct SynthesisInputs: Sendable {
    /// HuBERT features (B, T, feature_dim).
    public var phone: Tensor
    public var phoneLengths: [Int32]
    /// Coarse pitch bins (B * T), f0 voices only.
    public var pitch: [Int32]?
    /// f0 in Hz (B, T), 0 where unvoiced; f0 voices only.
    public var pitchf: Tensor?
    public var sid: [Int32]
    /// `noise.z_p`: the prior's standard normal draw, (B, T, inter).
    public var priorNoise: Tensor
    /// `noise.nsf`: the NSF source's standard normal draw, (B, T * upp, 1); f0 voices only.
    public var sourceNoise: Tensor?
    /// `noise.nsf_phase`: SineGen's `rand_ini`, (B, 1); f0 voices only.
    public var sourcePhase: Tensor?

    public var batchCount: Int { phone.batchCount }
    public var frameCount: Int { phone.frameCount }

    /// Reads the inputs and noise from a golden set (or a bare inputs file) and checks every shape
    /// against the voice.
    public init(golden: GoldenSet, configuration c: Configuration) throws {
        func layoutTensor(_ name: String) throws -> Tensor {
            try golden.tensor(name, layout: VoiceTensors.nativeLayout(of: name) ?? "")
        }
        phone = try layoutTensor("phone")
        guard phone.rank == 3, phone.channelCount == c.featureDim, phone.batchCount > 0, phone.frameCount > 0 else {
            throw RVCError.goldenTensorShape(name: "phone", expected: [phone.shape.first ?? 1, phone.shape.dropFirst().first ?? 0, c.featureDim],
                                             actual: phone.shape)
        }
        let (batches, frames) = (phone.batchCount, phone.frameCount)

        func integers(_ name: String, shape: [Int]) throws -> [Int32] {
            let (stored, values) = try golden.int32Values(name)
            guard stored == shape else { throw RVCError.goldenTensorShape(name: name, expected: shape, actual: stored) }
            return values
        }
        func floats(_ name: String, shape: [Int]) throws -> Tensor {
            let tensor = try layoutTensor(name)
            guard tensor.shape == shape else { throw RVCError.goldenTensorShape(name: name, expected: shape, actual: tensor.shape) }
            return tensor
        }
        phoneLengths = try integers("phone_lengths", shape: [batches])
        sid = try integers("sid", shape: [batches])
        priorNoise = try floats("noise.z_p", shape: [batches, frames, c.interChannels])
        if c.f0 {
            pitch = try integers("pitch", shape: [batches, frames])
            pitchf = try floats("pitchf", shape: [batches, frames])
            sourceNoise = try floats("noise.nsf", shape: [batches, frames * c.upsampleFactor, 1])
            sourcePhase = try floats("noise.nsf_phase", shape: [batches, 1])
        }
    }
}
