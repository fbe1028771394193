/// Tensors the pipeline keeps in other dtypes than Float32: upstream's filtered and padded audio and its f0
/// are float64, its output int16. Read as stored, so a bit-exact port can be checked bit for bit.
extension SafeTensorsFile {
    /// A float64 (or float32, widened) tensor's values, flattened.
    public func float64Values(_ key: String) throws -> (shape: [Int], values: [Double]) {
        let entry = try entry(key)
        switch entry.dtype {
        case .f64:
            return (entry.shape, try storedValues(entry, as: Double.self))
        case .f32:
            return (entry.shape, try tensor(key).data.map(Double.init))
        default:
            throw RVCError.unsupportedDType(key: key, dtype: entry.dtype.rawValue, readable: ["F64", "F32"])
        }
    }

    /// An int16 tensor's values (audio samples), flattened.
    public func int16Values(_ key: String) throws -> (shape: [Int], values: [Int16]) {
        let entry = try entry(key)
        guard entry.dtype == .i16 else {
            throw RVCError.unsupportedDType(key: key, dtype: entry.dtype.rawValue, readable: ["I16"])
        }
        return (entry.shape, try storedValues(entry, as: Int16.self))
    }
}
