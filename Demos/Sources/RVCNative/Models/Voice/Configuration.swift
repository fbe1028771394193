/// A voice's hyperparameters: upstream's 18-item config (the manifest's `config` object, same names)
/// plus the manifest's top-level `f0`, `rvc_version` and `feature_dim`.
public struct Configuration: Decodable, Equatable, Sendable {
    public var specChannels: Int
    public var segmentSize: Int
    public var interChannels: Int
    public var hiddenChannels: Int
    public var filterChannels: Int
    public var nHeads: Int
    public var nLayers: Int
    public var kernelSize: Int
    public var pDropout: Double
    public var resblock: String
    public var resblockKernelSizes: [Int]
    public var resblockDilationSizes: [[Int]]
    public var upsampleRates: [Int]
    public var upsampleInitialChannel: Int
    public var upsampleKernelSizes: [Int]
    public var spkEmbedDim: Int
    public var ginChannels: Int
    public var sampleRate: Int

    /// Whether the voice takes pitch (`SynthesizerTrnMs*NSFsid`) or not (the `_nono` variants).
    public var f0: Bool
    public var rvcVersion: String
    /// 256 (v1) or 768 (v2) HuBERT feature channels.
    public var featureDim: Int

    // Fixed by upstream's constructors, not stored in voice files.
    /// `attentions.Encoder(window_size=10)`, relative embeddings shared by all heads.
    public static let attentionWindow = 10
    /// `ResidualCouplingBlock(inter, hidden, 5, 1, 3)`: 4 coupling layers, WaveNet kernel 5, dilation 1, 3 layers.
    public static let flowCount = 4
    public static let flowKernelSize = 5
    public static let flowDilationRate = 1
    public static let flowWaveNetLayers = 3
    /// `TextEncoder*`'s `nn.Embedding(256, hidden)` for coarse pitch.
    public static let pitchBins = 256

    /// Upstream's voices have 4 or 5 upsampling stages.
    public static let maximumUpsampleStages = 16

    /// Output samples per feature frame: the product of the upsampling rates.
    public var upsampleFactor: Int { upsampleRates.reduce(1, *) }

    private enum TopKeys: String, CodingKey { case f0, rvcVersion, featureDim, config }
    private enum ConfigKeys: String, CodingKey {
        case specChannels, segmentSize, interChannels, hiddenChannels, filterChannels, nHeads, nLayers
        case kernelSize, pDropout, resblock, resblockKernelSizes, resblockDilationSizes, upsampleRates
        case upsampleInitialChannel, upsampleKernelSizes, spkEmbedDim, ginChannels, sampleRate
    }

    public init(from decoder: Decoder) throws {
        let top = try decoder.container(keyedBy: TopKeys.self)
        f0 = try top.decode(Bool.self, forKey: .f0)
        rvcVersion = try top.decode(String.self, forKey: .rvcVersion)
        featureDim = try top.decode(Int.self, forKey: .featureDim)
        let config = try top.nestedContainer(keyedBy: ConfigKeys.self, forKey: .config)
        specChannels = try config.decode(Int.self, forKey: .specChannels)
        segmentSize = try config.decode(Int.self, forKey: .segmentSize)
        interChannels = try config.decode(Int.self, forKey: .interChannels)
        hiddenChannels = try config.decode(Int.self, forKey: .hiddenChannels)
        filterChannels = try config.decode(Int.self, forKey: .filterChannels)
        nHeads = try config.decode(Int.self, forKey: .nHeads)
        nLayers = try config.decode(Int.self, forKey: .nLayers)
        kernelSize = try config.decode(Int.self, forKey: .kernelSize)
        pDropout = try config.decode(Double.self, forKey: .pDropout)
        resblock = try config.decode(String.self, forKey: .resblock)
        resblockKernelSizes = try config.decode([Int].self, forKey: .resblockKernelSizes)
        resblockDilationSizes = try config.decode([[Int]].self, forKey: .resblockDilationSizes)
        upsampleRates = try config.decode([Int].self, forKey: .upsampleRates)
        upsampleInitialChannel = try config.decode(Int.self, forKey: .upsampleInitialChannel)
        upsampleKernelSizes = try config.decode([Int].self, forKey: .upsampleKernelSizes)
        spkEmbedDim = try config.decode(Int.self, forKey: .spkEmbedDim)
        ginChannels = try config.decode(Int.self, forKey: .ginChannels)
        sampleRate = try config.decode(Int.self, forKey: .sampleRate)
    }

    /// Refuses configurations upstream could not build or run, before any weight is read.
    public func validate() throws {
        func require(_ condition: Bool, _ reason: @autoclosure () -> String) throws {
            if !condition { throw RVCError.invalidConfiguration(reason: reason()) }
        }
        try require(featureDim == 256 || featureDim == 768, "feature_dim is \(featureDim), not 256 or 768")
        let positive: [(String, Int)] = [
            ("inter_channels", interChannels), ("hidden_channels", hiddenChannels),
            ("filter_channels", filterChannels), ("n_heads", nHeads), ("n_layers", nLayers),
            ("kernel_size", kernelSize), ("upsample_initial_channel", upsampleInitialChannel),
            ("spk_embed_dim", spkEmbedDim), ("gin_channels", ginChannels), ("sample_rate", sampleRate),
        ]
        for (name, value) in positive { try require(value > 0, "\(name) is \(value); it must be positive") }
        try require(interChannels % 2 == 0, "inter_channels \(interChannels) is odd; the flow splits it in halves")
        try require(hiddenChannels % nHeads == 0, "hidden_channels \(hiddenChannels) is not a multiple of n_heads \(nHeads)")
        try require(resblock == "1" || resblock == "2", "resblock is `\(resblock)`, not \"1\" or \"2\"")
        try require(!resblockKernelSizes.isEmpty && resblockKernelSizes.count == resblockDilationSizes.count,
                    "resblock_kernel_sizes and resblock_dilation_sizes differ in length or are empty")
        let dilationsPerBlock = resblock == "1" ? 3 : 2
        try require(resblockDilationSizes.allSatisfy { $0.count == dilationsPerBlock && $0.allSatisfy { $0 > 0 } },
                    "ResBlock\(resblock) needs \(dilationsPerBlock) positive dilations per kernel")
        try require(resblockKernelSizes.allSatisfy { $0 > 0 }, "resblock_kernel_sizes must be positive")
        try require(!upsampleRates.isEmpty && upsampleRates.count == upsampleKernelSizes.count,
                    "upsample_rates and upsample_kernel_sizes differ in length or are empty")
        // Each stage halves the channels; 2^stages must stay a whole number for the check below.
        try require(upsampleRates.count <= Self.maximumUpsampleStages,
                    "there are \(upsampleRates.count) upsampling stages; at most \(Self.maximumUpsampleStages) are supported")
        for (rate, kernel) in zip(upsampleRates, upsampleKernelSizes) {
            // ConvTranspose1d(k, u, padding=(k-u)/2) yields exactly u samples per input frame only then.
            try require(rate > 0 && kernel >= rate && (kernel - rate) % 2 == 0,
                        "upsample kernel \(kernel) and rate \(rate) do not give `rate` samples per frame")
        }
        try require(upsampleInitialChannel % (1 << upsampleRates.count) == 0,
                    "upsample_initial_channel \(upsampleInitialChannel) is not divisible by 2^\(upsampleRates.count)")
    }

    /// Channels after upsampling stage `index` (upstream halves them at every stage).
    public func decoderChannels(afterStage index: Int) -> Int {
        upsampleInitialChannel >> (index + 1)
    }
}
