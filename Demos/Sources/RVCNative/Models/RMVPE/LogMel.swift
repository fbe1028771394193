import Foundation

/// Log-mel spectrogram as RMVPE sees it (upstream `rvc.lib.rmvpe.MelSpectrogram`, `rvc_ios_tools/mel.py`):
/// `torch.stft(center=True)` (reflect padding by n_fft / 2, periodic Hann window), the magnitude (not the
/// power), librosa's HTK mel filterbank with Slaney area normalisation, and `log(max(x, clamp))`.
///
/// The FFT and the filterbank sums run in double precision and round once to Float32; the filterbank is
/// computed here from the manifest's constants with the formula `mel.py` uses.
public struct LogMelSpectrogram: Sendable {
    public let configuration: RMVPEConfiguration.Mel
    let window: [Float]
    let fft: RealFFT
    let filterbank: MelFilterbank

    public init(_ configuration: RMVPEConfiguration.Mel) {
        self.configuration = configuration
        window = Self.periodicHannWindow(configuration.winLength)
        fft = RealFFT(size: configuration.nFft)
        filterbank = MelFilterbank(sampleRate: Double(configuration.sampleRate), fftSize: configuration.nFft,
                                   bandCount: configuration.nMels, minHz: configuration.fmin, maxHz: configuration.fmax)
    }

    /// `torch.hann_window(length)` (periodic): 0.5 - 0.5 cos(2 pi n / length), rounded to Float32.
    static func periodicHannWindow(_ length: Int) -> [Float] {
        (0..<length).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(length))) }
    }

    /// Frames `torch.stft(center=True)` produces for `samples` samples.
    public func frameCount(samples: Int) -> Int {
        1 + samples / configuration.hopLength
    }

    /// Fewest samples the centre reflect padding accepts (torch needs more samples than it pads).
    public var minimumSamples: Int { configuration.nFft / 2 + 1 }

    /// (B, N) audio at the manifest's rate -> (B, T, n_mels) log-mel, frames first (upstream's `(B, n_mels, T)`
    /// with the mel bins last).
    public func callAsFunction(_ audio: Tensor) throws -> Tensor {
        precondition(audio.rank == 2, "audio must be (batch, samples), got \(audio.shape)")
        let (batches, samples) = (audio.shape[0], audio.shape[1])
        guard samples >= minimumSamples else { throw RMVPEError.audioTooShort(samples: samples, minimum: minimumSamples) }
        let (nFft, hop, bands) = (configuration.nFft, configuration.hopLength, configuration.nMels)
        let half = nFft / 2
        let frames = frameCount(samples: samples)
        var mel = Tensor(zeros: [batches, frames, bands])
        let clamp = configuration.logClamp
        audio.data.withUnsafeBufferPointer { audio in
            mel.data.withUnsafeMutableBufferPointer { target in
                let targetBase = target.baseAddress!
                let rows = batches * frames
                let workers = min(ParallelWork.workerCount, max(1, rows / 64))
                ParallelWork.run(workers: workers) { worker, workerCount in
                    var frame = [Double](repeating: 0, count: nFft)
                    var magnitudes = [Double](repeating: 0, count: nFft / 2 + 1)
                    var scratch = RealFFT.Scratch(size: nFft)
                    var row = worker
                    while row < rows {
                        let (b, t) = (row / frames, row % frames)
                        let signal = audio.baseAddress! + b * samples
                        for n in 0..<nFft {
                            // Sample n of frame t in the reflect-padded signal (padded index t * hop + n).
                            var index = t * hop + n - half
                            if index < 0 { index = -index }
                            if index >= samples { index = 2 * (samples - 1) - index }
                            frame[n] = Double(signal[index]) * Double(window[n])
                        }
                        fft.magnitudes(of: frame, into: &magnitudes, scratch: &scratch)
                        let line = targetBase + row * bands
                        for band in 0..<bands {
                            line[band] = Float(log(max(Double(Float(filterbank.apply(band: band, to: magnitudes))), clamp)))
                        }
                        row += workerCount
                    }
                }
            }
        }
        return mel
    }
}

/// Triangular filters on the HTK mel scale, each scaled to unit area (librosa's `norm="slaney"`), as
/// `librosa.filters.mel(..., htk=True)` and `rvc_ios_tools.mel.mel_filterbank` compute them. Only each band's
/// non-zero bins are kept.
public struct MelFilterbank: Sendable {
    /// Band i covers FFT bins `firstBin[i] ..< firstBin[i] + weights[i].count`.
    let firstBin: [Int]
    let weights: [[Float]]

    public var bandCount: Int { weights.count }

    public init(sampleRate: Double, fftSize: Int, bandCount: Int, minHz: Double, maxHz: Double) {
        let bins = fftSize / 2 + 1
        let fftHz = numpyLinspace(0, sampleRate / 2, count: bins)
        // bandCount + 2 edges evenly spaced in mel: band i rises from edge i to edge i+1 and falls to edge i+2.
        let edgesHz = numpyLinspace(Self.hzToMel(minHz), Self.hzToMel(maxHz), count: bandCount + 2).map(Self.melToHz)
        var firstBin: [Int] = []
        var weights: [[Float]] = []
        for band in 0..<bandCount {
            let (low, center, high) = (edgesHz[band], edgesHz[band + 1], edgesHz[band + 2])
            let areaNorm = 2 / (high - low)
            var row = [Float](repeating: 0, count: bins)
            for bin in 0..<bins {
                let rising = -(low - fftHz[bin]) / (center - low)
                let falling = (high - fftHz[bin]) / (high - center)
                // librosa stores the triangle in float32 before scaling it; rounding at the same point keeps the
                // two filterbanks equal.
                let triangle = Float(max(0, min(rising, falling)))
                row[bin] = Float(Double(triangle) * areaNorm)
            }
            let first = row.firstIndex { $0 != 0 } ?? 0
            let last = row.lastIndex { $0 != 0 } ?? -1
            firstBin.append(first)
            weights.append(last >= first ? Array(row[first...last]) : [])
        }
        self.firstBin = firstBin
        self.weights = weights
    }

