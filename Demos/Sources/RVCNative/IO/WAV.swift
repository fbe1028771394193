import Foundation

/// 16-bit PCM WAV files, read as float samples in [-1, 1) the way `rvc_ios_tools.core.wav.read_wav_16k_mono`
/// reads them (value / 32768).
public enum WAVFile {
    /// The samples of a mono 16-bit PCM file and its sample rate; other encodings are refused by name.
    public static func readMono16Bit(path: String) throws -> (samples: [Float], sampleRate: Int) {
        let data = try readFile(path)
        func fail(_ reason: String) -> RVCError { .fileUnreadable(path: path, reason: reason) }
        func integer(_ offset: Int, _ size: Int) -> Int {
            (0..<size).reduce(0) { $0 | Int(data[data.startIndex + offset + $1]) << (8 * $1) }
        }
        func text(_ offset: Int) -> String {
            String(decoding: data[(data.startIndex + offset)..<(data.startIndex + offset + 4)], as: UTF8.self)
        }
        guard data.count >= 12, text(0) == "RIFF", text(8) == "WAVE" else { throw fail("not a RIFF WAVE file") }
        var offset = 12
        var format: (channels: Int, rate: Int, bits: Int, code: Int)?
        while offset + 8 <= data.count {
            let (id, size) = (text(offset), integer(offset + 4, 4))
            let body = offset + 8
            guard body + size <= data.count else { throw fail("chunk `\(id)` runs past the end of the file") }
            if id == "fmt " {
                guard size >= 16 else { throw fail("its fmt chunk is too short") }
                format = (integer(body + 2, 2), integer(body + 4, 4), integer(body + 14, 2), integer(body, 2))
            } else if id == "data" {
                guard let format else { throw fail("its data chunk comes before the fmt chunk") }
                guard format.code == 1, format.bits == 16, format.channels == 1 else {
                    throw fail("it is \(format.channels) channel(s), \(format.bits)-bit, format \(format.code); "
                               + "this reads mono 16-bit PCM (convert with `sox in.wav -r 16000 -c 1 -b 16 out.wav`)")
                }
                let count = size / 2
                var samples = [Float](repeating: 0, count: count)
                for i in 0..<count {
                    samples[i] = Float(Int16(truncatingIfNeeded: integer(body + 2 * i, 2))) / 32768
                }
                return (samples, format.rate)
            }
            offset = body + size + (size & 1)
        }
        throw fail("it has no data chunk")
    }
}
