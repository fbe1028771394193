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
/// around the networks (resampling, high-pass, padding, RMS mixing, int16); `loading` is checking the exports
/// and building the networks, counted by `Converter.convertOnce` only (a `Converter` loaded its networks before).
public struct StageSeconds: Sendable {
    public var loading = 0.0
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
///
/// Two ways to hold the networks, giving the same audio bit for bit:
/// - a `Converter` loads all four and keeps them: an app converting many clips pays for loading once, and
///   holds every network's float32 weights all along (1.17 GB for full-size networks: content encoder 378 MB,
///   RMVPE 362 MB, index 316 MB, voice 110 MB), each stage's working memory on top (60 s of 16 kHz speech
///   peaked at 1618 MB on Linux);
/// - `Converter.convertOnce` loads RMVPE, runs pitch, drops it, then loads the content encoder, index and
///   voice: for one clip (the `convert` command). Each network is still loaded once, so one conversion costs
///   no more loading time, and RMVPE (with its working memory) is never in memory beside the other three (the
///   same 60 s peaked at 1272 MB); the next clip loads everything again.
public struct Converter {
    public let synthesizer: Synthesizer
    public let contentEncoder: ContentEncoder
    public let rmvpe: RMVPE?
    public let index: IVFFlatIndex?

    /// The exports `voice`, `hubert`, `rmvpe` (needed by f0 voices) and `index` (optional) in `assets`: all
    /// checked first (`ConversionExports`), then built.
    public init(assets: String, voice: String, hubert: String = "hubert", rmvpe: String? = "rmvpe",
                index: String? = nil) throws {
        let exports = try ConversionExports(assets: assets, voice: voice, hubert: hubert, rmvpe: rmvpe, index: index)
        synthesizer = try exports.builtSynthesizer()
        contentEncoder = try exports.builtContentEncoder()
        self.rmvpe = try exports.builtRMVPE()
        self.index = try exports.builtIndex()
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
        var seconds = StageSeconds()
        let audio = try Self.samples16k(samples, sampleRate: sampleRate, options: options, seconds: &seconds)
        return try convert(samples16k: audio, options: options, seconds: seconds)
    }

    /// The conversion of 16 kHz samples; segment K's draw `name` comes from `options.noise` when recorded there,
    /// else from `options.seed`.
    func convert(samples16k samples: [Float], options: ConversionOptions, seconds: StageSeconds = StageSeconds()) throws
        -> ConvertedAudio {
        var seconds = seconds
        let signal = try ConversionSignal(samples16k: samples, voice: synthesizer.configuration, options: options,
                                          seconds: &seconds)
        let pitch = try rmvpe.flatMap { rmvpe in
            try synthesizer.configuration.f0 ? signal.pitch(rmvpe, options: options, seconds: &seconds) : nil
        }
        return try signal.converted(pitch: pitch, contentEncoder: contentEncoder, index: index, synthesizer: synthesizer,
                                    options: options, seconds: &seconds)
    }

    /// One conversion from the exports in `assets` (named as `init(assets:...)` names them), holding as little
    /// as it can: every export is checked first (`ConversionExports`: a broken file fails before any work), then
    /// RMVPE is built, runs pitch on the whole signal and is dropped, and only then are the content encoder,
    /// index and voice built for the segments. The audio is `Converter(assets:...).convert(...)`'s, bit for
    /// bit, and `seconds.loading` holds the checking and building.
    public static func convertOnce(assets: String, voice: String, hubert: String = "hubert", rmvpe: String? = "rmvpe",
                                   index: String? = nil, samples: [Float], sampleRate: Int,
                                   options: ConversionOptions = ConversionOptions()) throws -> ConvertedAudio {
        var seconds = StageSeconds()
        let exports = try seconds.time(\.loading) {
            try ConversionExports(assets: assets, voice: voice, hubert: hubert, rmvpe: rmvpe, index: index)
        }
        let audio = try samples16k(samples, sampleRate: sampleRate, options: options, seconds: &seconds)
        let signal = try ConversionSignal(samples16k: audio, voice: exports.voice.configuration, options: options,
                                          seconds: &seconds)
        // RMVPE lives in this block only, so it is freed before the other three are built.
        var pitch: ConversionSignal.Pitch? = nil
        if exports.voice.configuration.f0, let rmvpe = try seconds.time(\.loading, { try exports.builtRMVPE() }) {
            pitch = try signal.pitch(rmvpe, options: options, seconds: &seconds)
        }
        let contentEncoder = try seconds.time(\.loading) { try exports.builtContentEncoder() }
        let index = try seconds.time(\.loading) { try exports.builtIndex() }
        let synthesizer = try seconds.time(\.loading) { try exports.builtSynthesizer() }
        return try signal.converted(pitch: pitch, contentEncoder: contentEncoder, index: index, synthesizer: synthesizer,
                                    options: options, seconds: &seconds)
    }

