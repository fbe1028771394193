import Foundation

/// Runs the whole conversion stage by stage with the names of `pipeline_stage_table`
/// (`rvc_ios_tools/pipeline/stages.py`): normalise, high_pass, split, pad, pitch, per segment features,
/// synthesizer_inputs and synthesize, then concatenate, rms_mix, resample and int16.
///
/// Chained, each stage reads what the earlier ones computed here; teacher-forced, the golden set's tensors of
/// its inputs (features from the golden padded audio, the synthesizer from the golden phone and pitch, RMS
/// mixing from the golden concatenation, ...). Every random draw is the golden set's (`segment.K.noise.*`).
/// Every output is handed to `record` in the golden set's layout, as Float32 (integers exactly).
public struct PipelineStageRunner {
    public let synthesizer: Synthesizer
    public let contentEncoder: ContentEncoder
    public let rmvpe: RMVPE?
    public let index: IVFFlatIndex?
    public var windowing = Windowing()

    public init(synthesizer: Synthesizer, contentEncoder: ContentEncoder, rmvpe: RMVPE?, index: IVFFlatIndex? = nil) {
        self.synthesizer = synthesizer
        self.contentEncoder = contentEncoder
        self.rmvpe = rmvpe
        self.index = index
    }

    public func run(golden: GoldenSet, extra: PipelineGoldenExtra, mode: StageRunner.Mode,
                    record: (String, Tensor) throws -> Void) throws {
        let c = synthesizer.configuration
        let forced = mode == .teacherForced
        guard !extra.index || index != nil else {
            throw RVCError.usage("This pipeline golden set uses a retrieval index: give --index NAME.")
        }
        guard extra.f0 == c.f0 else {
            throw RVCError.usage("The golden set was made \(extra.f0 ? "with" : "without") f0; the voice is \(c.f0 ? "an f0" : "a no-f0") voice.")
        }
        if extra.options.resampleSr >= 16000 && extra.options.resampleSr != c.sampleRate {
            throw RVCError.usage("The golden set resamples to \(extra.options.resampleSr) Hz; the Swift pipeline does not resample its output (upstream's resample_sr).")
        }
        func doubles(_ name: String) throws -> [Double] { try golden.file.float64Values(name).values }
        func floats(_ name: String) throws -> [Float] { try golden.file.float64Values(name).values.map { Float($0) } }
        func vector(_ values: [Float]) -> Tensor { Tensor(shape: [values.count], data: values) }

        let input = try floats("input")
        let normalised = Levels.peakNormalised(input)
        try record("normalised", vector(normalised))

        var filtered = try HighPass.filtfilt(forced ? try floats("normalised") : normalised)
        try record("filtered", vector(filtered.map { Float($0) }))
        if forced { filtered = try doubles("filtered") }

        var points = windowing.splitPoints(filtered)
        try record("split_points", vector(points.map { Float($0) }))
        if forced { points = try golden.int32Values("split_points").values.map(Int.init) }

        var padded = windowing.padded(filtered)
        try record("padded", vector(padded.map { Float($0) }))
        if forced { padded = try doubles("padded") }

        let frames = padded.count / Windowing.window
        var pitch: [Int32]? = nil
        var pitchf: [Float]? = nil
        if c.f0 {
            guard let rmvpe else { throw RVCError.usage("The voice uses pitch: give --rmvpe NAME.") }
            let padMode = FramePadMode(rawValue: extra.options.rmvpePadMode) ?? .constant
            let f0 = try rmvpe.f0(audio: Tensor(shape: [1, padded.count], data: padded.map { Float($0) }), padMode: padMode)
            try record("f0", vector(f0.data))
            let shifted = PitchShift.shifted(f0.data.map(Double.init), semitones: extra.options.pitch)
            pitch = Array(shifted.pitch.prefix(frames))
            pitchf = Array(shifted.pitchf.prefix(frames))
            try record("pitch", vector(pitch!.map { Float($0) }))
            try record("pitchf", vector(pitchf!))
            if forced {
                pitch = try golden.int32Values("pitch").values
                pitchf = try floats("pitchf")
            }
        }

