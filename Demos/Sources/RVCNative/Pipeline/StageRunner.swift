/// Runs a voice stage by stage, in the order and with the names of a golden set's stage table, handing
/// every intermediate to `record`.
///
/// Every stage reads its inputs through `StageInputs`. Chained, that is what earlier stages computed here.
/// Teacher-forced, it is the golden set's tensor of that name, so each stage is measured on exactly the
/// inputs upstream gave it and one wrong stage cannot hide behind (or be blamed on) another.
public struct StageRunner {
    public enum Mode: String, Sendable {
        case chained
        case teacherForced = "teacher-forced"
    }

    public let synthesizer: Synthesizer

    public init(synthesizer: Synthesizer) {
        self.synthesizer = synthesizer
    }

    /// Runs every stage; `record(name, tensor)` receives each output in its native layout
    /// (`VoiceTensors.nativeLayout`). Teacher-forced runs need `golden`.
    public func run(_ inputs: SynthesisInputs, mode: Mode, golden: GoldenSet? = nil,
                    record: (String, Tensor) throws -> Void) throws {
        let c = synthesizer.configuration
        let (batch, frames) = (inputs.batchCount, inputs.frameCount)
        var stageInputs = StageInputs(mode: mode, golden: golden, nativeLayout: VoiceTensors.nativeLayout(of:)) { name in
            VoiceTensors.nativeShape(of: name, configuration: c, batch: batch, frames: frames)
        }
        func publish(_ name: String, _ tensor: Tensor) throws {
            stageInputs.keep(name, tensor)
            try record(name, tensor)
        }
        func input(_ name: String) throws -> Tensor {
            try stageInputs.tensor(name)
        }
        let voice = synthesizer

        // speaker, text_encoder: from the inputs in both modes.
        try publish("g", try voice.speaker(inputs.sid))
        let encoded = try voice.textEncoder(phone: inputs.phone, pitch: inputs.pitch, lengths: inputs.phoneLengths)
        try publish("enc_p.hidden", encoded.hidden)
        try publish("m_p", encoded.mean)
        try publish("logs_p", encoded.logScale)
        try publish("x_mask", encoded.mask)

        // prior_sample
        try publish("z_p", Synthesizer.priorSample(mean: try input("m_p"), logScale: try input("logs_p"),
                                                   noise: inputs.priorNoise, mask: try input("x_mask")))

        // flow.flow_3 ... flow.flow_0, then flow (z = flow output * x_mask)
        var previous = "z_p"
        for index in (0..<voice.flow.couplingCount).reversed() {
            let name = VoiceTensors.flowStep(index)
            try publish(name, voice.flow.reverseStep(index, try input(previous), mask: try input("x_mask"), g: try input("g")))
            previous = name
        }
        var z = try input(previous)
        z.multiplyFrames(by: try input("x_mask"))
        try publish("z", z)

        // nsf_source
        if let source = voice.generator.source {
            guard let f0 = inputs.pitchf, let noise = inputs.sourceNoise, let phase = inputs.sourcePhase else {
                throw RVCError.goldenTensorMissing(name: "pitchf")
            }
            try publish("dec.source", source(f0: f0, noise: noise, phase: phase))
        }

        // dec.conv_pre, dec.up_0 ..., audio
        try publish("dec.conv_pre", voice.generator.preStage(try input("z"), g: try input("g")))
        previous = "dec.conv_pre"
        for index in 0..<voice.generator.stageCount {
            let name = VoiceTensors.upStage(index)
            let source = c.f0 ? try input("dec.source") : nil
            try publish(name, try voice.generator.upStage(index, try input(previous), source: source))
            previous = name
        }
        try publish("audio", voice.generator.postStage(try input(previous)))
    }
}