    /// `samples` checked (options, rate, length) and resampled to 16 kHz unless they are at 16 kHz.
    static func samples16k(_ samples: [Float], sampleRate: Int, options: ConversionOptions,
                           seconds: inout StageSeconds) throws -> [Float] {
        try options.check()
        guard inputRates.contains(sampleRate) else { throw ConversionError.sampleRate(sampleRate) }
        guard !samples.isEmpty else { throw ConversionError.emptyAudio }
        guard sampleRate != Windowing.sampleRate else { return samples }
        return seconds.time(\.signal) { Resampler(from: sampleRate, to: Windowing.sampleRate).resampled(samples) }
    }
}

/// The 16 kHz signal as the conversion works on it before any network: high-passed, split into segments at
/// quiet points, reflect-padded (upstream `Pipeline.pipeline`); then the stages that read it.
struct ConversionSignal {
    /// The pitch track of the whole padded signal: coarse (1-255) and fine (Hz), one value a 10 ms frame.
    typealias Pitch = (coarse: [Int32], fine: [Float])

    let voice: Configuration
    let filtered: [Double]
    let padded: [Double]
    let segments: [Windowing.Segment]
    static let windowing = Windowing()

    init(samples16k samples: [Float], voice: Configuration, options: ConversionOptions, seconds: inout StageSeconds) throws {
        self.voice = voice
        let filtered = try seconds.time(\.signal) { try HighPass.filtfilt(Levels.peakNormalised(samples)) }
        self.filtered = filtered
        segments = Self.windowing.segments(splitAt: Self.windowing.splitPoints(filtered))
        try options.noise?.checkAllDrawn(segments: segments.count, f0: voice.f0)
        padded = Self.windowing.padded(filtered)
    }

    /// RMVPE on the whole padded signal (upstream computes pitch once, before the segment loop), shifted by
    /// `options.pitch` semitones and cut to the signal's frames.
    func pitch(_ rmvpe: RMVPE, options: ConversionOptions, seconds: inout StageSeconds) throws -> Pitch {
        let f0 = try seconds.time(\.pitch) {
            try rmvpe.f0(audio: Tensor(shape: [1, padded.count], data: padded.map { Float($0) }),
                         padMode: options.rmvpePadMode)
        }
        let frames = padded.count / Windowing.window
        let shifted = PitchShift.shifted(f0.data.map(Double.init), semitones: options.pitch)
        return (Array(shifted.pitch.prefix(frames)), Array(shifted.pitchf.prefix(frames)))
    }

    /// Each segment through the content encoder, retrieval and the voice, the pieces joined, RMS-mixed and
    /// written as int16; segment K's draw `name` comes from `options.noise` when recorded there, else from
    /// `options.seed`.
    func converted(pitch: Pitch?, contentEncoder: ContentEncoder, index: IVFFlatIndex?, synthesizer: Synthesizer,
                   options: ConversionOptions, seconds: inout StageSeconds) throws -> ConvertedAudio {
        let c = voice
        func draw(_ segment: Int, _ name: String, _ shape: [Int]) throws -> Tensor {
            try options.noise?.draw(segment: segment, name, shape: shape)
                ?? NormalDraws.draw(seed: options.seed, segment: segment, name, shape: shape)
        }
        let v1Layer = c.featureDim == 256 ? contentEncoder.configuration.architecture.v1Layer : nil
        let trim = Self.windowing.tPadTarget(c.sampleRate)
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
            let pitchRange = segment.pitchStart..<(segment.pitchStop ?? pitch?.coarse.count ?? 0)
            let call = SegmentSynthesis.inputs(
                features: features.reshaped([features.shape[1], features.shape[2]]), audioSamples: audio.count,
                pitch: pitch.map { Array($0.coarse[pitchRange]) }, pitchf: pitch.map { Array($0.fine[pitchRange]) },
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
