import Testing
@testable import RVCNative

/// The committed voices all use ResBlock1, so ResBlock2 and the in-place buffer plan are checked here
/// against upstream's formulas composed from the (separately tested) layers.
@Suite struct ResBlockTests {
    func conv(_ channels: Int, kernel: Int, dilation: Int, seed: UInt64) -> Conv1d {
        Conv1d(weight: randomValues(channels * kernel * channels, seed: seed).map { $0 * 0.3 },
               bias: randomValues(channels, seed: seed + 1),
               inputChannels: channels, outputChannels: channels,
               geometry: ConvolutionGeometry(kernelSize: kernel, dilation: dilation, padding: (kernel * dilation - dilation) / 2))
    }

    /// The block run in place, as the generator runs it.
    func applied(_ block: ResBlock, to input: Tensor) -> Tensor {
        var x = input
        var scratch = Tensor(zeros: input.shape)
        block.apply(to: &x, scratch: &scratch)
        return x
    }

    func leaky(_ x: Tensor) -> Tensor {
        var y = x
        y.applyLeakyReLU(slope: 0.1)
        return y
    }

    @Test func resBlock1MatchesUpstreamsLoop() {
        let channels = 6
        let dilated = [1, 3, 5].enumerated().map { conv(channels, kernel: 5, dilation: $0.element, seed: UInt64(10 * $0.offset)) }
        let plain = (0..<3).map { conv(channels, kernel: 5, dilation: 1, seed: UInt64(100 + 10 * $0)) }
        let block = ResBlock(dilated: dilated, plain: plain)
        let input = Tensor(shape: [1, 40, channels], data: randomValues(40 * channels, seed: 7))

        // for c1, c2: xt = c2(lrelu(c1(lrelu(x)))); x = xt + x
        var expected = input
        for (c1, c2) in zip(dilated, plain) {
            var xt = c2(leaky(c1(leaky(expected))))
            xt.add(expected)
            expected = xt
        }
        #expect(maxAbsoluteDifference(applied(block, to: input).data, expected.data) < 1e-5)
    }

    @Test func resBlock2MatchesUpstreamsLoop() {
        let channels = 5
        let convs = [1, 3].enumerated().map { conv(channels, kernel: 3, dilation: $0.element, seed: UInt64(20 + $0.offset)) }
        let block = ResBlock(dilated: convs, plain: [])
        let input = Tensor(shape: [2, 17, channels], data: randomValues(2 * 17 * channels, seed: 8))

        // for c: xt = c(lrelu(x)); x = xt + x
        var expected = input
        for c in convs {
            var xt = c(leaky(expected))
            xt.add(expected)
            expected = xt
        }
        #expect(maxAbsoluteDifference(applied(block, to: input).data, expected.data) < 1e-5)
    }

    @Test func averagingKeepsEveryBranchIndependent() {
        let channels = 4
        let blocks = [3, 5, 7].map { kernel in
            ResBlock(dilated: [conv(channels, kernel: kernel, dilation: 1, seed: UInt64(kernel))], plain: [])
        }
        let input = Tensor(shape: [1, 25, channels], data: randomValues(25 * channels, seed: 9))
        var expected = Tensor(zeros: input.shape)
        for block in blocks { expected.add(applied(block, to: input)) }
        expected.updateEach { $0 / 3 }
        var x = input
        Generator.averageResBlocks(blocks, &x)
        #expect(maxAbsoluteDifference(x.data, expected.data) < 1e-6)
    }
}
