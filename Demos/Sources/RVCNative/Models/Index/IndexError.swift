/// What can be wrong with an exported retrieval index or the features searched in it, each with a sentence
/// that says what to do. (File, safetensors and manifest problems shared with voices are `RVCError`s.)
public enum IndexError: Error, Equatable, CustomStringConvertible {
    case manifestKind(path: String, found: String)
    case unsupportedConfiguration(field: String, value: String, supported: String)
    case tensorShape(key: String, expected: [Int], actual: [Int])
    case listOffsets(reason: String)
    case ids(reason: String)
    case goldenKind(path: String, found: String)
    case featureWidth(expected: Int, actual: [Int])

    public var description: String {
        switch self {
        case let .manifestKind(path, found):
            return "\(path) describes a `\(found)` model, not a retrieval index. "
                + "Pass the manifest `rvc-ios export --index PATH` wrote."
        case let .unsupportedConfiguration(field, value, supported):
            return "The index manifest's `\(field)` is \(value); this build supports \(supported). "
                + "Export the index again with the rvc-ios version matching this build."
        case let .tensorShape(key, expected, actual):
            return "Index tensor `\(key)` has shape \(actual) but the manifest implies \(expected). Export the index again."
        case let .listOffsets(reason):
            return "The index's `index.list_offsets` are not usable: \(reason). Export the index again."
        case let .ids(reason):
            return "The index's `index.ids` are not usable: \(reason). Export the index again."
        case let .goldenKind(path, found):
            return "\(path) is a `\(found)` golden set, not an index one. Pass a set written by "
                + "`rvc-ios golden generate --kind index`."
        case let .featureWidth(expected, actual):
            return "The features have shape \(actual); this index searches (1, frames, \(expected)). "
                + "Use features of the voice's version (v1: 256 channels, v2: 768)."
        }
    }
}
