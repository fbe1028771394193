/// HiFi-GAN's residual blocks (`modules.ResBlock1` / `ResBlock2`), run in place on the caller's buffer.
struct ResBlock: Sendable {
    /// ResBlock1: pairs (convs1[m] with dilation d[m], convs2[m] with dilation 1). ResBlock2: convs only.
    let dilated: [Conv1d]
    let plain: [Conv1d]

    static let slope: Float = 0.1

    init(dilated: [Conv1d], plain: [Conv1d]) {
        precondition(plain.isEmpty || plain.count == dilated.count)
        self.dilated = dilated
        self.plain = plain
    }

    init(loading prefix: String, from weights: inout WeightStore, kind: String, channels: Int, kernelSize: Int,
         dilations: [Int]) throws {
        func conv(_ name: String, dilation: Int) throws -> Conv1d {
            try Conv1d(loading: "\(prefix).\(name)", from: &weights, inputChannels: channels, outputChannels: channels,
                       geometry: ConvolutionGeometry(kernelSize: kernelSize, dilation: dilation,
                                                     padding: (kernelSize * dilation - dilation) / 2))
        }
        if kind == "1" {
            self.init(dilated: try dilations.enumerated().map { try conv("c1_\($0.offset)", dilation: $0.element) },
                      plain: try dilations.indices.map { try conv("c2_\($0)", dilation: 1) })
        } else {
            self.init(dilated: try dilations.enumerated().map { try conv("c_\($0.offset)", dilation: $0.element) },
                      plain: [])
        }
    }

    /// x <- block(x). `scratch` is a buffer of x's shape, overwritten.
    ///
    /// ResBlock1 step: x = c2(lrelu(c1(lrelu(x)))) + x; the leaky ReLUs are applied while unfolding each
    /// convolution's input and c2 accumulates straight into x, so one scratch buffer suffices.
    /// ResBlock2 step: x = c(lrelu(x)) + x.
    func apply(to x: inout Tensor, scratch: inout Tensor) {
        for (m, conv) in dilated.enumerated() {
            conv.apply(x, into: &scratch, inputSlope: Self.slope, accumulate: false)
            if plain.isEmpty {
                x.add(scratch)
            } else {
                plain[m].apply(scratch, into: &x, inputSlope: Self.slope, accumulate: true)
            }
        }
    }
}
