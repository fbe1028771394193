/// What can make a conversion impossible, each case a sentence a user can act on.
public enum ConversionError: Error, CustomStringConvertible, Equatable {
    case audioTooShort(samples: Int, minimum: Int)
    case emptyAudio
    case sampleRate(Int)
    case optionOutOfRange(name: String, value: Double, range: ClosedRange<Double>)
    case rmvpeNeeded(voice: String)
    case indexWidth(index: Int, voice: Int)
    case drawShape(name: String, expected: [Int], actual: [Int])
    case drawsNeverMade(names: [String], segments: Int)

    public var description: String {
        switch self {
        case let .audioTooShort(samples, minimum):
            return "\(samples) samples are too few for the 48 Hz high-pass filter; give at least \(minimum) samples "
                + "(about 1.2 ms at 16 kHz)."
        case .emptyAudio:
            return "The audio holds no samples; give a recording of at least a few milliseconds."
        case let .sampleRate(rate):
            return "The audio is said to be at \(rate) Hz; give its rate, from 1000 to 768000 Hz (it is resampled to 16000 Hz)."
        case let .optionOutOfRange(name, value, range):
            return "\(name) must lie in \(range.lowerBound)...\(range.upperBound), not \(value)."
        case let .rmvpeNeeded(voice):
            return "The voice \(voice) uses pitch; export RMVPE (`rvc-ios export --rmvpe rmvpe.pt`) and pass its name."
        case let .indexWidth(index, voice):
            return "The index holds \(index)-d features; the voice takes \(voice)-d. Use the index trained for this voice."
        case let .drawShape(name, expected, actual):
            return "`\(name)` in the noise file has shape \(actual); this segment draws \(expected). "
                + "Record the draws of this input and voice (`rvc-ios convert --golden DIR`)."
        case let .drawsNeverMade(names, segments):
            return "The noise file holds \(names.joined(separator: ", ")), which this run never draws (\(segments) "
                + "segment(s)); record the draws of this input and voice."
        }
    }
}