    static func hzToMel(_ hz: Double) -> Double { 2595 * log10(1 + hz / 700) }
    static func melToHz(_ mel: Double) -> Double { 700 * (pow(10, mel / 2595) - 1) }

    /// The weight of FFT bin `bin` in band `band` (0 outside the triangle).
    public func weight(band: Int, bin: Int) -> Float {
        let offset = bin - firstBin[band]
        return offset >= 0 && offset < weights[band].count ? weights[band][offset] : 0
    }

    @inline(__always)
    func apply(band: Int, to magnitudes: [Double]) -> Double {
        var sum = 0.0
        let first = firstBin[band]
        for (offset, weight) in weights[band].enumerated() { sum += Double(weight) * magnitudes[first + offset] }
        return sum
    }
}

/// `np.linspace(start, stop, count)`: start + i * step, the last value exactly `stop`.
func numpyLinspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    guard count > 1 else { return count == 1 ? [start] : [] }
    let step = (stop - start) / Double(count - 1)
    var values = (0..<count).map { Double($0) * step + start }
    values[count - 1] = stop
    return values
}

/// Magnitudes of the discrete Fourier transform of a real sequence whose length is a power of two: a
/// complex radix-2 FFT of half the length on the even/odd samples packed as real/imaginary parts, then
/// split into the real sequence's spectrum (X[k] = E[k] + e^(-2 pi i k / N) O[k]). Double precision.
public struct RealFFT: Sendable {
    public let size: Int
    let half: Int
    let bitReversed: [Int]
    /// e^(-2 pi i j / half), j < half / 2: the butterflies' twiddles.
    let twiddleReal: [Double]
    let twiddleImaginary: [Double]
    /// e^(-2 pi i k / size), k <= half: the even/odd split.
    let splitReal: [Double]
    let splitImaginary: [Double]

    struct Scratch {
        var real: [Double]
        var imaginary: [Double]
        init(size: Int) {
            real = [Double](repeating: 0, count: size / 2)
            imaginary = [Double](repeating: 0, count: size / 2)
        }
    }

    public init(size: Int) {
        precondition(size >= 4 && size & (size - 1) == 0, "RealFFT size \(size) must be a power of two >= 4")
        self.size = size
        half = size / 2
        let bits = half.trailingZeroBitCount
        bitReversed = (0..<half).map { index in
            var reversed = 0
            for bit in 0..<bits where index & (1 << bit) != 0 { reversed |= 1 << (bits - 1 - bit) }
            return reversed
        }
        let quarter = max(1, half / 2)
        twiddleReal = (0..<quarter).map { cos(-2 * Double.pi * Double($0) / Double(size / 2)) }
        twiddleImaginary = (0..<quarter).map { sin(-2 * Double.pi * Double($0) / Double(size / 2)) }
        splitReal = (0...(size / 2)).map { cos(-2 * Double.pi * Double($0) / Double(size)) }
        splitImaginary = (0...(size / 2)).map { sin(-2 * Double.pi * Double($0) / Double(size)) }
    }

    /// |X[k]| for k = 0 ... size / 2.
    public func magnitudes(of signal: [Double]) -> [Double] {
        var result = [Double](repeating: 0, count: half + 1)
        var scratch = Scratch(size: size)
        magnitudes(of: signal, into: &result, scratch: &scratch)
        return result
    }

    func magnitudes(of signal: [Double], into result: inout [Double], scratch: inout Scratch) {
        precondition(signal.count == size && result.count == half + 1)
        let m = half
        // z[n] = x[2n] + i x[2n+1], stored in bit-reversed order for the in-place iterative FFT.
        for n in 0..<m {
            scratch.real[bitReversed[n]] = signal[2 * n]
            scratch.imaginary[bitReversed[n]] = signal[2 * n + 1]
        }
        scratch.real.withUnsafeMutableBufferPointer { re in
            scratch.imaginary.withUnsafeMutableBufferPointer { im in
                var length = 2
                while length <= m {
                    let halfLength = length / 2
                    let step = m / length
                    var start = 0
                    while start < m {
                        for j in 0..<halfLength {
                            let (wr, wi) = (twiddleReal[j * step], twiddleImaginary[j * step])
                            let (a, b) = (start + j, start + j + halfLength)
                            let tr = re[b] * wr - im[b] * wi
                            let ti = re[b] * wi + im[b] * wr
                            re[b] = re[a] - tr
                            im[b] = im[a] - ti
                            re[a] += tr
                            im[a] += ti
                        }
                        start += length
                    }
                    length *= 2
                }
                for k in 0...m {
                    let (zr, zi) = (re[k % m], im[k % m])
                    // conj(Z[m - k])
                    let (cr, ci) = (re[(m - k) % m], -im[(m - k) % m])
                    // Even part (Z[k] + conj Z[m-k]) / 2; odd part (Z[k] - conj Z[m-k]) / 2i.
                    let (er, ei) = ((zr + cr) / 2, (zi + ci) / 2)
                    let (or, oi) = ((zi - ci) / 2, -(zr - cr) / 2)
                    let (wr, wi) = (splitReal[k], splitImaginary[k])
                    let xr = er + wr * or - wi * oi
                    let xi = ei + wr * oi + wi * or
                    result[k] = (xr * xr + xi * xi).squareRoot()
                }
            }
        }
    }
}
