import Testing
@testable import RVCNative

/// PyTorch's Conv1d definition, loop by loop: out[t][o] = b[o] + sum_k,i w[o][k][i] x[t*s + k*d - pad][i].
func naiveConv1d(_ x: [Float], frames: Int, inChannels: Int, weight: [Float], bias: [Float]?, outChannels: Int,
                 kernel: Int, stride: Int, dilation: Int, padLeft: Int, padRight: Int, slope: Float? = nil) -> [Float] {
    let outFrames = (frames + padLeft + padRight - dilation * (kernel - 1) - 1) / stride + 1
    var out = [Float](repeating: 0, count: outFrames * outChannels)
    for t in 0..<outFrames {
        for o in 0..<outChannels {
            var sum = Double(bias?[o] ?? 0)
            for k in 0..<kernel {
                let source = t * stride + k * dilation - padLeft
                guard source >= 0 && source < frames else { continue }
                for i in 0..<inChannels {
                    var value = x[source * inChannels + i]
                    if let slope { value = value > 0 ? value : value * slope }
                    sum += Double(weight[(o * kernel + k) * inChannels + i]) * Double(value)
                }
            }
            out[t * outChannels + o] = Float(sum)
        }
    }
    return out
}

/// PyTorch's ConvTranspose1d definition with the weight in exported OKI layout.
func naiveConvTranspose1d(_ x: [Float], frames: Int, inChannels: Int, weightOKI: [Float], bias: [Float], outChannels: Int,
                          kernel: Int, stride: Int, padding: Int) -> [Float] {
    let outFrames = (frames - 1) * stride - 2 * padding + kernel
    var out = [Double](repeating: 0, count: outFrames * outChannels)
    for t in 0..<frames {
        for k in 0..<kernel {
            let target = t * stride + k - padding
            guard target >= 0 && target < outFrames else { continue }
            for o in 0..<outChannels {
                for i in 0..<inChannels {
                    out[target * outChannels + o] += Double(x[t * inChannels + i]) * Double(weightOKI[(o * kernel + k) * inChannels + i])
                }
            }
        }
    }
    return (0..<out.count).map { Float(out[$0] + Double(bias[$0 % outChannels])) }
}

@Suite struct Conv1dTests {
    func conv(_ weight: [Float], bias: [Float]?, in inChannels: Int, out outChannels: Int, _ geometry: ConvolutionGeometry) -> Conv1d {
        Conv1d(weight: weight, bias: bias, inputChannels: inChannels, outputChannels: outChannels, geometry: geometry)
    }

    @Test func padsBothSidesWithZeros() {
        let layer = conv([1, 10], bias: [0.5], in: 1, out: 1, ConvolutionGeometry(kernelSize: 2, padding: 1))
        let output = layer(Tensor(shape: [1, 4, 1], data: [1, 2, 3, 4]))
        #expect(output == Tensor(shape: [1, 5, 1], data: [10.5, 21.5, 32.5, 43.5, 4.5]))
    }

    @Test func appliesStrideAndDilationAsPyTorchDoes() {
        let layer = conv([1, 10], bias: [0.5], in: 1, out: 1, ConvolutionGeometry(kernelSize: 2, stride: 2, dilation: 2, padding: 2))
        let output = layer(Tensor(shape: [1, 4, 1], data: [1, 2, 3, 4]))
        #expect(output == Tensor(shape: [1, 3, 1], data: [10.5, 31.5, 3.5]))
    }

    @Test func matchesTheDefinitionOverManyGeometries() {
        let cases: [(frames: Int, i: Int, o: Int, k: Int, s: Int, d: Int, pl: Int, pr: Int)] = [
            (17, 3, 5, 3, 1, 1, 1, 1), (40, 4, 6, 5, 1, 3, 6, 6), (33, 2, 7, 4, 2, 1, 1, 2),
            (50, 1, 8, 20, 10, 1, 5, 5), (9, 6, 2, 1, 1, 1, 0, 0), (1000, 96, 24, 7, 1, 5, 15, 15),
            // Winograd F(4, 3): chunks plus 0, 1 or 2 leftover taps, dilations, lengths not a multiple of 4d.
            (301, 16, 12, 11, 1, 5, 25, 25), (37, 5, 6, 4, 1, 2, 3, 3), (23, 7, 3, 5, 1, 1, 2, 2),
            (5, 3, 4, 3, 1, 3, 3, 3), (2, 4, 4, 3, 1, 1, 1, 1), (64, 8, 8, 3, 1, 1, 1, 1), (19, 3, 2, 6, 1, 2, 2, 3),
        ]
        for (n, c) in cases.enumerated() {
            let geometry = ConvolutionGeometry(kernelSize: c.k, stride: c.s, dilation: c.d, padLeft: c.pl, padRight: c.pr)
            let weight = randomValues(c.o * c.k * c.i, seed: UInt64(n))
            let bias = randomValues(c.o, seed: UInt64(100 + n))
            let x = randomValues(2 * c.frames * c.i, seed: UInt64(200 + n))
            let output = conv(weight, bias: bias, in: c.i, out: c.o, geometry)(Tensor(shape: [2, c.frames, c.i], data: x))
            for b in 0..<2 {
                let item = Array(x[(b * c.frames * c.i)..<((b + 1) * c.frames * c.i)])
                let expected = naiveConv1d(item, frames: c.frames, inChannels: c.i, weight: weight, bias: bias, outChannels: c.o,
                                           kernel: c.k, stride: c.s, dilation: c.d, padLeft: c.pl, padRight: c.pr)
                let got = Array(output.data[(b * expected.count)..<((b + 1) * expected.count)])
                #expect(maxAbsoluteDifference(got, expected) < 1e-4, "case \(n), batch \(b)")
            }
        }
    }

