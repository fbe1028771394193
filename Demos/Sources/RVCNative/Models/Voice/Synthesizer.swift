import Foundation

/// A whole RVC voice at inference: speaker embedding, text encoder, flow and decoder
/// (upstream's `SynthesizerTrnMs{256,768}NSFsid[_nono].infer`).
public struct Synthesizer: Sendable {
    public let configuration: Configuration
    let speakerEmbedding: Embedding
    public let textEncoder: TextEncoder
    public let flow: Flow
    public let generator: Generator

    /// Builds every module from `weights`, strictly: a missing key, a wrong shape, or a key no module reads
    /// is an error naming the key.
    public init(configuration: Configuration, weights file: SafeTensorsFile) throws {
        try configuration.validate()
        var weights = WeightStore(file: file)
        speakerEmbedding = try Embedding(loading: "emb_g", from: &weights, count: configuration.spkEmbedDim,
                                         dimensions: configuration.ginChannels)
        textEncoder = try TextEncoder(loading: &weights, configuration: configuration)
        flow = try Flow(loading: &weights, configuration: configuration)
        generator = try Generator(loading: &weights, configuration: configuration)
        try weights.checkAllUsed()
        self.configuration = configuration
    }

    /// Reads `<directory>/<name>.manifest.json`, checks the weights file it names against it (tensor list,
    /// shapes, dtypes, XXH64 checksums), and builds the voice.
    public static func load(assetsDirectory directory: String, modelName name: String) throws -> (Synthesizer, VoiceManifest) {
        let (manifest, configuration, weights) = try checkedExport(assetsDirectory: directory, modelName: name)
        return (try Synthesizer(configuration: configuration, weights: weights), manifest)
    }

    /// `load` short of building: the manifest read, the weights file opened and checked against it.
    static func checkedExport(assetsDirectory directory: String, modelName name: String) throws
        -> (manifest: VoiceManifest, configuration: Configuration, weights: SafeTensorsFile) {
        let folder = URL(fileURLWithPath: directory)
        let manifestPath = folder.appendingPathComponent("\(name).manifest.json").path
        let manifest = try VoiceManifest.load(path: manifestPath)
        guard let configuration = manifest.configuration else {
            throw RVCError.manifestKind(path: manifestPath, found: manifest.kind)
        }
        let weights = try SafeTensorsFile(path: folder.appendingPathComponent(manifest.weightsFile).path)
        try manifest.verify(weights)
        return (manifest, configuration, weights)
    }

    /// `emb_g(sid)`: (B, 1, gin).
    public func speaker(_ sid: [Int32]) throws -> Tensor {
        try speakerEmbedding(sid, shape: [sid.count, 1], inputName: "sid")
    }

    /// The prior sample `z_p = (m_p + exp(logs_p) * noise * 0.66666) * x_mask`, noise standard normal.
    public static func priorSample(mean: Tensor, logScale: Tensor, noise: Tensor, mask: Tensor) -> Tensor {
        precondition(mean.shape == logScale.shape && mean.shape == noise.shape)
        var z = mean
        // Upstream's literal temperature.
        let temperature: Float = 0.66666
        for i in 0..<z.count {
            z.data[i] = mean.data[i] + expf(logScale.data[i]) * noise.data[i] * temperature
        }
        z.multiplyFrames(by: mask)
        return z
    }
}
