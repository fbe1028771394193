/// RMVPE's network (upstream `rvc.lib.rmvpe.E2E`): log-mel image -> U-Net -> 3-channel conv -> BiGRU ->
/// Linear -> sigmoid pitch salience over 360 bins (20 cents apart).
///
/// Upstream's NCHW image `(B, 1, T, 128)` is `(B, T, 128, 1)` here; T must be a multiple of 2^en_de_layers
/// (`RMVPE.mel2hidden` pads it to a multiple of 32).
public struct E2E: Sendable {
    public let architecture: RMVPEConfiguration.Architecture
    public let unet: DeepUnet
    let cnn: Conv2d
    /// Upstream's `fc`: BiGRU(3 * 128 -> 2 x 256), Linear(512 -> 360), Dropout (identity at inference), Sigmoid.
    let gru: BidirectionalGRU
    let linear: Linear

    /// Builds every module from `weights`, strictly: a missing key, a wrong shape, or a key no module reads
    /// is an error naming the key.
    public init(architecture: RMVPEConfiguration.Architecture, weights file: SafeTensorsFile) throws {
        var weights = WeightStore(file: file)
        unet = try DeepUnet(loading: &weights, architecture: architecture)
        cnn = try Conv2d(loading: "cnn", from: &weights, inputChannels: architecture.enOutChannels, outputChannels: 3,
                         kernelSize: 3, padding: 1, hasBias: true)
        gru = try BidirectionalGRU(loading: "fc.gru", from: &weights, inputSize: 3 * architecture.nMels,
                                   hiddenSize: architecture.gruHiddenSize)
        linear = try Linear(loading: "fc.linear", from: &weights, inputFeatures: 2 * architecture.gruHiddenSize,
                            outputFeatures: architecture.nClass)
        try weights.checkAllUsed()
        self.architecture = architecture
    }

    /// (B, T, 128) log-mel, frames first -> (B, T, 128, 1): upstream's `mel.transpose(-1, -2).unsqueeze(1)`.
    public static func melImage(_ mel: Tensor) -> Tensor {
        mel.reshaped(mel.shape + [1])
    }

    /// `self.cnn` on the U-Net's output: (B, T, 128, en_out_channels) -> (B, T, 128, 3).
    public func cnnStage(_ x: Tensor) -> Tensor {
        cnn(x)
    }

    /// (B, T, 128, 3) -> (B, T, 384) channel-major, as upstream's `.transpose(1, 2).flatten(-2)` on NCHW:
    /// feature = channel * 128 + mel bin.
    public static func flattenCNN(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4)
        return x.permuted([0, 1, 3, 2]).reshaped([x.shape[0], x.shape[1], x.shape[2] * x.shape[3]])
    }

    /// The BiGRU on the flattened cnn output: (B, T, 128, 3) -> (B, T, 2H).
    public func gruStage(_ cnnOutput: Tensor) -> Tensor {
        gru(Self.flattenCNN(cnnOutput))
    }

    /// Linear + sigmoid: (B, T, 2H) -> (B, T, 360).
    public func salienceStage(_ hidden: Tensor) -> Tensor {
        var salience = linear(hidden)
        salience.data.withUnsafeMutableBufferPointer { values in
            for i in values.indices { values[i] = sigmoid(values[i]) }
        }
        return salience
    }

    /// (B, T, 128) log-mel, T a multiple of 2^en_de_layers -> (B, T, 360) salience.
    public func callAsFunction(_ mel: Tensor) -> Tensor {
        salienceStage(gruStage(cnnStage(unet(Self.melImage(mel)))))
    }
}
