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
    /// A recorded run's draws (`segment.K.noise.*`) to replay it; each draw they lack comes from `seed`.
    public var noise: RecordedDraws? = nil

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

/// A converted recording: int16 samples at the voice's rate, and where the time went.
public struct ConvertedAudio: Sendable {
    public let samples: [Int16]
    public let sampleRate: Int
    public let seconds: StageSeconds
}

/// Wall-clock seconds per stage of one conversion, summed over segments; `signal` is the signal processing
/// around the networks (resampling, high-pass, padding, RMS mixing, int16).
public struct StageSeconds: Sendable {
    public var pitch = 0.0
    public var contentFeatures = 0.0
    public var retrieval = 0.0
    public var synthesizer = 0.0
    public var signal = 0.0

    /// Runs `body`, adding its wall-clock time to `stage`.
    mutating func time<Result>(_ stage: WritableKeyPath<StageSeconds, Double>, _ body: () throws -> Result) rethrows -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { self[keyPath: stage] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }
}

/// The whole RVC conversion, what an app calls: created from an assets folder of exports (`rvc-ios export`),
/// called with mono samples at any rate (resampled to 16 kHz by `Resampler`). Nothing after loading touches
/// the file system.
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

    /// The rates `convert` takes (those the reference's WAV reader takes).
    public static let inputRates = 1000...768_000

    /// `samples`: mono audio at `sampleRate`, resampled to 16 kHz unless it is 16 kHz (parity with the
    /// reference holds at 16 kHz; its soxr and this resampler agree to the figures in `Resampler`).
    /// Returns the voice's int16 audio.
    public func convert(samples: [Float], sampleRate: Int, options: ConversionOptions = ConversionOptions()) throws
        -> ConvertedAudio {
        try options.check()
        guard Self.inputRates.contains(sampleRate) else { throw ConversionError.sampleRate(sampleRate) }
        guard !samples.isEmpty else { throw ConversionError.emptyAudio }
        let start = DispatchTime.now().uptimeNanoseconds
        let audio = sampleRate == Windowing.sampleRate
            ? samples : Resampler(from: sampleRate, to: Windowing.sampleRate).resampled(samples)
        let resampling = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let converted = try convert(samples16k: audio, options: options)
        var seconds = converted.seconds
        seconds.signal += resampling
        return ConvertedAudio(samples: converted.samples, sampleRate: converted.sampleRate, seconds: seconds)
    }

    /// The conversion of 16 kHz samples; segment K's draw `name` comes from `options.noise` when recorded there,
    /// else from `options.seed`.
    func convert(samples16k samples: [Float], options: ConversionOptions) throws -> ConvertedAudio {
        let c = synthesizer.configuration
        var seconds = StageSeconds()
        let filtered = try seconds.time(\.signal) { try HighPass.filtfilt(Levels.peakNormalised(samples)) }
        let points = windowing.splitPoints(filtered)
        let segments = windowing.segments(splitAt: points)
        try options.noise?.checkAllDrawn(segments: segments.count, f0: c.f0)
        func draw(_ segment: Int, _ name: String, _ shape: [Int]) throws -> Tensor {
            try options.noise?.draw(segment: segment, name, shape: shape)
                ?? NormalDraws.draw(seed: options.seed, segment: segment, name, shape: shape)
        }
        let padded = windowing.padded(filtered)
        let frames = padded.count / Windowing.window
        var pitch: [Int32]? = nil
        var pitchf: [Float]? = nil
        if let rmvpe, c.f0 {
            let f0 = try seconds.time(\.pitch) {
                try rmvpe.f0(audio: Tensor(shape: [1, padded.count], data: padded.map { Float($0) }),
                             padMode: options.rmvpePadMode)
            }
            let shifted = PitchShift.shifted(f0.data.map(Double.init), semitones: options.pitch)
            (pitch, pitchf) = (Array(shifted.pitch.prefix(frames)), Array(shifted.pitchf.prefix(frames)))
        }
        let v1Layer = c.featureDim == 256 ? contentEncoder.configuration.architecture.v1Layer : nil
        let trim = windowing.tPadTarget(c.sampleRate)
        var pieces: [Float] = []
        for segment in segments {
            let audio = padded[segment.audioStart..<(segment.audioStop ?? padded.count)].map { Float($0) }
            let features = try seconds.time(\.contentFeatures) {
                try contentEncoder.features(audio: Tensor(shape: [1, audio.count], data: audio), v1Layer: v1Layer)
            }
            var retrieved: Tensor? = nil
            if let index, options.indexRate != 0 {
                let blended = try seconds.time(\.retrieval) { try index.blend(features, indexRate: options.indexRate) }
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
                sourcePhase: c.f0 ? try draw(segment.index, "noise.nsf_phase", [1, 1]) : nil)
            let synthesized = try seconds.time(\.synthesizer) { try synthesizer.synthesize(inputs).data }
            pieces += synthesized[trim..<max(trim, synthesized.count - trim)]
        }
        let samples = seconds.time(\.signal) { () -> [Int16] in
            if options.rmsMixRate != 1 {
                pieces = RMSMixing.changeRMS(source: filtered, sourceRate: Windowing.sampleRate, output: pieces,
                                             outputRate: c.sampleRate, rate: options.rmsMixRate)
            }
            return Levels.int16(pieces)
        }
        return ConvertedAudio(samples: samples, sampleRate: c.sampleRate, seconds: seconds)
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
