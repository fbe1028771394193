import Foundation

/// Upstream's options (`vc_single`) with its defaults; the windowing is the CPU row (x_pad 1, x_query 6,
/// x_center 38, x_max 41).
public struct ConversionOptions: Equatable, Sendable {
    /// Semitones (f0_up_key).
    public var pitch: Double = 0
    public var indexRate: Double = 0.75
    /// Below 0.5 unvoiced frames keep some of the raw features; 0.5 switches it off.
    public var protect: Double = 0.33
    public var rmsMixRate: Double = 0.25
    public var sid: Int = 0
    /// Seeds the synthesizer's random draws (this package's generator, not numpy's: the same seed gives the
    /// same audio here, not the MLX reference's; replaying a reference run takes its golden set's draws).
    public var seed: UInt64 = 0
    /// RMVPE's log-mel padding to a multiple of 32 frames: zeros as the rvc 0.3.5 package, reflect as Applio.
    public var rmvpePadMode: FramePadMode = .constant

    public init() {}

    func check() throws {
        func inRange(_ name: String, _ value: Double, _ range: ClosedRange<Double>) throws {
            guard range.contains(value) else {
                throw ConversionError.optionOutOfRange(name: name, value: value, range: range)
            }
        }
        try inRange("indexRate", indexRate, 0...1)
        try inRange("protect", protect, 0...0.5)
        try inRange("rmsMixRate", rmsMixRate, 0...1)
        try inRange("pitch", pitch, -48...48)
    }
}

/// A converted recording: int16 samples at the voice's rate.
public struct ConvertedAudio: Sendable {
    public let samples: [Int16]
    public let sampleRate: Int
}

/// The whole RVC conversion, what an app calls: created from an assets folder of exports (`rvc-ios export`),
/// called with 16 kHz mono samples. Nothing after loading touches the file system.
public struct Converter {
    public let synthesizer: Synthesizer
    public let contentEncoder: ContentEncoder
    public let rmvpe: RMVPE?
    public let index: IVFFlatIndex?
    let windowing = Windowing()

    /// The exports `voice`, `hubert`, `rmvpe` (needed by f0 voices) and `index` (optional) in `assets`.
    public init(assets: String, voice: String, hubert: String = "hubert", rmvpe: String? = "rmvpe",
                index: String? = nil) throws {
        (synthesizer, _) = try Synthesizer.load(assetsDirectory: assets, modelName: voice)
        contentEncoder = try ContentEncoder.load(assetsDirectory: assets, modelName: hubert)
        if synthesizer.configuration.f0 {
            guard let rmvpe else { throw ConversionError.rmvpeNeeded(voice: voice) }
            self.rmvpe = try RMVPE.load(assetsDirectory: assets, modelName: rmvpe)
        } else {
            self.rmvpe = nil
        }
        self.index = try index.map { try IVFFlatIndex.load(assetsDirectory: assets, modelName: $0) }
        if let loaded = self.index, loaded.d != synthesizer.configuration.featureDim {
            throw ConversionError.indexWidth(index: loaded.d, voice: synthesizer.configuration.featureDim)
        }
    }

    /// Networks already loaded (tests build an index in memory).
    init(synthesizer: Synthesizer, contentEncoder: ContentEncoder, rmvpe: RMVPE?, index: IVFFlatIndex?) {
        self.synthesizer = synthesizer
        self.contentEncoder = contentEncoder
        self.rmvpe = rmvpe
        self.index = index
    }

    /// `samples`: mono audio at 16 kHz (the only rate taken: resample first). Returns the voice's int16 audio.
    public func convert(samples: [Float], sampleRate: Int, options: ConversionOptions = ConversionOptions()) throws
        -> ConvertedAudio {
        try options.check()
        guard sampleRate == Windowing.sampleRate else { throw ConversionError.sampleRate(sampleRate) }
        guard !samples.isEmpty else { throw ConversionError.emptyAudio }
        return try convert(samples: samples, options: options) { segment, name, shape in
            var draws = NormalDraws(seed: options.seed, segment: segment, stream: name == "noise.z_p" ? 0 : 1)
            return draws.tensor(shape)
        }
    }

