/// What a pipeline golden set records beyond `GoldenIndex` (`rvc_ios_tools/pipeline/golden.py`): its
/// stage table's shape (segments, f0, index), the conversion's options and the output rate.
public struct PipelineGoldenExtra: Decodable, Sendable {
    public struct Options: Decodable, Sendable {
        public let pitch: Double
        public let indexRate: Double
        public let protect: Double
        public let rmsMixRate: Double
        public let resampleSr: Int
        public let sid: Int
        public let seed: Int
        public let rmvpePadMode: String
    }

    public let segments: Int
    public let f0: Bool
    public let index: Bool
    public let options: Options
    public let outputRate: Int

    /// `extra` of `<folder>/index.json`.
    public static func load(goldenFolder folder: String) throws -> PipelineGoldenExtra {
        try goldenExtra(PipelineGoldenExtra.self, goldenFolder: folder)
    }
}