        let trim = windowing.tPadTarget(c.sampleRate)
        var pieces: [Float] = []
        for segment in windowing.segments(splitAt: points) {
            let prefix = "segment.\(segment.index)."
            let audio = Array(padded[segment.audioStart..<(segment.audioStop ?? padded.count)]).map { Float($0) }
            let v1Layer = c.featureDim == 256 ? contentEncoder.configuration.architecture.v1Layer : nil
            var features = try contentEncoder.features(audio: Tensor(shape: [1, audio.count], data: audio), v1Layer: v1Layer)
            features = features.reshaped([features.shape[1], features.shape[2]])
            try record(prefix + "features", features)
            if forced { features = try golden.tensor(prefix + "features", layout: "TC") }

            // retrieval: upstream's search, (1/score)^2 weights and blend, before the x2.
            var blended: Tensor? = nil
            if extra.index, let index {
                let (t, d) = (features.shape[0], features.shape[1])
                let k = index.configuration.k
                let lists = index.coarseLists(features.data, frames: t)
                let (scores, ids) = index.scan(features.data, frames: t, lists: lists, probes: index.configuration.probes)
                var retrieved = Retrieval.retrieve(index, ids: ids, weights: Retrieval.weights(scores: scores, k: k), k: k)
                try record(prefix + "retrieved", retrieved.reshaped([t, d]))
                if forced { retrieved = try golden.tensor(prefix + "retrieved", layout: "TC").reshaped([1, t, d]) }
                let mixed = Retrieval.blend(retrieved: retrieved, feats: features.reshaped([1, t, d]), indexRate: extra.options.indexRate)
                try record(prefix + "blended", mixed.reshaped([t, d]))
                blended = forced ? try golden.tensor(prefix + "blended", layout: "TC") : mixed.reshaped([t, d])
            }

            let pitchRange = segment.pitchStart..<(segment.pitchStop ?? pitch?.count ?? 0)
            var call = SegmentSynthesis.inputs(features: features, audioSamples: audio.count,
                                                pitch: pitch.map { Array($0[pitchRange]) },
                                                pitchf: pitchf.map { Array($0[pitchRange]) }, protect: extra.options.protect,
                                                retrieved: blended)
            try record(prefix + "phone", call.phone)
            try record(prefix + "phone_lengths", vector([Float(call.phoneLength)]))
            if let p = call.pitch, let pf = call.pitchf {
                try record(prefix + "pitch", Tensor(shape: [1, p.count], data: p.map { Float($0) }))
                try record(prefix + "pitchf", Tensor(shape: [1, pf.count], data: pf))
            }
            if forced {
                call.phone = try golden.tensor(prefix + "phone", layout: "BTC")
                call.phoneLength = Int(try golden.int32Values(prefix + "phone_lengths").values[0])
                if c.f0 {
                    call.pitch = try golden.int32Values(prefix + "pitch").values
                    call.pitchf = try golden.tensor(prefix + "pitchf", layout: "BT").data
                }
            }
            let inputs = try SynthesisInputs(call: call, sid: try golden.int32Values("sid").values, golden: golden,
                                             noisePrefix: prefix, configuration: c)
            var synthesized = try synthesizer.synthesize(inputs).data
            try record(prefix + "audio", vector(synthesized))
            if forced { synthesized = try golden.tensor(prefix + "audio", layout: "T").data }
            pieces += synthesized[trim..<(synthesized.count - trim)]
        }
        try record("concatenated", vector(pieces))
        if forced { pieces = try golden.tensor("concatenated", layout: "T").data }

        var mixed = pieces
        if extra.options.rmsMixRate != 1 {
            mixed = RMSMixing.changeRMS(source: filtered, sourceRate: Windowing.sampleRate, output: pieces,
                                        outputRate: c.sampleRate, rate: extra.options.rmsMixRate)
        }
        try record("rms_mixed", vector(mixed))
        if forced { mixed = try golden.tensor("rms_mixed", layout: "T").data }
        try record("resampled", vector(mixed))
        if forced { mixed = try golden.tensor("resampled", layout: "T").data }
        try record("output", vector(Levels.int16(mixed).map { Float($0) }))
    }
}
