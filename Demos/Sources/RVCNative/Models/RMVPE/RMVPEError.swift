/// What can be wrong with an RMVPE pitch model's files or its audio, each with a sentence that says what to do.
/// (File, safetensors and weight-loading problems shared with voices are `RVCError`s.)
public enum RMVPEError: Error, Equatable, CustomStringConvertible {
    case manifestKind(path: String, found: String)
    case unsupportedConfiguration(field: String, value: String, supported: String)
    case audioTooShort(samples: Int, minimum: Int)
    case framesTooFewToReflect(frames: Int, padded: Int, minimumSamples: Int)
    case goldenKind(path: String, found: String)

    public var description: String {
        switch self {
        case let .manifestKind(path, found):
            return "\(path) describes a `\(found)` model, not the RMVPE pitch model. "
                + "Pass the manifest `rvc-ios export --rmvpe rmvpe.pt` wrote."
        case let .unsupportedConfiguration(field, value, supported):
            return "The RMVPE manifest's `\(field)` is \(value); this build supports \(supported). "
                + "Export rmvpe.pt again with the rvc-ios version matching this build."
        case let .audioTooShort(samples, minimum):
            return "The audio has \(samples) samples; RMVPE's STFT needs at least \(minimum) (16 kHz). Pass longer audio."
        case let .framesTooFewToReflect(frames, padded, minimumSamples):
            return "\(frames) mel frames cannot be reflect-padded to \(padded); RMVPE needs at least \(minimumSamples) "
                + "samples of 16 kHz audio for reflect padding. Pass longer audio or use constant padding."
        case let .goldenKind(path, found):
            return "\(path) is a `\(found)` golden set, not an RMVPE one. Pass a set written by "
                + "`rvc-ios golden generate --kind rmvpe`."
        }
    }
}