    /// The conversion with segment K's draws `draw(K, "noise.z_p" | "noise.nsf", shape)` (native layouts),
    /// so a test can replay a golden set's.
    func convert(samples: [Float], options: ConversionOptions,
                 draw: (Int, String, [Int]) throws -> Tensor) throws -> ConvertedAudio {
        let c = synthesizer.configuration
        let filtered = try HighPass.filtfilt(Levels.peakNormalised(samples))
        let points = windowing.splitPoints(filtered)
        let padded = windowing.padded(filtered)
        let frames = padded.count / Windowing.window
        var pitch: [Int32]? = nil
        var pitchf: [Float]? = nil
        if let rmvpe, c.f0 {
            let f0 = try rmvpe.f0(audio: Tensor(shape: [1, padded.count], data: padded.map { Float($0) }),
                                  padMode: options.rmvpePadMode)
            let shifted = PitchShift.shifted(f0.data.map(Double.init), semitones: options.pitch)
            (pitch, pitchf) = (Array(shifted.pitch.prefix(frames)), Array(shifted.pitchf.prefix(frames)))
        }
        let v1Layer = c.featureDim == 256 ? contentEncoder.configuration.architecture.v1Layer : nil
        let trim = windowing.tPadTarget(c.sampleRate)
        var pieces: [Float] = []
        for segment in windowing.segments(splitAt: points) {
            let audio = padded[segment.audioStart..<(segment.audioStop ?? padded.count)].map { Float($0) }
            let features = try contentEncoder.features(audio: Tensor(shape: [1, audio.count], data: audio), v1Layer: v1Layer)
            var retrieved: Tensor? = nil
            if let index, options.indexRate != 0 {
                let blended = try index.blend(features, indexRate: options.indexRate)
                retrieved = blended.reshaped([blended.shape[1], blended.shape[2]])
            }
            let pitchRange = segment.pitchStart..<(segment.pitchStop ?? pitch?.count ?? 0)
            let call = SegmentSynthesis.inputs(
                features: features.reshaped([features.shape[1], features.shape[2]]), audioSamples: audio.count,
                pitch: pitch.map { Array($0[pitchRange]) }, pitchf: pitchf.map { Array($0[pitchRange]) },
                protect: options.protect, retrieved: retrieved)
            let phoneFrames = call.phone.shape[1]
            let inputs = SynthesisInputs(
                phone: call.phone, phoneLengths: [Int32(call.phoneLength)], pitch: call.pitch,
                pitchf: call.pitchf.map { Tensor(shape: [1, $0.count], data: $0) }, sid: [Int32(options.sid)],
                priorNoise: try draw(segment.index, "noise.z_p", [1, phoneFrames, c.interChannels]),
                sourceNoise: c.f0 ? try draw(segment.index, "noise.nsf", [1, phoneFrames * c.upsampleFactor, 1]) : nil,
                // SineGen zeroes the fundamental's initial phase: with harmonic_num 0 it is always 0.
                sourcePhase: c.f0 ? Tensor(zeros: [1, 1]) : nil)
            let synthesized = try synthesizer.synthesize(inputs).data
            pieces += synthesized[trim..<max(trim, synthesized.count - trim)]
        }
        if options.rmsMixRate != 1 {
            pieces = RMSMixing.changeRMS(source: filtered, sourceRate: Windowing.sampleRate, output: pieces,
                                         outputRate: c.sampleRate, rate: options.rmsMixRate)
        }
        return ConvertedAudio(samples: Levels.int16(pieces), sampleRate: c.sampleRate)
    }
}

extension SynthesisInputs {
    init(phone: Tensor, phoneLengths: [Int32], pitch: [Int32]?, pitchf: Tensor?, sid: [Int32], priorNoise: Tensor,
         sourceNoise: Tensor?, sourcePhase: Tensor?) {
        self.phone = phone
        self.phoneLengths = phoneLengths
        self.pitch = pitch
        self.pitchf = pitchf
        self.sid = sid
        self.priorNoise = priorNoise
        self.sourceNoise = sourceNoise
        self.sourcePhase = sourcePhase
    }
}

/// Standard normal draws from (seed, segment): SplitMix64 and Box-Muller in double, deterministic on every
/// platform. Not numpy's stream (that one a run replays from a golden set or noise file).
struct NormalDraws {
    var state: UInt64

    init(seed: UInt64, segment: Int, stream: Int) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(segment) &* 0xD1B5_4A32_D192_ED03 &+ UInt64(stream) &* 0x8CB9_2BA7_2F3D_8DD7
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992 }

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
}
