/// The voice tensor names of docs/formats.md and their layouts: upstream's (as golden sets store them)
/// and this package's channels-last one.
public enum VoiceTensors {
    static let fixedGoldenLayouts: [String: String] = [
        "phone": "BTC", "phone_lengths": "B", "pitch": "BT", "pitchf": "BT", "sid": "B",
        "noise.z_p": "BCT", "noise.nsf": "BTC", "noise.nsf_phase": "BC",
        "g": "BCT", "enc_p.hidden": "BCT", "m_p": "BCT", "logs_p": "BCT", "x_mask": "BCT",
        "z_p": "BCT", "z": "BCT", "dec.source": "BTC", "dec.conv_pre": "BCT", "audio": "BCT",
    ]

    public static func flowStep(_ index: Int) -> String { "flow.flow_\(index)" }
    public static func upStage(_ index: Int) -> String { "dec.up_\(index)" }

    /// Upstream's layout of `name`, or nil for a name the voice pipeline does not know.
    public static func goldenLayout(of name: String) -> String? {
        if let layout = fixedGoldenLayouts[name] { return layout }
        for prefix in ["flow.flow_", "dec.up_"] where name.hasPrefix(prefix) {
            if Int(name.dropFirst(prefix.count)) != nil { return "BCT" }
        }
        return nil
    }

    /// The layout this package computes `name` in: channels-last wherever upstream is channels-first.
    public static func nativeLayout(of name: String) -> String? {
        guard let layout = goldenLayout(of: name) else { return nil }
        return layout == "BCT" ? "BTC" : layout
    }

    /// The shape of `name` in this package's layout, for a batch of `frames` feature frames.
    public static func nativeShape(of name: String, configuration c: Configuration, batch: Int, frames: Int) -> [Int]? {
        switch name {
        case "g": return [batch, 1, c.ginChannels]
        case "enc_p.hidden": return [batch, frames, c.hiddenChannels]
        case "m_p", "logs_p", "z_p", "z": return [batch, frames, c.interChannels]
        case "x_mask": return [batch, frames, 1]
        case "dec.source", "audio": return [batch, frames * c.upsampleFactor, 1]
        case "dec.conv_pre": return [batch, frames, c.upsampleInitialChannel]
        default:
            if name.hasPrefix("flow.flow_"), let index = Int(name.dropFirst("flow.flow_".count)),
               (0..<Configuration.flowCount).contains(index) {
                return [batch, frames, c.interChannels]
            }
            if name.hasPrefix("dec.up_"), let index = Int(name.dropFirst("dec.up_".count)),
               c.upsampleRates.indices.contains(index) {
                return [batch, frames * c.upsampleRates[...index].reduce(1, *), c.decoderChannels(afterStage: index)]
            }
            return nil
        }
    }
}
