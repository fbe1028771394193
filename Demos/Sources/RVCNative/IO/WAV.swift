import Foundation

/// A WAV file's samples as float32, frames interleaved (`samples[frame * channels + channel]`), each value
/// mapped onto [-1, 1] as FFmpeg maps it (16-bit: value / 32768; 24-bit: / 2^23; 32-bit: / 2^31; 8-bit:
/// (value - 128) / 128; float as stored, 64-bit rounded to float32).
public struct WAVAudio: Equatable, Sendable {
    public let samples: [Float]
    public let channels: Int
    public let sampleRate: Int
    /// e.g. "16-bit PCM", "32-bit float".
    public let encoding: String

    public var frames: Int { samples.count / channels }

    /// Mono as upstream's loaders hand a file to the pipeline (FFmpeg's `ac=1` for float output): stereo as
    /// (L + R) / sqrt(2) in float64, rounded to float32 (not the mean), as `rvc_ios_tools.core.wav.mix_to_mono`.
    public func mixedToMono() -> [Float] {
        guard channels == 2 else { return samples }
        let half = (0.5 as Double).squareRoot()
        return (0..<frames).map { i in Float((Double(samples[2 * i]) + Double(samples[2 * i + 1])) * half) }
    }
}

/// RIFF/WAVE files, read as `rvc_ios_tools.core.wav.read_wav` reads them: 8/16/24/32-bit PCM or 32/64-bit float
/// (also inside WAVE_FORMAT_EXTENSIBLE), mono or stereo, 1 kHz to 768 kHz. More than two channels are refused,
/// as there. Every chunk size is checked against the file's length before anything is read, and the samples
/// allocated are at most what the file holds: a data chunk claiming more (or 0 / 0xFFFFFFFF, as streamed WAVs
/// leave it) is read to the end of the file, as the reference reads it.
public enum WAVFile {
    static let formatPCM = 0x0001
    static let formatFloat = 0x0003
    static let formatExtensible = 0xFFFE
    static let rates = 1000...768_000
    static let maxChannels = 2
    static let fix = "convert it to a WAV file first, e.g. `sox in.mp3 -r 16000 -c 1 -b 16 in.wav`"

    public static func read(path: String) throws -> WAVAudio {
        try read(bytes: try readFile(path), path: path)
    }

    /// `bytes` as the file `path` (named in errors).
    public static func read(bytes data: Data, path: String) throws -> WAVAudio {
        try data.withUnsafeBytes { try read(UnsafeRawBufferPointer($0), path: path) }
    }

    static func read(_ bytes: UnsafeRawBufferPointer, path: String) throws -> WAVAudio {
        func fail(_ reason: String) -> RVCError { .wavUnsupported(path: path, reason: reason) }
        func integer(_ offset: Int, _ size: Int) -> Int {
            (0..<size).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
        }
        func text(_ offset: Int) -> String { String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self) }
        let size = bytes.count
        guard size >= 12, text(0) == "RIFF", text(8) == "WAVE" else { throw fail("is not a WAV file (no RIFF/WAVE header); \(fix)") }

        var fmt: Range<Int>?
        var sampleData: Range<Int>?
        var position = 12
        while position + 8 <= size && sampleData == nil {
            let (id, chunkSize) = (text(position), integer(position + 4, 4))
            let body = position + 8
            if id == "fmt " {
                guard chunkSize >= 16, body + chunkSize <= size else {
                    throw fail("has a damaged `fmt ` chunk (\(chunkSize) bytes); \(fix)")
                }
                fmt = body..<(body + min(chunkSize, 40))
            } else if id == "data" {
                guard fmt != nil else { throw fail("has its sample data before the format chunk; \(fix)") }
                let available = size - body
                let streamed = chunkSize == 0 || chunkSize == 0xFFFF_FFFF || chunkSize > available
                sampleData = body..<(body + (streamed ? available : chunkSize))
            }
            position = body + chunkSize + (chunkSize & 1)
        }
        guard let fmt, let sampleData else {
            throw fail("has no \(fmt == nil ? "format" : "sample data") chunk; it may be truncated: \(fix)")
        }
        var format = integer(fmt.lowerBound, 2)
        let channels = integer(fmt.lowerBound + 2, 2)
        let rate = integer(fmt.lowerBound + 4, 4)
        let bits = integer(fmt.lowerBound + 14, 2)
        if format == formatExtensible && fmt.count >= 26 {
            format = integer(fmt.lowerBound + 24, 2)  // the sub-format GUID's first two bytes
        }
        let isFloat = format == formatFloat
        guard (format == formatPCM && [8, 16, 24, 32].contains(bits)) || (isFloat && [32, 64].contains(bits)) else {
            let hex = String(format, radix: 16)
            throw fail("holds \(bits)-bit samples of WAV format 0x\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex); "
                       + "this reads 8/16/24/32-bit PCM and 32/64-bit float: \(fix)")
        }
        guard (1...maxChannels).contains(channels) else {
            throw fail("has \(channels) channels; give a mono or stereo file (e.g. `sox in.wav -c 1 out.wav`)")
        }
        guard rates.contains(rate) else { throw fail("claims a sample rate of \(rate) Hz; the header is damaged: \(fix)") }

        let width = bits / 8
        let count = sampleData.count / (channels * width) * channels
        guard count > 0 else { throw fail("holds no samples; give a recording of at least a few milliseconds") }
        let start = sampleData.lowerBound
        let decode: (Int) -> Float
        switch (isFloat, bits) {
        case (true, 32): decode = { Float(bitPattern: bytes.loadUnaligned(fromByteOffset: $0, as: UInt32.self).littleEndian) }
        case (true, _): decode = { Float(Double(bitPattern: bytes.loadUnaligned(fromByteOffset: $0, as: UInt64.self).littleEndian)) }
        case (false, 8): decode = { Float(Double(Int(bytes[$0]) - 128) / 128) }
        case (false, 16): decode = { Float(Double(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: $0, as: Int16.self))) / 32768) }
        case (false, 24): decode = { Float(Double((integer($0, 3) << 40) >> 40) / 8_388_608) }
        default: decode = { Float(Double(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0, as: Int32.self))) / 2_147_483_648) }
        }
        var samples = [Float](repeating: 0, count: count)
        samples.withUnsafeMutableBufferPointer { out in
            for i in 0..<count { out[i] = decode(start + i * width) }
        }
        // A 64-bit float beyond float32's range has become infinite: refused with NaN.
        if isFloat, samples.contains(where: { !$0.isFinite }) {
            throw fail("holds NaN or infinite samples; the file is damaged")
        }
        return WAVAudio(samples: samples, channels: channels, sampleRate: rate, encoding: "\(bits)-bit \(isFloat ? "float" : "PCM")")
    }

    /// The samples of a mono 16-bit PCM file and its sample rate (what the content encoder and RMVPE commands
    /// read, as `read_wav_16k_mono`); other encodings are refused by name.
    public static func readMono16Bit(path: String) throws -> (samples: [Float], sampleRate: Int) {
        let audio = try read(path: path)
        guard audio.channels == 1, audio.encoding == "16-bit PCM" else {
            throw RVCError.wavUnsupported(path: path, reason: "is \(audio.channels) channel(s), \(audio.encoding); this reads "
                                          + "mono 16-bit PCM (convert with `sox in.wav -r 16000 -c 1 -b 16 out.wav`)")
        }
        return (audio.samples, audio.sampleRate)
    }
}
