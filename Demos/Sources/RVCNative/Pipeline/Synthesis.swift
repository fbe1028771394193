/// Whole-voice synthesis with the decoder run over time chunks, so memory stays bounded for long inputs.
///
/// The decoder is convolutional, so a chunk of frames widened by `decoderHalo` frames on each side gives
/// exactly the full-length result in its centre (only the widened edges see the wrong zero padding). The
/// NSF source is a running phase over the whole signal, so it is computed once at full length (one float
/// per sample) and sliced per chunk.
extension Synthesizer {
    /// Output audio (B, T * upp, 1). `decoderChunkFrames` of 0 decodes in one piece.
    public func synthesize(_ inputs: SynthesisInputs, decoderChunkFrames: Int = 1000) throws -> Tensor {
        let g = try speaker(inputs.sid)
        let encoded = try textEncoder(phone: inputs.phone, pitch: inputs.pitch, lengths: inputs.phoneLengths)
        let prior = Synthesizer.priorSample(mean: encoded.mean, logScale: encoded.logScale, noise: inputs.priorNoise,
                                            mask: encoded.mask)
        var z = flow.reverse(prior, mask: encoded.mask, g: g)
        z.multiplyFrames(by: encoded.mask)
        var source: Tensor?
        if let sineSource = generator.source {
            guard let f0 = inputs.pitchf, let noise = inputs.sourceNoise, let phase = inputs.sourcePhase else {
                throw RVCError.goldenTensorMissing(name: "pitchf")
            }
            source = sineSource(f0: f0, noise: noise, phase: phase)
        }
        return try decode(z, source: source, g: g, chunkFrames: decoderChunkFrames)
    }

    /// The decoder over chunks of `chunkFrames` frames: z (B, T, inter), source (B, T * upp, 1).
    public func decode(_ z: Tensor, source: Tensor?, g: Tensor, chunkFrames: Int) throws -> Tensor {
        let frames = z.frameCount
        let upp = configuration.upsampleFactor
        let chunk = chunkFrames > 0 ? chunkFrames : max(frames, 1)
        let halo = decoderHalo
        var audio = Tensor(zeros: [z.batchCount, frames * upp, 1])
        var start = 0
        while start < frames {
            let end = min(start + chunk, frames)
            let low = max(0, start - halo)
            let high = min(frames, end + halo)
            var x = generator.preStage(low == 0 && high == frames ? z : z.frames(low..<high), g: g)
            let sourceChunk = source.map { low == 0 && high == frames ? $0 : $0.frames((low * upp)..<(high * upp)) }
            for index in 0..<generator.stageCount {
                x = try generator.upStage(index, x, source: sourceChunk)
            }
            let piece = generator.postStage(x)
            let (keepFrom, keepCount) = ((start - low) * upp, (end - start) * upp)
            for b in 0..<z.batchCount {
                let from = b * (high - low) * upp + keepFrom
                let to = b * frames * upp + start * upp
                audio.data.replaceSubrange(to..<(to + keepCount), with: piece.data[from..<(from + keepCount)])
            }
            start = end
        }
        return audio
    }

    /// Frames of context on each side of a decoder chunk that make its centre exact: the sum of every
    /// decoder layer's reach, each converted from samples at its stage's rate to frames.
    public var decoderHalo: Int {
        let c = configuration
        var reach = 3.0  // conv_pre, kernel 7
        var samplesPerFrame = 1
        for (rate, kernel) in zip(c.upsampleRates, c.upsampleKernelSizes) {
            // An output sample of the transposed conv reads ceil(kernel / rate) input samples.
            reach += Double((kernel + rate - 1) / rate) / Double(samplesPerFrame)
            samplesPerFrame *= rate
            let blockReach = zip(c.resblockKernelSizes, c.resblockDilationSizes).map { kernel, dilations in
                let half = (kernel - 1) / 2
                let dilated = dilations.reduce(0) { $0 + $1 * half }
                return c.resblock == "1" ? dilated + half * dilations.count : dilated
            }.max() ?? 0
            // noise_conv: kernel 2s, stride s, padding s/2 reads two stage samples' worth of source.
            reach += Double(blockReach + 2) / Double(samplesPerFrame)
        }
        reach += 3.0 / Double(samplesPerFrame)  // conv_post, kernel 7
        return Int(reach.rounded(.up)) + 1
    }
}
