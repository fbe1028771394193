/// What can make a conversion impossible, each case a sentence a user can act on.
public enum ConversionError: Error, CustomStringConvertible, Equatable {
    case audioTooShort(samples: Int, minimum: Int)
    case emptyAudio

    public var description: String {
        switch self {
        case let .audioTooShort(samples, minimum):
            return "\(samples) samples are too few for the 48 Hz high-pass filter; give at least \(minimum) samples "
                + "(about 1.2 ms at 16 kHz)."
        case .emptyAudio:
            return "The audio holds no samples; give a recording of at least a few milliseconds."
        }
    }
}