    @Test func fusesALeakyReLUOnItsInput() {
        let geometry = ConvolutionGeometry(kernelSize: 3, dilation: 2, padding: 2)
        let weight = randomValues(4 * 3 * 5, seed: 1)
        let x = randomValues(30 * 5, seed: 2)
        let output = conv(weight, bias: nil, in: 5, out: 4, geometry)(Tensor(shape: [1, 30, 5], data: x), inputSlope: 0.1)
        let expected = naiveConv1d(x, frames: 30, inChannels: 5, weight: weight, bias: nil, outChannels: 4,
                                   kernel: 3, stride: 1, dilation: 2, padLeft: 2, padRight: 2, slope: 0.1)
        #expect(maxAbsoluteDifference(output.data, expected) < 1e-5)
    }

    @Test func winogradAgreesWithTheDirectProduct() {
        let geometry = ConvolutionGeometry(kernelSize: 11, dilation: 3, padding: 15)
        let (frames, channels) = (200, 24)
        let weight = randomValues(channels * 11 * channels, seed: 11)
        let x = randomValues(frames * channels, seed: 12)
        let winograd = conv(weight, bias: nil, in: channels, out: channels, geometry)
        guard case .winograd = winograd.kernel else {
            Issue.record("a stride-1 kernel of 11 taps should use Winograd products")
            return
        }
        var direct = [Float](repeating: 0, count: frames * channels)
        x.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                direct.withUnsafeMutableBufferPointer { out in
                    Convolution.conv1d(input: MatrixView(base: x.baseAddress!, rows: frames, columns: channels),
                                       weight: w.baseAddress!, bias: nil, geometry: geometry, inputSlope: 0.1,
                                       output: MutableMatrixView(base: out.baseAddress!, rows: frames, columns: channels))
                }
            }
        }
        let output = winograd(Tensor(shape: [1, frames, channels], data: x), inputSlope: 0.1)
        #expect(snrDecibels(reference: direct, candidate: output.data) > 120)
    }

    @Test func accumulatesIntoItsOutputWhenAsked() {
        let layer = conv(randomValues(3 * 5 * 3, seed: 3), bias: randomValues(3, seed: 4), in: 3, out: 3,
                         ConvolutionGeometry(kernelSize: 5, padding: 2))
        let x = Tensor(shape: [1, 12, 3], data: randomValues(36, seed: 5))
        var residual = x
        layer.accumulate(x, into: &residual)
        var expected = layer(x)
        expected.add(x)
        #expect(maxAbsoluteDifference(residual.data, expected.data) < 1e-6)
    }
}

@Suite struct ConvTransposed1dTests {
    @Test func overlapAddsEveryTap() {
        let layer = ConvTransposed1d(weightOKI: [1, 10, 100], bias: [0], inputChannels: 1, outputChannels: 1,
                                     kernelSize: 3, stride: 2, padding: 0)
        #expect(layer(Tensor(shape: [1, 2, 1], data: [1, 2])) == Tensor(shape: [1, 5, 1], data: [1, 10, 102, 20, 200]))
    }

    @Test func cropsPaddingFromBothEnds() {
        let layer = ConvTransposed1d(weightOKI: [1, 10, 100], bias: [0.5], inputChannels: 1, outputChannels: 1,
                                     kernelSize: 3, stride: 2, padding: 1)
        #expect(layer(Tensor(shape: [1, 2, 1], data: [1, 2])) == Tensor(shape: [1, 3, 1], data: [10.5, 102.5, 20.5]))
    }

    @Test func matchesTheDefinitionForHiFiGANShapes() {
        let cases: [(frames: Int, i: Int, o: Int, k: Int, s: Int)] = [(13, 8, 4, 16, 10), (40, 6, 3, 4, 2), (7, 5, 5, 24, 12), (300, 64, 32, 20, 8)]
        for (n, c) in cases.enumerated() {
            let padding = (c.k - c.s) / 2
            let weight = randomValues(c.o * c.k * c.i, seed: UInt64(10 + n))
            let bias = randomValues(c.o, seed: UInt64(20 + n))
            let x = randomValues(c.frames * c.i, seed: UInt64(30 + n))
            let layer = ConvTransposed1d(weightOKI: weight, bias: bias, inputChannels: c.i, outputChannels: c.o,
                                         kernelSize: c.k, stride: c.s, padding: padding)
            let output = layer(Tensor(shape: [1, c.frames, c.i], data: x))
            let expected = naiveConvTranspose1d(x, frames: c.frames, inChannels: c.i, weightOKI: weight, bias: bias,
                                                outChannels: c.o, kernel: c.k, stride: c.s, padding: padding)
            #expect(output.shape == [1, c.frames * c.s, c.o])
            #expect(maxAbsoluteDifference(output.data, expected) < 1e-4, "case \(n)")
        }
    }

    @Test func fusesALeakyReLUOnItsInput() {
        let weight = randomValues(3 * 4 * 2, seed: 7)
        let layer = ConvTransposed1d(weightOKI: weight, bias: [0, 0, 0], inputChannels: 2, outputChannels: 3,
                                     kernelSize: 4, stride: 2, padding: 1)
        let x = Tensor(shape: [1, 9, 2], data: randomValues(18, seed: 8))
        var activated = x
        activated.applyLeakyReLU(slope: 0.1)
        #expect(maxAbsoluteDifference(layer(x, inputSlope: 0.1).data, layer(activated).data) < 1e-6)
    }
}
